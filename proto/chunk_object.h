/* chunk_object.h - the format of one chunk version in the cold store.
 *
 * An object is a 64-byte header followed by the payload.  All integers
 * are little-endian.
 *
 *   0  magic        8  "TIERBDC1"
 *   8  version      2  1
 *  10  header_size  2  64 (a decoder accepts larger, skipping the rest)
 *  12  flags        4  bit 0: payload is lz4 block compressed
 *  16  index        8  chunk index in the device
 *  24  generation   8  version of the chunk (never reused for an index)
 *  32  raw_len      4  bytes of chunk data after decompression
 *  36  payload_len  4  bytes following the header
 *  40  data_hash    8  XXH3_64bits of the raw chunk data
 *  48  device_id    8  the device this chunk belongs to
 *  56  spare        4  zero
 *  60  header_hash  4  XXH32(bytes 0..59, seed 0)
 *  64  payload      payload_len bytes
 *
 * The payload is stored uncompressed when lz4 does not make it smaller.
 */
#ifndef TIERBD_CHUNK_OBJECT_H
#define TIERBD_CHUNK_OBJECT_H

#include <stddef.h>
#include <stdint.h>

#define CHUNK_OBJ_MAGIC "TIERBDC1"
#define CHUNK_OBJ_VERSION 1
#define CHUNK_OBJ_HEADER_SIZE 64
#define CHUNK_OBJ_F_LZ4 0x1u

struct chunk_obj_info {
	uint64_t index;
	uint64_t generation;
	uint64_t device_id;
	uint32_t raw_len;
	uint64_t data_hash; /* XXH3_64bits of the raw data */
};

/* Worst-case encoded size of raw_len bytes of data. */
size_t chunk_obj_bound(uint32_t raw_len);

/* Encode data (info->raw_len bytes) into out, which has out_size >=
 * chunk_obj_bound(raw_len) bytes.  info->data_hash is computed and
 * stored back into *info.  Returns the encoded length, or -errno. */
long chunk_obj_encode(struct chunk_obj_info *info, const void *data, void *out,
		      size_t out_size);

/* Decode obj (len bytes) into data, which has room for data_size bytes.
 * Checks magic, version, sizes, both hashes, and that the index,
 * generation, device id and raw length equal *expect (fields of expect
 * that are ~0 are not checked; raw_len must then fit data_size).  On
 * success fills *got (may be NULL) and returns 0; on -ESTALE, *got says
 * what was found.  Errors:
 *   -EBADMSG   not an object, truncated, corrupt, or hash mismatch
 *   -ENOTSUP   a version (or flag) this code does not know
 *   -ESTALE    a valid object, but not the expected index/gen/device
 * Never reads outside obj[0..len) nor writes outside data[0..data_size). */
int chunk_obj_decode(const void *obj, size_t len,
		     const struct chunk_obj_info *expect, void *data,
		     size_t data_size, struct chunk_obj_info *got);

/* The same checks, without copying a raw payload: *data points into obj
 * (raw) or to scratch (compressed, decoded there; scratch_size as
 * data_size above).  For a fetch, whose buffers are reused. */
int chunk_obj_view(const void *obj, size_t len,
		   const struct chunk_obj_info *expect, void *scratch,
		   size_t scratch_size, const void **data,
		   struct chunk_obj_info *got);

#endif
