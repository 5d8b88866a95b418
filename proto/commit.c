/* commit.c - encode and decode a commit (see commit.h).
 *
 * The decoder trusts nothing: the header hash is checked before any
 * length is used, the payload must decompress to exactly raw_len bytes
 * whose hash matches, and every entry is checked against the device
 * geometry, so a commit that decodes can be loaded into a map as is.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <lz4.h>
#include <xxhash.h>

#include "common/util.h"
#include "proto/cachemap.h"
#include "proto/commit.h"

enum {
	OFF_MAGIC = 0,
	OFF_VERSION = 8,
	OFF_HEADER_SIZE = 10,
	OFF_FLAGS = 12,
	OFF_SEQ = 16,
	OFF_DEVICE_ID = 24,
	OFF_DEVICE_SIZE = 32,
	OFF_CHUNK_SHIFT = 40,
	OFF_NENTRIES = 48,
	OFF_GEN_FLOOR = 56,
	OFF_CREATED = 64,
	OFF_RAW_LEN = 72,
	OFF_PAYLOAD_LEN = 80,
	OFF_DATA_HASH = 88,
	OFF_DEV_CREATED = 96,
	OFF_HEADER_HASH = 124,
};

_Static_assert(OFF_HEADER_HASH + 4 == COMMIT_HEADER_SIZE, "header size");

int commit_encode(const struct commit_info *info,
		  const struct commit_entry *ents, void **out, size_t *len)
{
	uint64_t n = info->nentries;
	size_t raw_len = (size_t)n * COMMIT_ENTRY_SIZE;
	uint8_t *raw = NULL, *obj;
	int bound, clen;

	if (n > COMMIT_MAX_ENTRIES)
		return -EINVAL;
	for (uint64_t i = 0; i < n; i++) {
		if (ents[i].gen == 0 ||
		    (i && ents[i].index <= ents[i - 1].index))
			return -EINVAL;
	}
	if (raw_len) {
		raw = malloc(raw_len);
		if (!raw)
			return -ENOMEM;
	}
	for (uint64_t i = 0; i < n; i++) {
		le64_put(raw + i * COMMIT_ENTRY_SIZE, ents[i].index);
		le64_put(raw + i * COMMIT_ENTRY_SIZE + 8, ents[i].gen);
		le64_put(raw + i * COMMIT_ENTRY_SIZE + 16, ents[i].hash);
		le32_put(raw + i * COMMIT_ENTRY_SIZE + 24, ents[i].heat);
		le32_put(raw + i * COMMIT_ENTRY_SIZE + 28, ents[i].tick);
	}
	bound = LZ4_compressBound((int)raw_len);
	obj = calloc(1, COMMIT_HEADER_SIZE + (size_t)bound);
	if (!obj) {
		free(raw);
		return -ENOMEM;
	}
	clen = raw_len ? LZ4_compress_default((const char *)raw,
					      (char *)obj + COMMIT_HEADER_SIZE,
					      (int)raw_len, bound)
		       : 0;
	if (raw_len && clen <= 0) {
		free(raw);
		free(obj);
		return -EIO;
	}
	memcpy(obj + OFF_MAGIC, COMMIT_MAGIC, 8);
	le16_put(obj + OFF_VERSION, COMMIT_VERSION);
	le16_put(obj + OFF_HEADER_SIZE, COMMIT_HEADER_SIZE);
	le32_put(obj + OFF_FLAGS, 0);
	le64_put(obj + OFF_SEQ, info->seq);
	le64_put(obj + OFF_DEVICE_ID, info->device_id);
	le64_put(obj + OFF_DEVICE_SIZE, info->device_size);
	obj[OFF_CHUNK_SHIFT] = (uint8_t)info->chunk_shift;
	le64_put(obj + OFF_NENTRIES, n);
	le64_put(obj + OFF_GEN_FLOOR, info->gen_floor);
	le64_put(obj + OFF_CREATED, info->created);
	le64_put(obj + OFF_DEV_CREATED, info->dev_created);
	le64_put(obj + OFF_RAW_LEN, raw_len);
	le64_put(obj + OFF_PAYLOAD_LEN, (uint64_t)clen);
	le64_put(obj + OFF_DATA_HASH, XXH3_64bits(raw, raw_len));
	le32_put(obj + OFF_HEADER_HASH, XXH32(obj, OFF_HEADER_HASH, 0));
	free(raw);
	*out = obj;
	*len = COMMIT_HEADER_SIZE + (size_t)clen;
	return 0;
}

int commit_decode(const void *obj, size_t len, struct commit_info *info,
		  struct commit_entry **ents)
{
	const uint8_t *p = obj;
	uint64_t hsize, raw_len, payload_len, nchunks, n;
	struct commit_entry *e = NULL;
	uint8_t *raw = NULL;
	int r = -EBADMSG;

	*ents = NULL;
	if (len < COMMIT_HEADER_SIZE || memcmp(p, COMMIT_MAGIC, 8) != 0)
		return -EBADMSG;
	if (le16_get(p + OFF_VERSION) != COMMIT_VERSION)
		return -ENOTSUP;
	if (XXH32(p, OFF_HEADER_HASH, 0) != le32_get(p + OFF_HEADER_HASH))
		return -EBADMSG;
	hsize = le16_get(p + OFF_HEADER_SIZE);
	raw_len = le64_get(p + OFF_RAW_LEN);
	payload_len = le64_get(p + OFF_PAYLOAD_LEN);
	if (hsize < COMMIT_HEADER_SIZE || hsize > len ||
	    payload_len != len - hsize)
		return -EBADMSG;
	if (le32_get(p + OFF_FLAGS) != 0)
		return -ENOTSUP;

	info->seq = le64_get(p + OFF_SEQ);
	info->device_id = le64_get(p + OFF_DEVICE_ID);
	info->device_size = le64_get(p + OFF_DEVICE_SIZE);
	info->chunk_shift = p[OFF_CHUNK_SHIFT];
	info->nentries = n = le64_get(p + OFF_NENTRIES);
	info->gen_floor = le64_get(p + OFF_GEN_FLOOR);
	info->created = le64_get(p + OFF_CREATED);
	info->dev_created = le64_get(p + OFF_DEV_CREATED);
	if (info->chunk_shift < CHUNK_SHIFT_MIN ||
	    info->chunk_shift > CHUNK_SHIFT_MAX || info->device_size == 0 ||
	    info->device_size > (UINT64_C(1) << 62) || info->seq == 0)
		return -EBADMSG;
	nchunks = DIV_ROUND_UP(info->device_size, UINT64_C(1)
							  << info->chunk_shift);
	if (n > COMMIT_MAX_ENTRIES || n > nchunks ||
	    raw_len != n * COMMIT_ENTRY_SIZE || (n == 0) != (payload_len == 0))
		return -EBADMSG;
	if (n == 0)
		return XXH3_64bits(NULL, 0) == le64_get(p + OFF_DATA_HASH)
			       ? 0
			       : -EBADMSG;
	if (payload_len > (uint64_t)LZ4_compressBound((int)raw_len))
		return -EBADMSG;

	raw = malloc(raw_len);
	e = malloc(n * sizeof(*e));
	if (!raw || !e) {
		r = -ENOMEM;
		goto out;
	}
	if (LZ4_decompress_safe((const char *)p + hsize, (char *)raw,
				(int)payload_len,
				(int)raw_len) != (int)raw_len ||
	    XXH3_64bits(raw, raw_len) != le64_get(p + OFF_DATA_HASH))
		goto out;
	for (uint64_t i = 0; i < n; i++) {
		e[i].index = le64_get(raw + i * COMMIT_ENTRY_SIZE);
		e[i].gen = le64_get(raw + i * COMMIT_ENTRY_SIZE + 8);
		e[i].hash = le64_get(raw + i * COMMIT_ENTRY_SIZE + 16);
		e[i].heat = le32_get(raw + i * COMMIT_ENTRY_SIZE + 24);
		e[i].tick = le32_get(raw + i * COMMIT_ENTRY_SIZE + 28);
		if (e[i].index >= nchunks || e[i].gen == 0 ||
		    e[i].gen >= info->gen_floor ||
		    (i && e[i].index <= e[i - 1].index))
			goto out;
	}
	*ents = e;
	e = NULL;
	r = 0;
out:
	free(raw);
	free(e);
	return r;
}
