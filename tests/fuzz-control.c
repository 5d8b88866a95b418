/* fuzz-control.c - fuzz target for the control protocol's decoders.
 *
 * Built with libFuzzer (meson -Dfuzz=true, clang) or with
 * tests/fuzz-driver.c (the smoke test).  The first byte of an input
 * chooses the decoder (even: a request line, odd: a reply line); the
 * rest is the line, without its '\n'.
 *
 * Requests: the result must be 0 or one of the documented errors, and
 * an accepted request must encode back to exactly the same line (the
 * grammar has one spelling per request).
 *
 * Replies: the result must be 0 or a documented error, with a message;
 * an accepted reply must hold a top-level object with "v", balanced
 * containers no deeper than CTL_DEPTH_MAX, keys by the key rules, and
 * strings without NUL; encoding its tokens and decoding that must give
 * the same tokens (types, depths, keys, values bit for bit), and the
 * lookups (ctl_msg_get of every key seen, arrays) must not misbehave.
 * The input is copied to an exact-size buffer, so an overread reaches
 * the sanitizer's redzone.
 */
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "proto/control.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
size_t fuzz_seed(unsigned int n, uint8_t **out);
int fuzz_seed_check(const uint8_t *data, size_t size);
void fuzz_report(FILE *fp);

static struct {
	unsigned long req_ok, req_err, reply_ok, reply_err, roundtrips, lookups;
} st;

static void die(const char *what, long r) __attribute__((noreturn));
static void die(const char *what, long r)
{
	fprintf(stderr, "fuzz-control: %s (%ld)\n", what, r);
	abort();
}

static bool allowed(int r)
{
	return r == -EBADMSG || r == -EPROTONOSUPPORT || r == -EOPNOTSUPP ||
	       r == -EINVAL || r == -ERANGE;
}

static int check_request(const char *line, size_t len)
{
	struct ctl_req req;
	char err[256] = "", again[CTL_REQ_MAX + 1];
	int r = ctl_req_decode(line, len, &req, err, sizeof(err));

	if (r < 0) {
		if (!allowed(r))
			die("request: unexpected error", r);
		if (!err[0])
			die("request: an error without a message", r);
		st.req_err++;
		return r;
	}
	st.req_ok++;
	if (req.version != CTL_VERSION || (unsigned)req.verb >= CTL_NVERBS)
		die("request: accepted with bad fields", req.verb);
	if ((req.verb == CTL_PIN || req.verb == CTL_UNPIN) &&
	    req.start >= req.end)
		die("request: accepted an empty range", 0);
	r = ctl_req_encode(&req, again, sizeof(again));
	if (r < 0)
		die("request: re-encoding failed", r);
	if ((size_t)r != len || memcmp(again, line, len) != 0)
		die("request: re-encoding differs", r);
	st.roundtrips++;
	return 0;
}

static bool key_ok(const char *k)
{
	size_t n = strlen(k);

	if (n == 0 || n > CTL_KEY_MAX)
		return false;
	for (size_t i = 0; i < n; i++)
		if (!((k[i] >= 'a' && k[i] <= 'z') ||
		      (k[i] >= 'A' && k[i] <= 'Z') ||
		      (k[i] >= '0' && k[i] <= '9') || k[i] == '_'))
			return false;
	return true;
}

static void check_structure(const struct ctl_msg *m)
{
	unsigned depth = 0;

	if (m->ntok < 2 || m->tok[0].type != CTL_T_OBJ || m->tok[0].depth)
		die("reply: no top-level object", (long)m->ntok);
	for (size_t i = 0; i < m->ntok; i++) {
		const struct ctl_tok *t = &m->tok[i];
		const char *k = ctl_msg_key(m, t);

		if (t->type > CTL_T_NULL)
			die("reply: unknown token type", t->type);
		if (t->type == CTL_T_END) {
			if (t->depth + 1u != depth)
				die("reply: unbalanced end", t->depth);
			depth--;
			if (depth == 0 && i + 1 != m->ntok)
				die("reply: tokens after the end", (long)i);
			continue;
		}
		if (t->depth != depth || depth > CTL_DEPTH_MAX + 1)
			die("reply: wrong depth", t->depth);
		if (k && !key_ok(k))
			die("reply: a key breaks the rules", (long)i);
		if (t->type == CTL_T_STR &&
		    (t->str + (size_t)t->strlen >= m->arena_len ||
		     memchr(m->arena + t->str, 0, t->strlen)))
			die("reply: bad string", (long)i);
		if (t->type == CTL_T_INT && t->v.i >= 0)
			die("reply: a non-negative INT", (long)i);
		if (t->type == CTL_T_OBJ || t->type == CTL_T_ARR) {
			if (t->depth > CTL_DEPTH_MAX)
				die("reply: nested too deep", t->depth);
			depth++;
		}
	}
	if (depth != 0)
		die("reply: unclosed container", depth);
}

static bool same(const struct ctl_msg *a, const struct ctl_msg *b)
{
	if (a->ntok != b->ntok)
		return false;
	for (size_t i = 0; i < a->ntok; i++) {
		const struct ctl_tok *x = &a->tok[i], *y = &b->tok[i];
		const char *kx = ctl_msg_key(a, x), *ky = ctl_msg_key(b, y);

		if (x->type != y->type || x->depth != y->depth || !kx != !ky ||
		    (kx && strcmp(kx, ky) != 0))
			return false;
		switch (x->type) {
		case CTL_T_STR:
			if (x->strlen != y->strlen ||
			    memcmp(a->arena + x->str, b->arena + y->str,
				   x->strlen) != 0)
				return false;
			break;
		case CTL_T_UINT:
		case CTL_T_INT:
		case CTL_T_NUM:
			if (memcmp(&x->v, &y->v, sizeof(x->v)) != 0)
				return false;
			break;
		case CTL_T_BOOL:
			if (x->v.b != y->v.b)
				return false;
			break;
		default:
			break;
		}
	}
	return true;
}

static int check_reply(const char *line, size_t len)
{
	struct ctl_msg m, again;
	char err[256] = "";
	char *enc = NULL;
	size_t enclen;
	int r = ctl_reply_decode(line, len, &m, err, sizeof(err));

	if (r < 0) {
		if (!allowed(r))
			die("reply: unexpected error", r);
		if (!err[0])
			die("reply: an error without a message", r);
		if (m.tok || m.ntok)
			die("reply: tokens left after an error", r);
		st.reply_err++;
		return r;
	}
	st.reply_ok++;
	check_structure(&m);
	if (ctl_msg_u64(&m, "v", 0) != CTL_VERSION)
		die("reply: accepted without v", 0);

	/* Lookups by every top-level and second-level key. */
	for (size_t i = 1; i < m.ntok && i < 200; i++) {
		const struct ctl_tok *t = &m.tok[i];
		const char *k = ctl_msg_key(&m, t);
		char path[2 * CTL_KEY_MAX + 2];
		uint64_t v[8];

		if (!k || t->depth != 1)
			continue;
		if (!ctl_msg_get(&m, k))
			die("reply: a top-level key is not found", (long)i);
		(void)ctl_msg_u64s(&m, k, v, 8);
		(void)ctl_msg_str(&m, k, NULL);
		snprintf(path, sizeof(path), "%s.0", k);
		(void)ctl_msg_num(&m, path, 0);
		st.lookups++;
	}

	r = ctl_msg_encode(&m, &enc, &enclen);
	if (r < 0) {
		/* Only a reply near the length limit may grow past it. */
		if (r != -E2BIG)
			die("reply: re-encoding failed", r);
		ctl_msg_free(&m);
		return 0;
	}
	r = ctl_reply_decode(enc, enclen, &again, err, sizeof(err));
	if (r < 0) {
		fprintf(stderr, "re-encoded: %.*s\nerror: %s\n", (int)enclen,
			enc, err);
		die("reply: the re-encoding does not decode", r);
	}
	if (!same(&m, &again))
		die("reply: the re-encoding decodes differently", 0);
	st.roundtrips++;
	free(enc);
	ctl_msg_free(&again);
	ctl_msg_free(&m);
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *line;

	if (size == 0)
		return 0;
	line = malloc(size - 1 ? size - 1 : 1);
	if (!line)
		die("out of memory", 0);
	memcpy(line, data + 1, size - 1);
	if (data[0] & 1)
		check_reply(line, size - 1);
	else
		check_request(line, size - 1);
	free(line);
	return 0;
}

static size_t seed_of(bool reply, const char *s, uint8_t **out)
{
	size_t n = strlen(s);

	*out = malloc(n + 1);
	if (!*out)
		die("out of memory", 0);
	(*out)[0] = reply ? 1 : 0; /* odd: a reply, even: a request */
	memcpy(*out + 1, s, n);
	return n + 1;
}

/* A reply as the server writes it, from the writer API. */
static size_t seed_reply_built(uint8_t **out)
{
	struct ctl_out o;
	char *line;
	size_t len, n;

	ctl_out_init(&o);
	ctl_out_bool(&o, "ok", true);
	ctl_out_str(&o, "verb", "stats");
	ctl_out_obj(&o, "cache");
	ctl_out_u64(&o, "hits", 12345);
	ctl_out_num(&o, "hit_ratio", 0.96875);
	ctl_out_arr(&o, "hist");
	for (int i = 0; i < 12; i++)
		ctl_out_u64(&o, NULL, (uint64_t)i * i);
	ctl_out_end(&o);
	ctl_out_end(&o);
	ctl_out_obj(&o, "probe");
	ctl_out_str(&o, "state", "loaded (tp_btf)");
	ctl_out_arr(&o, "devices");
	ctl_out_obj(&o, NULL);
	ctl_out_str(&o, "name", "vda");
	ctl_out_i64(&o, "inflight", -1);
	ctl_out_str(&o, "note",
		    "tab\there \"quoted\" \\ \x01 caf\xc3\xa9 \xff");
	ctl_out_null(&o, "none");
	ctl_out_end(&o);
	ctl_out_end(&o);
	ctl_out_end(&o);
	if (ctl_out_finish(&o, &line, &len) < 0)
		die("seed: the writer failed", 0);
	*out = malloc(len + 1);
	if (!*out)
		die("out of memory", 0);
	(*out)[0] = 1;
	memcpy(*out + 1, line, len);
	n = len + 1;
	free(line);
	return n;
}

size_t fuzz_seed(unsigned int n, uint8_t **out)
{
	static const char *const reqs[] = {
		"tierbd/1 ping",
		"tierbd/1 stats",
		"tierbd/1 status",
		"tierbd/1 flush",
		"tierbd/1 drain",
		"tierbd/1 pin 0-1048576",
		"tierbd/1 unpin 4096-18446744073709551615",
	};
	static const char *const replies[] = {
		"{\"v\":1,\"ok\":true,\"verb\":\"ping\",\"version\":\"0.1.0\"}",
		"{\"v\":1,\"ok\":false,\"errno\":\"EOPNOTSUPP\",\"error\":"
		"\"unknown verb 'x'\"}",
		"{\"v\":1,\"progress\":\"drain\",\"dirty_bytes\":1048576,"
		"\"elapsed_ms\":500}",
		"{ \"v\" : 1 ,\t\"a\":[1,-2,3.5,-0.25e-3,true,false,null,"
		"\"\\u00e9\\n\\/\"],\"o\":{\"p\":{\"q\":[[],{}]}}}",
	};
	const unsigned nreq = sizeof(reqs) / sizeof(reqs[0]);
	const unsigned nrep = sizeof(replies) / sizeof(replies[0]);

	if (n < nreq)
		return seed_of(false, reqs[n], out);
	n -= nreq;
	if (n < nrep)
		return seed_of(true, replies[n], out);
	if (n == nrep)
		return seed_reply_built(out);
	*out = NULL;
	return 0;
}

int fuzz_seed_check(const uint8_t *data, size_t size)
{
	char *line;
	int r;

	if (size == 0)
		return -EINVAL;
	line = malloc(size);
	if (!line)
		return -ENOMEM;
	memcpy(line, data + 1, size - 1);
	r = data[0] & 1 ? check_reply(line, size - 1)
			: check_request(line, size - 1);
	free(line);
	return r;
}

void fuzz_report(FILE *fp)
{
	fprintf(fp,
		"control requests: %lu ok, %lu rejected; replies: %lu ok, "
		"%lu rejected; %lu round trips, %lu lookups\n",
		st.req_ok, st.req_err, st.reply_ok, st.reply_err, st.roundtrips,
		st.lookups);
}
