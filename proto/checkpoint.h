/* checkpoint.h - the store's view of the device at one segment.
 *
 * The store view of a chunk is its base (the chunk object of generation
 * gen, whose raw data hashes to hash; gen 0: zeros) and its overlays:
 * ranges of the chunk that segments wrote after the base, each pointing
 * at a DATA frame of a segment (or zeros).  A checkpoint records the
 * store view after applying every segment up to seg_seq.
 *
 *   FULL   every chunk that holds data (a base or an overlay)
 *   DELTA  the chunks whose store view changed since checkpoint
 *          (prev_epoch, prev_num), each with its whole new store view;
 *          a chunk that holds nothing now has gen 0 and no extents
 *   LOCAL  the cache directory's snapshot of the overlays (the map in
 *          the cache directory holds the bases): only chunks with
 *          overlays; gen, hash, heat and tick are informational
 *
 * A checkpoint may be split into parts (one object each, the engine
 * names them), so no object grows with the device: part p of nparts
 * holds chunks in increasing index order, all above those of part p-1;
 * every part carries the same header but for part and the counts.
 *
 * Layout: a 128-byte header, then an lz4 block of the raw payload.
 * Little-endian.
 *   0  magic        8  "TIERBDCK"
 *   8  version      2  1
 *  10  kind         1  CKPT_FULL 1, CKPT_DELTA 2, CKPT_LOCAL 3
 *  11  chunk_shift  1  16..26
 *  12  epoch        4  the owner's epoch (lease.c)
 *  16  num          8  checkpoint number, from 1, increasing
 *  24  device_id    8
 *  32  device_size  8  bytes
 *  40  seg_seq      8  the store view after segments 1..seg_seq
 *  48  prev_num     8  DELTA: the checkpoint it applies to; else 0
 *  56  prev_epoch   4  DELTA: that checkpoint's epoch; else 0
 *  60  part         2  0..nparts-1
 *  62  nparts       2  >= 1
 *  64  gen_floor    8  every generation used so far is below this
 *  72  created      8  unix time
 *  80  dev_created  8  unix time the device was created (heat clock)
 *  88  nentries     4  chunks in this part
 *  92  nextents     4  overlay extents in this part
 *  96  raw_len      4  nentries * 40 + nextents * 32
 * 100  payload_len  4  bytes after the header
 * 104  data_hash    8  XXH3_64bits of the raw payload
 * 112  spare       12  zero
 * 124  header_hash  4  XXH32(bytes 0..123, seed 0)
 * 128  payload      lz4 block of the raw payload: for each chunk, in
 *                   increasing index order, its entry and then its
 *                   `next` extents in increasing offset order:
 *   entry (40):  index u64, gen u64, hash u64, heat u32, tick u32,
 *                next u32, spare u32
 *   extent (32): off u32, len u32 (the live range, chunk-relative),
 *                seq u64 (segment; 0 never), pos u32 (the DATA frame's
 *                pos in that segment, an offset in its object: the frame
 *                is bytes [pos, pos + 48 + flen), checked by
 *                seg_frame_check with the chunk's offset + fstart and
 *                flen; CKPT_ZERO_POS for zeros),
 *                flen u32 (the frame's data length; 0 for zeros),
 *                fstart u32 (chunk-relative offset of the frame's first
 *                data byte), spare u32
 *
 * An extent reads bytes [off, off+len) of the chunk from the frame's
 * data at (off - fstart); for zeros, fstart == off and flen == 0.
 */
#ifndef TIERBD_CHECKPOINT_H
#define TIERBD_CHECKPOINT_H

#include <stddef.h>
#include <stdint.h>

#define CKPT_MAGIC "TIERBDCK"
#define CKPT_VERSION 1
#define CKPT_HEADER_SIZE 128
#define CKPT_ENTRY_SIZE 40
#define CKPT_EXTENT_SIZE 32
#define CKPT_ZERO_POS UINT32_MAX
/* One part stays below lz4's limit and a sane object size. */
#define CKPT_PART_MAX_RAW (256u << 20)

enum ckpt_kind {
	CKPT_FULL = 1,
	CKPT_DELTA = 2,
	CKPT_LOCAL = 3,
};

struct ckpt_info {
	uint8_t kind;
	unsigned chunk_shift;
	uint32_t epoch;
	uint64_t num;
	uint64_t device_id;
	uint64_t device_size;
	uint64_t seg_seq;
	uint64_t prev_num;
	uint32_t prev_epoch;
	uint16_t part, nparts;
	uint64_t gen_floor;
	uint64_t created, dev_created;
	uint32_t nentries, nextents;
};

struct ckpt_extent {
	uint32_t off, len;
	uint64_t seq;
	uint32_t pos, flen, fstart;
};

struct ckpt_entry {
	uint64_t index, gen, hash;
	uint32_t heat, tick;
	uint32_t next;	/* extents of this chunk */
	uint32_t first; /* decode: index of its first extent in *exts */
};

/* Raw payload bytes of one part (to split a checkpoint into parts). */
static inline size_t ckpt_raw_len(uint64_t nentries, uint64_t nextents)
{
	return (size_t)(nentries * CKPT_ENTRY_SIZE +
			nextents * CKPT_EXTENT_SIZE);
}

/* Encode one part: info->nentries entries, and, after each entry in
 * order, its next extents (exts holds all of them, in that order;
 * info->nextents in all; `first` is not read).  Checks what ckpt_decode
 * checks (below) and returns -EINVAL when the input would not decode,
 * -EFBIG past CKPT_PART_MAX_RAW.  *out is malloc'd, *len its size. */
int ckpt_encode(const struct ckpt_info *info, const struct ckpt_entry *ents,
		const struct ckpt_extent *exts, void **out, size_t *len);

/* Decode one part.  Fills *info; *ents (info->nentries, with `first`
 * set) and *exts (info->nextents) are malloc'd (NULL when empty).
 * Checks magic, version (-ENOTSUP), kind, chunk_shift 16..26,
 * device_size != 0, num != 0, sizes (payload_len the rest of obj,
 * raw_len as above and <= CKPT_PART_MAX_RAW, no payload at all when
 * raw_len is 0), both hashes, that the payload decompresses to exactly
 * raw_len bytes, part < nparts, and every entry: index strictly
 * increasing and below the device's chunk count; gen < gen_floor; FULL
 * entries hold data (gen != 0 or extents), LOCAL entries have extents;
 * sum of next == nextents; extents of a chunk in increasing
 * off order, not overlapping, len > 0, off + len <= the chunk's size,
 * seq != 0 and seq <= seg_seq; a data extent has fstart <= off and off +
 * len <= fstart + flen <= chunk size; a zero extent has pos ==
 * CKPT_ZERO_POS, flen 0, fstart == off.  DELTA has prev_num != 0,
 * others prev_num == 0 and prev_epoch == 0.  -EBADMSG on any violation.
 * Never reads outside obj[0..len).  What holds across the parts of one
 * checkpoint (the same header but for part and the counts, indexes
 * increasing from part to part, every part present) is the caller's to
 * check. */
int ckpt_decode(const void *obj, size_t len, struct ckpt_info *info,
		struct ckpt_entry **ents, struct ckpt_extent **exts);

#endif
