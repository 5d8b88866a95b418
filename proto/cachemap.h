/* cachemap.h - the cache directory's map file: superblock + chunk map.
 *
 * The file `map` in the cache directory is a 4096-byte superblock
 * followed by one 32-byte entry per chunk.  The engine mmaps it and
 * updates entries in place, so the entry layout below is the in-memory
 * layout too (little-endian; the build refuses big-endian hosts).
 *
 * Superblock (little-endian):
 *   0  magic          8  "TIERBDSB"
 *   8  version        2  1
 *  10  header_size    2  4096
 *  12  flags          4  SB_F_CLEAN: closed cleanly (map is exact)
 *  16  device_size    8  bytes
 *  24  chunk_shift    1  log2(chunk size), 16..26
 *  25  entry_size     1  32
 *  26  spare          6
 *  32  nchunks        8  DIV_ROUND_UP(device_size, chunk size)
 *  40  nslots         8  cache slots in the `slots` file
 *  48  gen_reserved   8  generations below this may have been used
 *  56  device_id      8  random, chosen at creation
 *  64  created        8  unix time
 *  72  heat_tick      8  the policy clock when last persisted
 *  80  store_spec   256  NUL-terminated store= string of the device
 * 336  spare          ... zero up to 4092
 * 4092 sb_hash        4  XXH32(bytes 0..4091, seed 0)
 *
 * Entry (32 bytes, struct chunk_ent):
 *   state u8 | flags u8 | spare u16 | slot u32 | gen u64 | hash u64 |
 *   heat u32 | tick u32
 */
#ifndef TIERBD_CACHEMAP_H
#define TIERBD_CACHEMAP_H

#include <stddef.h>
#include <stdint.h>

#define SB_MAGIC "TIERBDSB"
#define SB_VERSION 1
#define SB_SIZE 4096
#define SB_F_CLEAN 0x1u
#define SB_STORE_SPEC_MAX 256
#define CHUNK_SHIFT_MIN 16 /* 64 KiB */
#define CHUNK_SHIFT_MAX 26 /* 64 MiB */

enum chunk_state {
	CHUNK_ABSENT = 0,    /* never written or trimmed: zeros, no object */
	CHUNK_COLD = 1,	     /* only in the store, as object gen */
	CHUNK_HOT_CLEAN = 2, /* slot holds exactly object gen */
	CHUNK_HOT_DIRTY = 3, /* slot is newer than the store */
};
#define CHUNK_STATE_MAX CHUNK_HOT_DIRTY

/* Persistent flags. */
#define CE_F_PINNED 0x01u /* never evicted */
#define CE_F_SEQ 0x02u	  /* admitted by a sequential stream */
#define CE_F_PERSIST_MASK 0x03u
/* Run-time flags: meaningless on disk, cleared when the map is opened. */
#define CE_F_BUSY 0x10u	     /* being fetched/filled/verified: wait */
#define CE_F_UPLOADING 0x20u /* a push is reading the slot */
#define CE_F_REDIRTY 0x40u   /* written while uploading */
#define CE_F_VERIFY 0x80u    /* clean copy must be checked before use */

#define SLOT_NONE UINT32_MAX

struct chunk_ent {
	uint8_t state;
	uint8_t flags;
	uint16_t spare;
	uint32_t slot; /* cache slot when HOT_*, else SLOT_NONE */
	uint64_t gen;  /* generation of the object in the store, 0 = none */
	uint64_t hash; /* XXH3_64bits of the clean content (COLD, CLEAN) */
	uint32_t heat; /* decayed access score (policy) */
	uint32_t tick; /* policy tick of the last update of heat */
};

/* Naturally aligned, no padding: the layout above, on every ABI we build
 * for (the map is mmapped, so entries must be accessed in place). */
_Static_assert(sizeof(struct chunk_ent) == 32, "chunk_ent is 32 bytes");
_Static_assert(__builtin_offsetof(struct chunk_ent, gen) == 8, "gen at 8");
_Static_assert(__builtin_offsetof(struct chunk_ent, heat) == 24, "heat at 24");

struct superblock {
	uint32_t flags;
	uint64_t device_size;
	unsigned chunk_shift;
	uint64_t nchunks;
	uint64_t nslots;
	uint64_t gen_reserved;
	uint64_t device_id;
	uint64_t created;
	uint64_t heat_tick;
	char store_spec[SB_STORE_SPEC_MAX];
};

/* Encode sb into buf[SB_SIZE]. */
void sb_encode(const struct superblock *sb, void *buf);

/* Decode and validate buf (len bytes).  Returns 0, or
 * -EBADMSG (not a superblock, truncated, bad hash, inconsistent fields:
 * chunk_shift out of range, nchunks != DIV_ROUND_UP(size, chunk),
 * store_spec not terminated), or -ENOTSUP (unknown version or flags). */
int sb_decode(const void *buf, size_t len, struct superblock *sb);

/* Validate the entries of a map: states in range (any flags), HOT entries
 * with slot < nslots, other entries with SLOT_NONE, COLD/HOT_CLEAN with
 * gen != 0 and gen < gen_reserved, HOT_DIRTY with gen 0 or below
 * gen_reserved, ABSENT with gen 0, no slot claimed twice.  On the first
 * bad entry returns -EBADMSG and sets *bad to its index (-ENOMEM if the
 * slot bitmap cannot be allocated). */
int map_check(const struct chunk_ent *ents, uint64_t nchunks,
	      const struct superblock *sb, uint64_t *bad);

#endif
