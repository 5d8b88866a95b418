/* chunk_object.c - encode and decode one chunk version (see chunk_object.h).
 *
 * The encoder compresses with lz4 (block format) and keeps the result
 * only when it is smaller than the data; otherwise the payload is the
 * raw data and the lz4 flag is clear.  Two hashes guard an object: an
 * XXH32 over the fixed header fields (so a corrupt length or flag is
 * caught before it is acted on) and an XXH3_64bits over the raw data
 * (so a corrupt payload is caught whatever lz4 makes of it).
 *
 * The decoder trusts nothing in the object.  Its order of checks:
 *   1. len >= 64 and the magic                     else -EBADMSG
 *   2. version == 1                                else -ENOTSUP
 *      (before the header hash: a later version may hash differently)
 *   3. 64 <= header_size <= len, payload_len == len - header_size,
 *      header hash                                 else -EBADMSG
 *   4. no flag bits other than CHUNK_OBJ_F_LZ4     else -ENOTSUP
 *   5. index, generation, device id, raw_len as expected  else -ESTALE
 *   6. raw_len <= data_size; the payload yields exactly raw_len bytes
 *      (lz4: LZ4_decompress_safe with capacity raw_len; raw: payload_len
 *      == raw_len); the data hash matches         else -EBADMSG
 * Only step 6 writes into data, and only data[0..raw_len).
 */
#include <errno.h>
#include <limits.h>
#include <string.h>

#include <lz4.h>
#include <xxhash.h>

#include "common/util.h"
#include "proto/chunk_object.h"

/* Byte offsets of the header fields (the table in chunk_object.h). */
enum {
	OFF_MAGIC = 0,
	OFF_VERSION = 8,
	OFF_HEADER_SIZE = 10,
	OFF_FLAGS = 12,
	OFF_INDEX = 16,
	OFF_GENERATION = 24,
	OFF_RAW_LEN = 32,
	OFF_PAYLOAD_LEN = 36,
	OFF_DATA_HASH = 40,
	OFF_DEVICE_ID = 48,
	OFF_SPARE = 56,
	OFF_HEADER_HASH = 60,
};

_Static_assert(sizeof(CHUNK_OBJ_MAGIC) - 1 == 8, "magic is 8 bytes");
_Static_assert(OFF_HEADER_HASH + 4 == CHUNK_OBJ_HEADER_SIZE, "header size");

static uint32_t header_hash(const uint8_t *hdr)
{
	return XXH32(hdr, OFF_HEADER_HASH, 0);
}

/* Worst case: lz4's bound, which is never below raw_len.  Data too large
 * for lz4 is always stored raw. */
size_t chunk_obj_bound(uint32_t raw_len)
{
	size_t payload = raw_len;

	if (raw_len <= LZ4_MAX_INPUT_SIZE)
		payload = (size_t)LZ4_compressBound((int)raw_len);
	return CHUNK_OBJ_HEADER_SIZE + MAX(payload, (size_t)raw_len);
}

long chunk_obj_encode(struct chunk_obj_info *info, const void *data, void *out,
		      size_t out_size)
{
	uint8_t *hdr = out;
	uint8_t *payload = hdr + CHUNK_OBJ_HEADER_SIZE;
	uint32_t raw_len = info->raw_len;
	uint32_t flags = 0;
	uint32_t payload_len = raw_len;
	int n = 0;

	if (!out || (!data && raw_len) || out_size < chunk_obj_bound(raw_len))
		return -EINVAL;

	info->data_hash = XXH3_64bits(data, raw_len);

	/* The capacity raw_len - 1 makes lz4 give up (return 0) as soon as
	 * the output would not be smaller than the data, which is also the
	 * cheap exit for incompressible chunks. */
	if (raw_len > 1 && raw_len <= LZ4_MAX_INPUT_SIZE)
		n = LZ4_compress_default(data, (char *)payload, (int)raw_len,
					 (int)raw_len - 1);
	if (n > 0 && (uint32_t)n < raw_len) {
		flags |= CHUNK_OBJ_F_LZ4;
		payload_len = (uint32_t)n;
	} else if (raw_len) {
		memcpy(payload, data, raw_len);
	}

	memset(hdr, 0, CHUNK_OBJ_HEADER_SIZE);
	memcpy(hdr + OFF_MAGIC, CHUNK_OBJ_MAGIC, 8);
	le16_put(hdr + OFF_VERSION, CHUNK_OBJ_VERSION);
	le16_put(hdr + OFF_HEADER_SIZE, CHUNK_OBJ_HEADER_SIZE);
	le32_put(hdr + OFF_FLAGS, flags);
	le64_put(hdr + OFF_INDEX, info->index);
	le64_put(hdr + OFF_GENERATION, info->generation);
	le32_put(hdr + OFF_RAW_LEN, raw_len);
	le32_put(hdr + OFF_PAYLOAD_LEN, payload_len);
	le64_put(hdr + OFF_DATA_HASH, info->data_hash);
	le64_put(hdr + OFF_DEVICE_ID, info->device_id);
	le32_put(hdr + OFF_SPARE, 0);
	le32_put(hdr + OFF_HEADER_HASH, header_hash(hdr));

	return (long)(CHUNK_OBJ_HEADER_SIZE + (size_t)payload_len);
}

/* -ESTALE when a checked field of expect differs from got. */
static int check_expected(const struct chunk_obj_info *expect,
			  const struct chunk_obj_info *got)
{
	if (!expect)
		return 0;
	if (expect->index != UINT64_MAX && expect->index != got->index)
		return -ESTALE;
	if (expect->generation != UINT64_MAX &&
	    expect->generation != got->generation)
		return -ESTALE;
	if (expect->device_id != UINT64_MAX &&
	    expect->device_id != got->device_id)
		return -ESTALE;
	if (expect->raw_len != UINT32_MAX && expect->raw_len != got->raw_len)
		return -ESTALE;
	return 0;
}

int chunk_obj_view(const void *obj, size_t len,
		   const struct chunk_obj_info *expect, void *scratch,
		   size_t scratch_size, const void **data,
		   struct chunk_obj_info *got)
{
	const uint8_t *hdr = obj;
	struct chunk_obj_info info;
	uint32_t header_size, flags, payload_len;
	const uint8_t *payload;
	int r;

	if (!obj || len < CHUNK_OBJ_HEADER_SIZE)
		return -EBADMSG;
	if (memcmp(hdr + OFF_MAGIC, CHUNK_OBJ_MAGIC, 8) != 0)
		return -EBADMSG;
	if (le16_get(hdr + OFF_VERSION) != CHUNK_OBJ_VERSION)
		return -ENOTSUP;

	header_size = le16_get(hdr + OFF_HEADER_SIZE);
	payload_len = le32_get(hdr + OFF_PAYLOAD_LEN);
	if (header_size < CHUNK_OBJ_HEADER_SIZE || header_size > len)
		return -EBADMSG;
	if ((uint64_t)payload_len != (uint64_t)(len - header_size))
		return -EBADMSG;
	if (le32_get(hdr + OFF_HEADER_HASH) != header_hash(hdr))
		return -EBADMSG;

	/* The header is authentic from here on. */
	flags = le32_get(hdr + OFF_FLAGS);
	if (flags & ~CHUNK_OBJ_F_LZ4)
		return -ENOTSUP;

	info.index = le64_get(hdr + OFF_INDEX);
	info.generation = le64_get(hdr + OFF_GENERATION);
	info.device_id = le64_get(hdr + OFF_DEVICE_ID);
	info.raw_len = le32_get(hdr + OFF_RAW_LEN);
	info.data_hash = le64_get(hdr + OFF_DATA_HASH);

	r = check_expected(expect, &info);
	if (r) {
		/* Say what was found, for the caller's message. */
		if (got)
			*got = info;
		return r;
	}

	payload = hdr + header_size;
	if (flags & CHUNK_OBJ_F_LZ4) {
		if (info.raw_len > scratch_size || (info.raw_len && !scratch))
			return -EBADMSG;
		if (payload_len > INT_MAX || info.raw_len > INT_MAX)
			return -EBADMSG;
		/* Capacity raw_len, not scratch_size: a stream that would
		 * produce more than raw_len bytes fails here. */
		r = LZ4_decompress_safe((const char *)payload, scratch,
					(int)payload_len, (int)info.raw_len);
		if (r < 0 || (uint32_t)r != info.raw_len)
			return -EBADMSG;
		payload = scratch;
	} else if (payload_len != info.raw_len) {
		return -EBADMSG;
	}

	if (XXH3_64bits(payload, info.raw_len) != info.data_hash)
		return -EBADMSG;

	*data = payload;
	if (got)
		*got = info;
	return 0;
}

int chunk_obj_decode(const void *obj, size_t len,
		     const struct chunk_obj_info *expect, void *data,
		     size_t data_size, struct chunk_obj_info *got)
{
	struct chunk_obj_info info = { 0 };
	const void *p = NULL;
	int r;

	r = chunk_obj_view(obj, len, expect, data, data_size, &p, &info);
	if (got && (r == 0 || r == -ESTALE))
		*got = info;
	if (r < 0)
		return r;
	if (p != data) {
		if (info.raw_len > data_size || (info.raw_len && !data))
			return -EBADMSG;
		if (info.raw_len) /* data may be NULL for an empty chunk */
			memcpy(data, p, info.raw_len);
	}
	return 0;
}
