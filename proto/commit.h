/* commit.h - a commit: the image of the whole device, stored in the store.
 *
 * Object `commits/<seq as 16 hex digits>`: every chunk that holds data,
 * as (index, generation, data hash), at a point where the referenced
 * versions together contain every write up to some completed flush
 * (DESIGN invariant 2).  Reopening on an empty cache reads the newest
 * commit that decodes.  A 128-byte header, then the entries sorted by
 * index, 32 bytes each, lz4-compressed.  All integers little-endian.
 * Entries carry the chunk's heat, so a device reopened elsewhere pulls
 * what was hot first.
 *
 *   0  magic        8  "TIERBDCM"
 *   8  version      2  1
 *  10  header_size  2  128 (a decoder accepts larger)
 *  12  flags        4  0
 *  16  seq          8  commit number, from 1, increasing
 *  24  device_id    8
 *  32  device_size  8  bytes
 *  40  chunk_shift  1  16..26
 *  41  spare        7
 *  48  nentries     8
 *  56  gen_floor    8  every generation used so far is below this
 *  64  created      8  unix time
 *  72  raw_len      8  nentries * 24
 *  80  payload_len  8  bytes after the header
 *  88  data_hash    8  XXH3_64bits of the raw entries
 *  96  dev_created  8  unix time the device was created (heat clock)
 * 104  spare       20  zero
 * 124  header_hash  4  XXH32(bytes 0..123, seed 0)
 * 128  payload      lz4 block of the entries
 *                   {index u64, gen u64, hash u64, heat u32, tick u32}
 */
#ifndef TIERBD_COMMIT_H
#define TIERBD_COMMIT_H

#include <stddef.h>
#include <stdint.h>

#define COMMIT_MAGIC "TIERBDCM"
#define COMMIT_VERSION 1
#define COMMIT_HEADER_SIZE 128
#define COMMIT_ENTRY_SIZE 32
/* lz4 takes at most ~2 GB: a commit names at most this many chunks. */
#define COMMIT_MAX_ENTRIES (0x7E000000u / COMMIT_ENTRY_SIZE)

struct commit_entry {
	uint64_t index, gen, hash;
	uint32_t heat, tick; /* the map entry's (policy.h) */
};

struct commit_info {
	uint64_t seq;
	uint64_t device_id;
	uint64_t device_size;
	unsigned chunk_shift;
	uint64_t nentries;
	uint64_t gen_floor;
	uint64_t created;
	uint64_t dev_created; /* the clock of the entries' ticks */
};

/* Encode info->nentries entries (sorted by index, gen != 0).  Returns a
 * malloc'd object in *out and its length in *len, or -errno (-EINVAL for
 * unsorted entries or too many). */
int commit_encode(const struct commit_info *info,
		  const struct commit_entry *ents, void **out, size_t *len);

/* Decode obj.  On success fills *info and returns a malloc'd array of
 * info->nentries entries in *ents (NULL when there are none).  Checks
 * magic, version (-ENOTSUP), sizes, hashes, chunk_shift range, that
 * entries are strictly increasing by index, below the device's chunk
 * count, with gen != 0 and gen < gen_floor (-EBADMSG otherwise).  Never
 * reads outside obj[0..len). */
int commit_decode(const void *obj, size_t len, struct commit_info *info,
		  struct commit_entry **ents);

#endif
