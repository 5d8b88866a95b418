/* control.h - the control socket's messages, protocol "tierbd/1".
 *
 * A client connects to the unix socket (CACHE_DIR/control by default)
 * and sends requests, one line each; the server answers each with one
 * or more reply lines and keeps the connection open for the next.
 * Lines end with '\n' (LF only); the decoders below take a line
 * without its '\n'.
 *
 * Request (ASCII, at most CTL_REQ_MAX bytes before the '\n'):
 *
 *     tierbd/1 VERB [START-END]
 *
 *   "tierbd/" and the protocol version (decimal, no leading zeros),
 *   one space, the verb (lower case), and for pin/unpin one space and
 *   a byte range: START and END decimal (no leading zeros, no sign, at
 *   most 20 digits, fitting 64 bits), START < END, END excluded.
 *   Nothing else: no other spaces, tabs, control characters or bytes
 *   above 0x7e.  Verbs:
 *
 *     ping     the server's version and device
 *     stats    every counter, histogram and the probe's devices
 *     status   queues, dirty bytes, commit, probe state: a summary
 *     flush    device_flush: writes so far made durable
 *     drain    device_drain: push every dirty chunk, then commit;
 *              progress lines while it runs
 *     pin      keep the chunks covering [START, END) in the cache
 *     unpin    undo pin
 *
 * Reply: one JSON object per line (RFC 8259, UTF-8), at most
 * CTL_REPLY_MAX bytes, nested at most CTL_DEPTH_MAX deep.  Every reply
 * has "v": 1.  A final reply has "ok": true or false; a failed one has
 * "errno" (a name: "EINVAL") and "error" (a sentence).  Lines with
 * "progress" (drain) come before the final one.  Keys are 1..CTL_KEY_MAX
 * characters of [A-Za-z0-9_].  Numbers are integers (unsigned when not
 * negative) or decimals with a '.' or exponent.  Strings hold no NUL.
 * Whitespace between tokens (space, tab) is accepted, never sent.
 *
 *   {"v":1,"ok":true,"verb":"status","dirty":{"bytes":0,...},...}
 *   {"v":1,"progress":"drain","dirty_bytes":1048576,"elapsed_ms":500}
 *   {"v":1,"ok":false,"errno":"EOPNOTSUPP","error":"unknown verb ..."}
 *
 * The decoders reject anything else with -errno and a message:
 *   -EBADMSG          malformed (syntax, bytes, a limit exceeded)
 *   -EPROTONOSUPPORT  another protocol version
 *   -EOPNOTSUPP       an unknown verb
 *   -EINVAL           a known verb with wrong arguments
 *   -ERANGE           a number that does not fit
 *   -ENOMEM           out of memory
 * The fuzz target is tests/fuzz-control.c; docs/operations.md has the
 * verbs and the reply fields.
 */
#ifndef TIERBD_PROTO_CONTROL_H
#define TIERBD_PROTO_CONTROL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define CTL_VERSION 1
#define CTL_REQ_MAX 200
#define CTL_REPLY_MAX (1u << 20)
#define CTL_DEPTH_MAX 8
#define CTL_KEY_MAX 48
#define CTL_TOKENS_MAX 65536

enum ctl_verb {
	CTL_PING,
	CTL_STATS,
	CTL_STATUS,
	CTL_FLUSH,
	CTL_DRAIN,
	CTL_PIN,
	CTL_UNPIN,
	CTL_NVERBS
};

struct ctl_req {
	unsigned version;
	enum ctl_verb verb;
	uint64_t start, end; /* pin, unpin: [start, end) */
};

const char *ctl_verb_name(enum ctl_verb v);

/* Decode one request line (len bytes, no '\n').  0 or -errno, with a
 * message in err (NUL-terminated, cut to errlen). */
int ctl_req_decode(const char *line, size_t len, struct ctl_req *out, char *err,
		   size_t errlen);

/* Encode a request line (no '\n', NUL-terminated) into buf of n bytes.
 * Returns its length, or -EINVAL (bad request) / -ENOSPC. */
int ctl_req_encode(const struct ctl_req *req, char *buf, size_t n);

/* ---- replies: a writer --------------------------------------------- */

/* Builds one JSON object.  Errors (out of memory, too deep) are sticky
 * and reported by ctl_out_finish.  key is NULL inside arrays. */
struct ctl_out {
	char *buf;
	size_t len, cap;
	unsigned depth;
	bool first[CTL_DEPTH_MAX + 1];
	bool in_array[CTL_DEPTH_MAX + 1];
	int err;
};

void ctl_out_init(struct ctl_out *o); /* starts the object, adds "v" */
void ctl_out_obj(struct ctl_out *o, const char *key);
void ctl_out_arr(struct ctl_out *o, const char *key);
void ctl_out_end(struct ctl_out *o);
void ctl_out_u64(struct ctl_out *o, const char *key, uint64_t v);
void ctl_out_i64(struct ctl_out *o, const char *key, int64_t v);
void ctl_out_num(struct ctl_out *o, const char *key, double v);
void ctl_out_bool(struct ctl_out *o, const char *key, bool v);
void ctl_out_null(struct ctl_out *o, const char *key);
/* Any bytes: invalid UTF-8 is sent byte by byte as \u00XX. */
void ctl_out_str(struct ctl_out *o, const char *key, const char *s);
void ctl_out_strn(struct ctl_out *o, const char *key, const char *s, size_t n);
/* Close the object; *line (malloc'd, NUL-terminated, no '\n') and *len.
 * 0 or -errno; the builder is reset either way. */
int ctl_out_finish(struct ctl_out *o, char **line, size_t *len);
void ctl_out_free(struct ctl_out *o);

/* ---- replies: a reader ---------------------------------------------- */

enum ctl_type {
	CTL_T_OBJ, /* { : members follow, up to the matching END */
	CTL_T_ARR, /* [ */
	CTL_T_END, /* } or ] */
	CTL_T_STR,
	CTL_T_UINT,
	CTL_T_INT, /* negative only */
	CTL_T_NUM, /* with a fraction or an exponent */
	CTL_T_BOOL,
	CTL_T_NULL
};

struct ctl_tok {
	uint8_t type;
	uint8_t depth;	 /* 0: the top-level object */
	uint32_t key;	 /* offset of the key in arena, or CTL_NO_KEY */
	uint32_t str;	 /* CTL_T_STR: offset of the string in arena */
	uint32_t strlen; /* and its length (the arena NUL-terminates it) */
	union {
		uint64_t u;
		int64_t i;
		double d;
		bool b;
	} v;
};
#define CTL_NO_KEY UINT32_MAX

/* A decoded reply: its tokens in document order. */
struct ctl_msg {
	struct ctl_tok *tok;
	size_t ntok;
	char *arena; /* keys and strings, each NUL-terminated */
	size_t arena_len, arena_cap;
};

int ctl_reply_decode(const char *line, size_t len, struct ctl_msg *out,
		     char *err, size_t errlen);
void ctl_msg_free(struct ctl_msg *m); /* NULL-safe; leaves it empty */

/* Encode the tokens again (for tests: decode(encode(m)) == m). */
int ctl_msg_encode(const struct ctl_msg *m, char **line, size_t *len);

/* The token at a path of keys and array indexes joined by '.'
 * ("probe.devices.0.name"), or NULL.  The first match wins. */
const struct ctl_tok *ctl_msg_get(const struct ctl_msg *m, const char *path);
const char *ctl_msg_key(const struct ctl_msg *m, const struct ctl_tok *t);
/* Typed lookups with a default for a missing or mistyped value. */
uint64_t ctl_msg_u64(const struct ctl_msg *m, const char *path, uint64_t def);
double ctl_msg_num(const struct ctl_msg *m, const char *path, double def);
const char *ctl_msg_str(const struct ctl_msg *m, const char *path,
			const char *def);
bool ctl_msg_bool(const struct ctl_msg *m, const char *path, bool def);
/* Elements of the array at path (0 if none); up to max unsigned
 * integers of it into out. */
size_t ctl_msg_len(const struct ctl_msg *m, const char *path);
size_t ctl_msg_u64s(const struct ctl_msg *m, const char *path, uint64_t *out,
		    size_t max);

/* "EINVAL" for 22; "E<n>" for numbers it does not know. */
const char *ctl_errno_name(int err);

#endif
