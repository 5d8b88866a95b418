/* segment.h - a segment: a run of the write log packed into one object.
 *
 * Object `segs/<epoch 8 hex>/<seq 16 hex>` in the store (the key is the
 * engine's business).  Segments of a device are numbered from 1 without
 * gaps.  Segment seq holds what the write log held from lsn_start to
 * lsn_end, in order, less what a later write of the same span
 * overwrote, and what garbage collection and compaction inserted at
 * that point.  Applied in sequence order over a checkpoint they give the
 * device as it was after each of those writes: the device reopened from
 * the store is its newest checkpoint plus the longest run of consecutive
 * segments after it (docs/design.md).
 *
 * A frame is one change to the device:
 *   SEG_DATA  bytes [offset, offset+length) hold the frame's payload
 *   SEG_ZERO  bytes [offset, offset+length) are zeros (no payload)
 *   SEG_BASE  the chunk at offset is now the chunk object of generation
 *             `gen` (uploaded before this segment), whose raw data hashes
 *             to `hash`; what earlier segments wrote to it is in there
 *   SEG_TRIM  the chunk at offset holds nothing now (reads as zeros)
 * BASE and TRIM frames cover exactly one chunk (offset chunk-aligned,
 * length the chunk size, or less for the device's last chunk).  DATA and
 * ZERO frames lie within one chunk.  Frames of one segment do not
 * overlap.
 *
 * Layout: a header, an index of nframes entries, then the payload area.
 * All integers little-endian.
 *
 *   0  magic        8  "TIERBDSG"
 *   8  version      2  1
 *  10  flags        2  0 (others: -ENOTSUP)
 *  12  header_len   4  SEG_HDR_SIZE + SEG_INDEX_ENTRY * nframes: where
 *                      the payload area starts
 *  16  device_id    8
 *  24  seq          8  from 1
 *  32  epoch        4  the owner's epoch (lease.c)
 *  36  nframes      4
 *  40  lsn_start    8  the log span this segment holds
 *  48  lsn_end      8  (lsn_start == lsn_end: no client writes in it)
 *  56  created      8  unix time
 *  64  payload_len  8  bytes after header_len: the object is header_len
 *                      + payload_len bytes (its size is the reader's to
 *                      check: the decoders see only a prefix of it)
 *  72  chunk_shift  1  16..26
 *  73  spare       47  zero
 * 120  index_hash   4  XXH32(the index, seed 0)
 * 124  header_hash  4  XXH32(bytes 0..123, seed 0)
 * 128  index        nframes entries of SEG_INDEX_ENTRY (40) bytes:
 *        0  offset   8  device byte offset
 *        8  length   4  device bytes
 *       12  kind     1  SEG_DATA 1, SEG_ZERO 2, SEG_BASE 3, SEG_TRIM 4
 *       13  flags    1  SEG_F_GC: copied by garbage collection or
 *                       compaction, not a client write (others: -ENOTSUP)
 *       14  spare    2  zero
 *       16  pos      4  DATA: where the frame (its frame header) starts,
 *                       as a byte offset in the object, not in the
 *                       payload area: >= header_len; else 0
 *       20  spare    4  zero
 *       24  a        8  DATA: XXH3_64bits of the data; BASE: gen; else 0
 *       32  b        8  BASE: XXH3_64bits of the chunk's raw data; else 0
 *
 * The payload area holds the DATA frames, in index order, each a
 * SEG_FRAME_HDR (48) byte frame header and `length` bytes of data, so
 * that one frame can be fetched alone (a ranged GET of bytes pos ..
 * pos + 48 + length of the object: pos is an object offset, so a
 * checkpoint's extent, which keeps pos but not header_len, is enough)
 * and checked without the index:
 *   0  magic        4  "TBFD"
 *   4  length       4  data bytes
 *   8  offset       8  device byte offset
 *  16  seq          8  the segment's
 *  24  device_id    8
 *  32  data_hash    8  XXH3_64bits of the data
 *  40  spare        4  zero
 *  44  hdr_hash     4  XXH32(bytes 0..43, seed 0)
 */
#ifndef TIERBD_SEGMENT_H
#define TIERBD_SEGMENT_H

#include <stddef.h>
#include <stdint.h>

#define SEG_MAGIC "TIERBDSG"
#define SEG_VERSION 1
#define SEG_HDR_SIZE 128
#define SEG_INDEX_ENTRY 40
#define SEG_FRAME_HDR 48
#define SEG_FRAME_MAGIC "TBFD"
/* header_len and every pos are u32: a segment is below 4 GiB. */
#define SEG_MAX_LEN 0xF0000000u

enum seg_kind {
	SEG_DATA = 1,
	SEG_ZERO = 2,
	SEG_BASE = 3,
	SEG_TRIM = 4,
};
#define SEG_F_GC 0x1u

struct seg_info {
	uint64_t device_id;
	uint64_t seq;
	uint32_t epoch;
	uint32_t nframes;
	uint64_t lsn_start, lsn_end;
	uint64_t created;
	uint64_t payload_len;
	uint32_t header_len;
	unsigned chunk_shift;
};

struct seg_frame {
	uint64_t offset;
	uint32_t length;
	uint8_t kind, flags;
	uint32_t pos;	  /* DATA: frame start, an offset in the object */
	uint64_t a, b;	  /* see the index above */
	const void *data; /* encode: DATA's length bytes (a is computed) */
};

/* The encoded size of a segment with these frames. */
size_t seg_encoded_len(const struct seg_frame *frames, uint32_t nframes);

/* Encode a segment: info's device_id, seq, epoch, lsn_start, lsn_end,
 * created and chunk_shift are used; nframes, header_len and payload_len
 * are computed and stored back in *info.  For each DATA frame, the data
 * is hashed (frames[i].a set) and copied after its frame header, and
 * frames[i].pos is set (0 for other kinds).  out has room for
 * seg_encoded_len() bytes.  Checks info (chunk_shift 16..26, seq != 0,
 * lsn_start <= lsn_end) and the frames (kinds, known flags,
 * BASE/TRIM chunk-aligned and at most one chunk long (the encoder does
 * not know the device's size: the decoder checks that a short one is
 * the last chunk), DATA/ZERO within one chunk, length > 0, no two
 * overlapping, gen != 0 for BASE, a and b zero where the index says 0,
 * data for DATA): -EINVAL otherwise, -EFBIG past SEG_MAX_LEN.  Returns
 * the encoded length or -errno. */
long seg_encode(struct seg_info *info, struct seg_frame *frames,
		uint32_t nframes, void *out, size_t out_size);

/* Decode the fixed header of a segment (buf holds at least
 * SEG_HDR_SIZE bytes of it; len is what buf holds).  Checks magic,
 * version (-ENOTSUP), header_hash, flags == 0 (-ENOTSUP), chunk_shift
 * range, seq != 0, header_len == SEG_HDR_SIZE + SEG_INDEX_ENTRY *
 * nframes, header_len + payload_len <= SEG_MAX_LEN, lsn_start <=
 * lsn_end.  -EBADMSG otherwise.  Then info->header_len says how much to
 * read for seg_decode_index. */
int seg_decode_header(const void *buf, size_t len, struct seg_info *info);

/* Decode the index (buf holds at least info->header_len bytes of the
 * segment, from its start; info from seg_decode_header of that same
 * header, which is read again here for the index_hash: another header
 * is -EBADMSG).  *frames is a malloc'd array of info->nframes frames
 * (NULL when none; data pointers NULL).  Checks index_hash and every
 * entry as seg_encode does, plus DATA frames lying inside the payload
 * area ([pos, pos + 48 + length) within [header_len, header_len +
 * payload_len)) in increasing pos order without overlap.  `device_size`
 * bounds every frame (offset + length <= device_size), and a BASE or
 * TRIM frame is exactly its chunk (length == MIN(chunk size,
 * device_size - offset)).  -ENOTSUP for an unknown frame flag, -EBADMSG
 * on any other violation, -ENOMEM. */
int seg_decode_index(const void *buf, size_t len, const struct seg_info *info,
		     uint64_t device_size, struct seg_frame **frames);

/* Check one DATA frame fetched alone: buf holds len bytes starting at
 * the frame header.  The header must say magic, offset, length, seq
 * and device_id as expected, its hash and the data hash must match.
 * On success *data points at the frame's data (length bytes) in buf.
 * -EBADMSG otherwise (also when len < SEG_FRAME_HDR + length; bytes
 * after the frame are ignored). */
int seg_frame_check(const void *buf, size_t len, uint64_t device_id,
		    uint64_t seq, uint64_t offset, uint32_t length,
		    const void **data);

#endif
