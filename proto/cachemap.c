/* cachemap.c - the map file's superblock and the check of its entries
 * (see cachemap.h for both layouts).
 *
 * The superblock is encoded field by field with the little-endian
 * helpers, so its layout does not depend on struct superblock.  The
 * entries are struct chunk_ent itself (the engine mmaps them), so only
 * their values are checked here.
 *
 * sb_decode checks, in order:
 *   1. len >= 4096 and the magic                   else -EBADMSG
 *   2. version == 1                                else -ENOTSUP
 *      (before the hash: a later version may hash differently)
 *   3. header_size == 4096, sb_hash                else -EBADMSG
 *   4. no flag bits other than SB_F_CLEAN          else -ENOTSUP
 *   5. chunk_shift 16..26, entry_size 32, device_size != 0,
 *      nchunks == DIV_ROUND_UP(device_size, chunk size), store_spec
 *      NUL-terminated within its 256 bytes        else -EBADMSG
 * Spare bytes are written as zero and not checked (they are covered by
 * the hash, so they can only be non-zero if a writer put them there).
 *
 * map_check makes one pass over the entries checking each on its own
 * and noting the highest slot claimed, then a second pass up to the
 * first bad entry with a bitmap of claimed slots to find a slot claimed
 * twice.  The bitmap covers only the slots actually claimed, so a huge
 * nslots in the superblock does not cost memory.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <xxhash.h>

#include "common/util.h"
#include "proto/cachemap.h"

/* Byte offsets of the superblock fields (the table in cachemap.h). */
enum {
	SB_OFF_MAGIC = 0,
	SB_OFF_VERSION = 8,
	SB_OFF_HEADER_SIZE = 10,
	SB_OFF_FLAGS = 12,
	SB_OFF_DEVICE_SIZE = 16,
	SB_OFF_CHUNK_SHIFT = 24,
	SB_OFF_ENTRY_SIZE = 25,
	SB_OFF_NCHUNKS = 32,
	SB_OFF_NSLOTS = 40,
	SB_OFF_GEN_RESERVED = 48,
	SB_OFF_DEVICE_ID = 56,
	SB_OFF_CREATED = 64,
	SB_OFF_HEAT_TICK = 72,
	SB_OFF_STORE_SPEC = 80,
	SB_OFF_HASH = SB_SIZE - 4,
};

_Static_assert(sizeof(SB_MAGIC) - 1 == 8, "magic is 8 bytes");
_Static_assert(SB_OFF_STORE_SPEC + SB_STORE_SPEC_MAX <= SB_OFF_HASH,
	       "store_spec fits the superblock");

#define SB_F_KNOWN SB_F_CLEAN

static uint32_t sb_hash(const uint8_t *b)
{
	return XXH32(b, SB_OFF_HASH, 0);
}

/* DIV_ROUND_UP(size, 1 << shift) without overflow near UINT64_MAX. */
static uint64_t chunks_for(uint64_t size, unsigned int shift)
{
	return (size >> shift) + ((size & ((UINT64_C(1) << shift) - 1)) != 0);
}

void sb_encode(const struct superblock *sb, void *buf)
{
	uint8_t *b = buf;
	size_t spec_len = strnlen(sb->store_spec, SB_STORE_SPEC_MAX);

	/* A full field has no room for the NUL: keep it decodable.  The
	 * configuration code refuses such a store= long before this. */
	if (spec_len == SB_STORE_SPEC_MAX)
		spec_len = SB_STORE_SPEC_MAX - 1;

	memset(b, 0, SB_SIZE);
	memcpy(b + SB_OFF_MAGIC, SB_MAGIC, 8);
	le16_put(b + SB_OFF_VERSION, SB_VERSION);
	le16_put(b + SB_OFF_HEADER_SIZE, SB_SIZE);
	le32_put(b + SB_OFF_FLAGS, sb->flags);
	le64_put(b + SB_OFF_DEVICE_SIZE, sb->device_size);
	b[SB_OFF_CHUNK_SHIFT] = (uint8_t)sb->chunk_shift;
	b[SB_OFF_ENTRY_SIZE] = sizeof(struct chunk_ent);
	le64_put(b + SB_OFF_NCHUNKS, sb->nchunks);
	le64_put(b + SB_OFF_NSLOTS, sb->nslots);
	le64_put(b + SB_OFF_GEN_RESERVED, sb->gen_reserved);
	le64_put(b + SB_OFF_DEVICE_ID, sb->device_id);
	le64_put(b + SB_OFF_CREATED, sb->created);
	le64_put(b + SB_OFF_HEAT_TICK, sb->heat_tick);
	memcpy(b + SB_OFF_STORE_SPEC, sb->store_spec, spec_len);
	le32_put(b + SB_OFF_HASH, sb_hash(b));
}

int sb_decode(const void *buf, size_t len, struct superblock *sb)
{
	const uint8_t *b = buf;
	struct superblock s;
	const char *spec;
	size_t spec_len;

	if (!buf || len < SB_SIZE)
		return -EBADMSG;
	if (memcmp(b + SB_OFF_MAGIC, SB_MAGIC, 8) != 0)
		return -EBADMSG;
	if (le16_get(b + SB_OFF_VERSION) != SB_VERSION)
		return -ENOTSUP;
	if (le16_get(b + SB_OFF_HEADER_SIZE) != SB_SIZE)
		return -EBADMSG;
	if (le32_get(b + SB_OFF_HASH) != sb_hash(b))
		return -EBADMSG;

	memset(&s, 0, sizeof s);
	s.flags = le32_get(b + SB_OFF_FLAGS);
	if (s.flags & ~SB_F_KNOWN)
		return -ENOTSUP;

	s.device_size = le64_get(b + SB_OFF_DEVICE_SIZE);
	s.chunk_shift = b[SB_OFF_CHUNK_SHIFT];
	s.nchunks = le64_get(b + SB_OFF_NCHUNKS);
	s.nslots = le64_get(b + SB_OFF_NSLOTS);
	s.gen_reserved = le64_get(b + SB_OFF_GEN_RESERVED);
	s.device_id = le64_get(b + SB_OFF_DEVICE_ID);
	s.created = le64_get(b + SB_OFF_CREATED);
	s.heat_tick = le64_get(b + SB_OFF_HEAT_TICK);

	if (s.chunk_shift < CHUNK_SHIFT_MIN || s.chunk_shift > CHUNK_SHIFT_MAX)
		return -EBADMSG;
	if (b[SB_OFF_ENTRY_SIZE] != sizeof(struct chunk_ent))
		return -EBADMSG;
	if (s.device_size == 0)
		return -EBADMSG;
	if (s.nchunks != chunks_for(s.device_size, s.chunk_shift))
		return -EBADMSG;

	spec = (const char *)b + SB_OFF_STORE_SPEC;
	spec_len = strnlen(spec, SB_STORE_SPEC_MAX);
	if (spec_len == SB_STORE_SPEC_MAX)
		return -EBADMSG;
	memcpy(s.store_spec, spec, spec_len);

	*sb = s;
	return 0;
}

static bool is_hot(uint8_t state)
{
	return state == CHUNK_HOT_CLEAN || state == CHUNK_HOT_DIRTY;
}

/* The rules for one entry on its own (everything but slot sharing). */
static bool entry_ok(const struct chunk_ent *e, const struct superblock *sb)
{
	if (e->state > CHUNK_STATE_MAX)
		return false;
	/* Any flags: run-time flags survive in the map of a process that
	 * was killed, and the engine clears them when it opens the map. */

	if (is_hot(e->state)) {
		if (e->slot == SLOT_NONE || e->slot >= sb->nslots)
			return false;
	} else if (e->slot != SLOT_NONE) {
		return false;
	}

	switch (e->state) {
	case CHUNK_ABSENT:
		return e->gen == 0;
	case CHUNK_COLD:
	case CHUNK_HOT_CLEAN:
		return e->gen != 0 && e->gen < sb->gen_reserved;
	case CHUNK_HOT_DIRTY:
		/* gen is the last committed version, if any. */
		return e->gen == 0 || e->gen < sb->gen_reserved;
	}
	return false;
}

int map_check(const struct chunk_ent *ents, uint64_t nchunks,
	      const struct superblock *sb, uint64_t *bad)
{
	uint64_t first_bad = nchunks, i;
	uint64_t nbits = 0, nwords;
	uint64_t *claimed;

	for (i = 0; i < nchunks; i++) {
		if (!entry_ok(&ents[i], sb)) {
			first_bad = i;
			break;
		}
		if (is_hot(ents[i].state) && ents[i].slot >= nbits)
			nbits = (uint64_t)ents[i].slot + 1;
	}

	/* Slots claimed twice before first_bad: the second claim is bad. */
	if (nbits) {
		nwords = DIV_ROUND_UP(nbits, 64);
		claimed = calloc(nwords, sizeof *claimed);
		if (!claimed)
			return -ENOMEM;
		for (i = 0; i < first_bad; i++) {
			uint32_t slot = ents[i].slot;
			uint64_t bit = UINT64_C(1) << (slot % 64);

			if (!is_hot(ents[i].state))
				continue;
			if (claimed[slot / 64] & bit) {
				first_bad = i;
				break;
			}
			claimed[slot / 64] |= bit;
		}
		free(claimed);
	}

	if (first_bad == nchunks)
		return 0;
	if (bad)
		*bad = first_bad;
	return -EBADMSG;
}
