/* control.c - encode and decode the control protocol (control.h).
 *
 * Requests are parsed by hand against the grammar in control.h; nothing
 * outside it is accepted, so encode(decode(line)) == line for every
 * accepted line.
 *
 * Replies are a strict JSON subset read by a recursive-descent parser
 * into a flat token list (control.h: struct ctl_tok), with limits on
 * length, depth, tokens and key size checked as it goes.  Strings are
 * validated as UTF-8 (no overlong forms, surrogates or code points past
 * U+10FFFF) and may not hold NUL; \u escapes of surrogates are refused
 * rather than paired (the server never sends them).  Integers must fit
 * 64 bits, decimals must be finite.
 */
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "proto/control.h"

static const char *const verbs[CTL_NVERBS] = {
	[CTL_PING] = "ping",   [CTL_STATS] = "stats", [CTL_STATUS] = "status",
	[CTL_FLUSH] = "flush", [CTL_DRAIN] = "drain", [CTL_PIN] = "pin",
	[CTL_UNPIN] = "unpin",
};

const char *ctl_verb_name(enum ctl_verb v)
{
	return (unsigned)v < CTL_NVERBS ? verbs[v] : "?";
}

static int fail(char *err, size_t errlen, int r, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));
static int fail(char *err, size_t errlen, int r, const char *fmt, ...)
{
	va_list ap;

	if (err && errlen) {
		va_start(ap, fmt);
		vsnprintf(err, errlen, fmt, ap);
		va_end(ap);
	}
	return r;
}

/* ---- requests ---------------------------------------------------------- */

/* A decimal without sign or leading zeros, fitting 64 bits, in
 * s[0..n).  0 or -EBADMSG / -ERANGE. */
static int parse_dec(const char *s, size_t n, uint64_t *out)
{
	uint64_t v = 0;

	if (n == 0 || n > 20 || (s[0] == '0' && n > 1))
		return n > 20 ? -ERANGE : -EBADMSG;
	for (size_t i = 0; i < n; i++) {
		unsigned d;

		if (s[i] < '0' || s[i] > '9')
			return -EBADMSG;
		d = (unsigned)(s[i] - '0');
		if (v > (UINT64_MAX - d) / 10)
			return -ERANGE;
		v = v * 10 + d;
	}
	*out = v;
	return 0;
}

int ctl_req_decode(const char *line, size_t len, struct ctl_req *out, char *err,
		   size_t errlen)
{
	static const char magic[] = "tierbd/";
	const size_t mlen = sizeof(magic) - 1;
	const char *p, *end = line + len, *sp, *dash;
	uint64_t ver;
	int r;

	memset(out, 0, sizeof(*out));
	if (len > CTL_REQ_MAX)
		return fail(err, errlen, -EBADMSG,
			    "request longer than %d bytes", CTL_REQ_MAX);
	for (size_t i = 0; i < len; i++)
		if (line[i] < 0x20 || line[i] > 0x7e)
			return fail(err, errlen, -EBADMSG,
				    "request holds byte 0x%02x at %zu: only "
				    "printable ASCII is allowed",
				    (unsigned char)line[i], i);
	if (len < mlen || memcmp(line, magic, mlen) != 0)
		return fail(err, errlen, -EBADMSG,
			    "a request starts with \"tierbd/%d \" (protocol "
			    "and version), e.g. \"tierbd/%d stats\"",
			    CTL_VERSION, CTL_VERSION);
	p = line + mlen;
	sp = memchr(p, ' ', (size_t)(end - p));
	r = parse_dec(p, (size_t)((sp ? sp : end) - p), &ver);
	if (r < 0)
		return fail(err, errlen, -EBADMSG,
			    "malformed protocol version after \"tierbd/\"");
	if (ver != CTL_VERSION)
		return fail(err, errlen, -EPROTONOSUPPORT,
			    "protocol version %llu is not supported; this "
			    "server speaks tierbd/%d",
			    (unsigned long long)ver, CTL_VERSION);
	out->version = (unsigned)ver;
	if (!sp || sp + 1 == end)
		return fail(err, errlen, -EBADMSG, "no verb after tierbd/%d",
			    CTL_VERSION);
	p = sp + 1;
	sp = memchr(p, ' ', (size_t)(end - p));
	{
		size_t vlen = (size_t)((sp ? sp : end) - p);
		int v = -1;

		for (int i = 0; i < CTL_NVERBS; i++)
			if (strlen(verbs[i]) == vlen &&
			    memcmp(verbs[i], p, vlen) == 0)
				v = i;
		if (v < 0) {
			if (vlen == 0)
				return fail(err, errlen, -EBADMSG,
					    "an empty verb (two spaces?)");
			for (size_t i = 0; i < vlen; i++)
				if (p[i] < 'a' || p[i] > 'z')
					return fail(
						err, errlen, -EBADMSG,
						"malformed verb: lower-case "
						"letters only");
			return fail(err, errlen, -EOPNOTSUPP,
				    "unknown verb '%.*s'; known: ping stats "
				    "status flush drain pin unpin",
				    (int)(vlen < 32 ? vlen : 32), p);
		}
		out->verb = (enum ctl_verb)v;
	}
	if (out->verb != CTL_PIN && out->verb != CTL_UNPIN) {
		if (sp)
			return fail(err, errlen, -EINVAL,
				    "%s takes no argument", verbs[out->verb]);
		return 0;
	}
	if (!sp || sp + 1 == end)
		return fail(err, errlen, -EINVAL,
			    "%s needs a byte range START-END (END excluded)",
			    verbs[out->verb]);
	p = sp + 1;
	if (memchr(p, ' ', (size_t)(end - p)))
		return fail(err, errlen, -EINVAL, "%s takes one range",
			    verbs[out->verb]);
	dash = memchr(p, '-', (size_t)(end - p));
	if (!dash)
		return fail(err, errlen, -EINVAL,
			    "%s: write the range as START-END in bytes",
			    verbs[out->verb]);
	r = parse_dec(p, (size_t)(dash - p), &out->start);
	if (r == 0)
		r = parse_dec(dash + 1, (size_t)(end - dash - 1), &out->end);
	if (r == -ERANGE)
		return fail(err, errlen, -ERANGE, "%s: offset out of range",
			    verbs[out->verb]);
	if (r < 0)
		return fail(err, errlen, -EINVAL,
			    "%s: START and END are decimal byte offsets",
			    verbs[out->verb]);
	if (out->start >= out->end)
		return fail(err, errlen, -EINVAL, "%s: START must be below END",
			    verbs[out->verb]);
	return 0;
}

int ctl_req_encode(const struct ctl_req *req, char *buf, size_t n)
{
	int r;

	if ((unsigned)req->verb >= CTL_NVERBS || req->version == 0)
		return -EINVAL;
	if (req->verb == CTL_PIN || req->verb == CTL_UNPIN) {
		if (req->start >= req->end)
			return -EINVAL;
		r = snprintf(buf, n, "tierbd/%u %s %llu-%llu", req->version,
			     verbs[req->verb], (unsigned long long)req->start,
			     (unsigned long long)req->end);
	} else {
		r = snprintf(buf, n, "tierbd/%u %s", req->version,
			     verbs[req->verb]);
	}
	if (r < 0 || (size_t)r >= n || r > CTL_REQ_MAX)
		return -ENOSPC;
	return r;
}

/* ---- replies: writer ----------------------------------------------------- */

static void put(struct ctl_out *o, const char *s, size_t n)
{
	if (o->err)
		return;
	if (o->len + n + 1 > o->cap) {
		size_t cap = o->cap ? o->cap : 1024;
		char *b;

		while (cap < o->len + n + 1)
			cap *= 2;
		b = realloc(o->buf, cap);
		if (!b) {
			o->err = -ENOMEM;
			return;
		}
		o->buf = b;
		o->cap = cap;
	}
	memcpy(o->buf + o->len, s, n);
	o->len += n;
	o->buf[o->len] = 0;
}

static void puts_(struct ctl_out *o, const char *s)
{
	put(o, s, strlen(s));
}

/* Length of the UTF-8 sequence at s (n bytes left), or 0 if invalid. */
static size_t utf8_len(const unsigned char *s, size_t n)
{
	uint32_t c;
	size_t len;

	if (s[0] < 0x80)
		return 1;
	if (s[0] >= 0xc2 && s[0] <= 0xdf)
		len = 2, c = s[0] & 0x1f;
	else if (s[0] >= 0xe0 && s[0] <= 0xef)
		len = 3, c = s[0] & 0x0f;
	else if (s[0] >= 0xf0 && s[0] <= 0xf4)
		len = 4, c = s[0] & 0x07;
	else
		return 0;
	if (n < len)
		return 0;
	for (size_t i = 1; i < len; i++) {
		if ((s[i] & 0xc0) != 0x80)
			return 0;
		c = c << 6 | (s[i] & 0x3f);
	}
	if ((len == 3 && c < 0x800) || (len == 4 && c < 0x10000) ||
	    c > 0x10ffff || (c >= 0xd800 && c <= 0xdfff))
		return 0;
	return len;
}

static void put_string(struct ctl_out *o, const char *s, size_t n)
{
	const unsigned char *u = (const unsigned char *)s;
	char esc[8];

	put(o, "\"", 1);
	for (size_t i = 0; i < n;) {
		size_t l;

		if (u[i] == '"' || u[i] == '\\') {
			esc[0] = '\\';
			esc[1] = (char)u[i];
			put(o, esc, 2);
			i++;
			continue;
		}
		if (u[i] < 0x20 || u[i] == 0x7f) {
			snprintf(esc, sizeof(esc), "\\u%04x", u[i]);
			put(o, esc, 6);
			i++;
			continue;
		}
		l = utf8_len(u + i, n - i);
		if (l == 0) {
			/* Not UTF-8: keep the byte visible as U+00XX. */
			snprintf(esc, sizeof(esc), "\\u%04x", u[i]);
			put(o, esc, 6);
			i++;
			continue;
		}
		put(o, s + i, l);
		i += l;
	}
	put(o, "\"", 1);
}

/* Separator and key before a value. */
static void member(struct ctl_out *o, const char *key)
{
	if (!o->first[o->depth])
		put(o, ",", 1);
	o->first[o->depth] = false;
	if (o->in_array[o->depth] != (key == NULL)) {
		o->err = o->err ? o->err : -EINVAL;
		return;
	}
	if (key) {
		put_string(o, key, strlen(key));
		put(o, ":", 1);
	}
}

void ctl_out_init(struct ctl_out *o)
{
	memset(o, 0, sizeof(*o));
	put(o, "{", 1);
	o->first[0] = true;
	ctl_out_u64(o, "v", CTL_VERSION);
}

static void open_(struct ctl_out *o, const char *key, bool array)
{
	member(o, key);
	if (o->depth + 1 > CTL_DEPTH_MAX) {
		o->err = o->err ? o->err : -E2BIG;
		return;
	}
	put(o, array ? "[" : "{", 1);
	o->depth++;
	o->first[o->depth] = true;
	o->in_array[o->depth] = array;
}

void ctl_out_obj(struct ctl_out *o, const char *key)
{
	open_(o, key, false);
}

void ctl_out_arr(struct ctl_out *o, const char *key)
{
	open_(o, key, true);
}

void ctl_out_end(struct ctl_out *o)
{
	if (o->depth == 0) {
		o->err = o->err ? o->err : -EINVAL;
		return;
	}
	put(o, o->in_array[o->depth] ? "]" : "}", 1);
	o->depth--;
}

void ctl_out_u64(struct ctl_out *o, const char *key, uint64_t v)
{
	char b[24];

	member(o, key);
	put(o, b,
	    (size_t)snprintf(b, sizeof(b), "%llu", (unsigned long long)v));
}

void ctl_out_i64(struct ctl_out *o, const char *key, int64_t v)
{
	char b[24];

	member(o, key);
	put(o, b, (size_t)snprintf(b, sizeof(b), "%lld", (long long)v));
}

void ctl_out_num(struct ctl_out *o, const char *key, double v)
{
	char b[40];
	int n;

	member(o, key);
	if (!isfinite(v)) {
		puts_(o, "null");
		return;
	}
	n = snprintf(b, sizeof(b), "%.17g", v);
	/* Keep it a decimal when read back, not an integer. */
	if (!strpbrk(b, ".e"))
		n += snprintf(b + n, sizeof(b) - (size_t)n, ".0");
	put(o, b, (size_t)n);
}

void ctl_out_bool(struct ctl_out *o, const char *key, bool v)
{
	member(o, key);
	puts_(o, v ? "true" : "false");
}

void ctl_out_null(struct ctl_out *o, const char *key)
{
	member(o, key);
	puts_(o, "null");
}

void ctl_out_strn(struct ctl_out *o, const char *key, const char *s, size_t n)
{
	member(o, key);
	put_string(o, s, n);
}

void ctl_out_str(struct ctl_out *o, const char *key, const char *s)
{
	ctl_out_strn(o, key, s ? s : "", s ? strlen(s) : 0);
}

int ctl_out_finish(struct ctl_out *o, char **line, size_t *len)
{
	int r;

	if (o->depth != 0 && !o->err)
		o->err = -EINVAL;
	put(o, "}", 1);
	if (!o->err && o->len > CTL_REPLY_MAX)
		o->err = -E2BIG;
	r = o->err;
	if (r == 0) {
		*line = o->buf;
		*len = o->len;
		o->buf = NULL;
	}
	ctl_out_free(o);
	return r;
}

void ctl_out_free(struct ctl_out *o)
{
	free(o->buf);
	memset(o, 0, sizeof(*o));
}

/* ---- replies: reader ----------------------------------------------------- */

struct parser {
	const char *s, *end;
	struct ctl_msg *m;
	char *err;
	size_t errlen;
	size_t tok_cap;
};

/* A parse error at the current offset from start. */
static int pfail_at(struct parser *ps, const char *start, int r,
		    const char *what)
{
	return fail(ps->err, ps->errlen, r, "reply: %s at byte %zu", what,
		    (size_t)(ps->s - start));
}

static int arena_add(struct ctl_msg *m, const char *s, size_t n, uint32_t *off)
{
	if (m->arena_len + n + 1 > m->arena_cap) {
		size_t cap = m->arena_cap ? m->arena_cap : 256;
		char *a;

		while (cap < m->arena_len + n + 1)
			cap *= 2;
		if (cap > UINT32_MAX)
			return -EBADMSG;
		a = realloc(m->arena, cap);
		if (!a)
			return -ENOMEM;
		m->arena = a;
		m->arena_cap = cap;
	}
	*off = (uint32_t)m->arena_len;
	memcpy(m->arena + m->arena_len, s, n);
	m->arena[m->arena_len + n] = 0;
	m->arena_len += n + 1;
	return 0;
}

static int tok_add(struct parser *ps, const struct ctl_tok *t)
{
	struct ctl_msg *m = ps->m;

	if (m->ntok == CTL_TOKENS_MAX)
		return -EBADMSG;
	if (m->ntok == ps->tok_cap) {
		size_t cap = ps->tok_cap ? 2 * ps->tok_cap : 64;
		struct ctl_tok *n = realloc(m->tok, cap * sizeof(*n));

		if (!n)
			return -ENOMEM;
		m->tok = n;
		ps->tok_cap = cap;
	}
	m->tok[m->ntok++] = *t;
	return 0;
}

static void skip_ws(struct parser *ps)
{
	while (ps->s < ps->end && (*ps->s == ' ' || *ps->s == '\t'))
		ps->s++;
}

static int hexval(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

/* A string at ps->s ('"'), decoded into a scratch buffer and then the
 * arena.  key: also check the key rules. */
static int parse_string(struct parser *ps, const char *start, bool key,
			uint32_t *off, uint32_t *outlen)
{
	const unsigned char *u;
	char *tmp;
	size_t n = 0, cap;
	int r;

	ps->s++; /* '"' */
	cap = (size_t)(ps->end - ps->s) + 1;
	tmp = malloc(cap);
	if (!tmp)
		return -ENOMEM;
	for (;;) {
		if (ps->s >= ps->end) {
			r = pfail_at(ps, start, -EBADMSG,
				     "unterminated string");
			goto out;
		}
		u = (const unsigned char *)ps->s;
		if (*u == '"') {
			ps->s++;
			break;
		}
		if (*u < 0x20) {
			r = pfail_at(ps, start, -EBADMSG,
				     "control character in a string");
			goto out;
		}
		if (*u == '\\') {
			char c;

			if (ps->end - ps->s < 2) {
				r = pfail_at(ps, start, -EBADMSG,
					     "unterminated escape");
				goto out;
			}
			c = ps->s[1];
			ps->s += 2;
			switch (c) {
			case '"':
			case '\\':
			case '/':
				tmp[n++] = c;
				break;
			case 'b':
				tmp[n++] = '\b';
				break;
			case 'f':
				tmp[n++] = '\f';
				break;
			case 'n':
				tmp[n++] = '\n';
				break;
			case 'r':
				tmp[n++] = '\r';
				break;
			case 't':
				tmp[n++] = '\t';
				break;
			case 'u': {
				uint32_t cp = 0;

				if (ps->end - ps->s < 4) {
					r = pfail_at(ps, start, -EBADMSG,
						     "short \\u escape");
					goto out;
				}
				for (int i = 0; i < 4; i++) {
					int h = hexval(ps->s[i]);

					if (h < 0) {
						r = pfail_at(ps, start,
							     -EBADMSG,
							     "bad \\u escape");
						goto out;
					}
					cp = cp << 4 | (uint32_t)h;
				}
				ps->s += 4;
				if (cp == 0 || (cp >= 0xd800 && cp <= 0xdfff)) {
					r = pfail_at(ps, start, -EBADMSG,
						     "\\u0000 or a surrogate "
						     "in a string");
					goto out;
				}
				/* UTF-8 never takes more bytes than the six
				 * of the escape: tmp is large enough. */
				if (cp < 0x80) {
					tmp[n++] = (char)cp;
				} else if (cp < 0x800) {
					tmp[n++] = (char)(0xc0 | cp >> 6);
					tmp[n++] = (char)(0x80 | (cp & 0x3f));
				} else {
					tmp[n++] = (char)(0xe0 | cp >> 12);
					tmp[n++] = (char)(0x80 |
							  ((cp >> 6) & 0x3f));
					tmp[n++] = (char)(0x80 | (cp & 0x3f));
				}
				break;
			}
			default:
				r = pfail_at(ps, start, -EBADMSG,
					     "unknown escape");
				goto out;
			}
			continue;
		}
		{
			size_t l = utf8_len(u, (size_t)(ps->end - ps->s));

			if (l == 0) {
				r = pfail_at(ps, start, -EBADMSG,
					     "invalid UTF-8 in a string");
				goto out;
			}
			memcpy(tmp + n, ps->s, l);
			n += l;
			ps->s += l;
		}
	}
	if (key) {
		if (n == 0 || n > CTL_KEY_MAX) {
			r = pfail_at(ps, start, -EBADMSG,
				     "a key must have 1 to 48 characters");
			goto out;
		}
		for (size_t i = 0; i < n; i++) {
			char c = tmp[i];

			if (!((c >= 'a' && c <= 'z') ||
			      (c >= 'A' && c <= 'Z') ||
			      (c >= '0' && c <= '9') || c == '_')) {
				r = pfail_at(ps, start, -EBADMSG,
					     "a key may hold only letters, "
					     "digits and '_'");
				goto out;
			}
		}
	}
	r = arena_add(ps->m, tmp, n, off);
	if (outlen)
		*outlen = (uint32_t)n;
out:
	free(tmp);
	return r;
}

static int parse_number(struct parser *ps, const char *start, struct ctl_tok *t)
{
	const char *p = ps->s, *digits;
	bool neg = false, frac = false;
	char buf[400];
	size_t n;

	if (*p == '-') {
		neg = true;
		p++;
	}
	digits = p;
	if (p < ps->end && *p == '0')
		p++;
	else if (p < ps->end && *p >= '1' && *p <= '9')
		while (p < ps->end && *p >= '0' && *p <= '9')
			p++;
	else
		return pfail_at(ps, start, -EBADMSG, "malformed number");
	if (p < ps->end && *p == '.') {
		frac = true;
		p++;
		if (p >= ps->end || *p < '0' || *p > '9')
			return pfail_at(ps, start, -EBADMSG,
					"malformed number");
		while (p < ps->end && *p >= '0' && *p <= '9')
			p++;
	}
	if (p < ps->end && (*p == 'e' || *p == 'E')) {
		frac = true;
		p++;
		if (p < ps->end && (*p == '+' || *p == '-'))
			p++;
		if (p >= ps->end || *p < '0' || *p > '9')
			return pfail_at(ps, start, -EBADMSG,
					"malformed number");
		while (p < ps->end && *p >= '0' && *p <= '9')
			p++;
	}
	n = (size_t)(p - ps->s);
	if (n >= sizeof(buf))
		return pfail_at(ps, start, -EBADMSG, "number too long");
	memcpy(buf, ps->s, n);
	buf[n] = 0;
	if (frac) {
		char *e;
		double d = strtod(buf, &e);

		if (e != buf + n || !isfinite(d))
			return pfail_at(ps, start, -ERANGE,
					"number out of range");
		t->type = CTL_T_NUM;
		t->v.d = d;
	} else {
		uint64_t v = 0;

		for (const char *q = digits; q < p; q++) {
			unsigned d = (unsigned)(*q - '0');

			if (v > (UINT64_MAX - d) / 10)
				return pfail_at(ps, start, -ERANGE,
						"integer out of range");
			v = v * 10 + d;
		}
		if (neg && v != 0) {
			if (v > (uint64_t)INT64_MAX + 1)
				return pfail_at(ps, start, -ERANGE,
						"integer out of range");
			t->type = CTL_T_INT;
			t->v.i = v == (uint64_t)INT64_MAX + 1 ? INT64_MIN
							      : -(int64_t)v;
		} else {
			t->type = CTL_T_UINT; /* "-0" too */
			t->v.u = v;
		}
	}
	ps->s = p;
	return 0;
}

static bool word(struct parser *ps, const char *w)
{
	size_t n = strlen(w);

	if ((size_t)(ps->end - ps->s) < n || memcmp(ps->s, w, n) != 0)
		return false;
	ps->s += n;
	return true;
}

static int parse_value(struct parser *ps, const char *start, uint32_t key,
		       unsigned depth);

static int parse_container(struct parser *ps, const char *start, uint32_t key,
			   unsigned depth, bool array)
{
	struct ctl_tok t = { .type = array ? CTL_T_ARR : CTL_T_OBJ,
			     .depth = (uint8_t)depth,
			     .key = key };
	char close = array ? ']' : '}';
	int r;

	if (depth > CTL_DEPTH_MAX)
		return pfail_at(ps, start, -EBADMSG, "nested too deep");
	ps->s++;
	r = tok_add(ps, &t);
	if (r < 0)
		return r == -EBADMSG ? pfail_at(ps, start, r, "too many values")
				     : r;
	skip_ws(ps);
	if (ps->s < ps->end && *ps->s == close) {
		ps->s++;
	} else {
		for (;;) {
			uint32_t k = CTL_NO_KEY;

			skip_ws(ps);
			if (!array) {
				if (ps->s >= ps->end || *ps->s != '"')
					return pfail_at(ps, start, -EBADMSG,
							"expected a key");
				r = parse_string(ps, start, true, &k, NULL);
				if (r < 0)
					return r;
				skip_ws(ps);
				if (ps->s >= ps->end || *ps->s != ':')
					return pfail_at(ps, start, -EBADMSG,
							"expected ':'");
				ps->s++;
				skip_ws(ps);
			}
			r = parse_value(ps, start, k, depth + 1);
			if (r < 0)
				return r;
			skip_ws(ps);
			if (ps->s < ps->end && *ps->s == ',') {
				ps->s++;
				continue;
			}
			if (ps->s < ps->end && *ps->s == close) {
				ps->s++;
				break;
			}
			return pfail_at(ps, start, -EBADMSG,
					array ? "expected ',' or ']'"
					      : "expected ',' or '}'");
		}
	}
	t = (struct ctl_tok){ .type = CTL_T_END,
			      .depth = (uint8_t)depth,
			      .key = CTL_NO_KEY };
	r = tok_add(ps, &t);
	if (r == -EBADMSG)
		return pfail_at(ps, start, r, "too many values");
	return r;
}

static int parse_value(struct parser *ps, const char *start, uint32_t key,
		       unsigned depth)
{
	struct ctl_tok t = { .depth = (uint8_t)depth, .key = key };
	int r;

	if (ps->s >= ps->end)
		return pfail_at(ps, start, -EBADMSG, "expected a value");
	switch (*ps->s) {
	case '{':
		return parse_container(ps, start, key, depth, false);
	case '[':
		return parse_container(ps, start, key, depth, true);
	case '"':
		t.type = CTL_T_STR;
		r = parse_string(ps, start, false, &t.str, &t.strlen);
		if (r < 0)
			return r;
		if (memchr(ps->m->arena + t.str, 0, t.strlen))
			return pfail_at(ps, start, -EBADMSG, "NUL in a string");
		break;
	case 't':
	case 'f':
	case 'n':
		if (word(ps, "true")) {
			t.type = CTL_T_BOOL;
			t.v.b = true;
		} else if (word(ps, "false")) {
			t.type = CTL_T_BOOL;
			t.v.b = false;
		} else if (word(ps, "null")) {
			t.type = CTL_T_NULL;
		} else {
			return pfail_at(ps, start, -EBADMSG, "unknown word");
		}
		break;
	default:
		r = parse_number(ps, start, &t);
		if (r < 0)
			return r;
		break;
	}
	r = tok_add(ps, &t);
	if (r == -EBADMSG)
		return pfail_at(ps, start, r, "too many values");
	return r;
}

int ctl_reply_decode(const char *line, size_t len, struct ctl_msg *out,
		     char *err, size_t errlen)
{
	struct parser ps = { .s = line,
			     .end = line + len,
			     .m = out,
			     .err = err,
			     .errlen = errlen };
	const struct ctl_tok *v;
	int r;

	memset(out, 0, sizeof(*out));
	if (len > CTL_REPLY_MAX) {
		r = fail(err, errlen, -EBADMSG, "reply longer than %u bytes",
			 CTL_REPLY_MAX);
		goto bad;
	}
	skip_ws(&ps);
	if (ps.s >= ps.end || *ps.s != '{') {
		r = fail(err, errlen, -EBADMSG, "a reply is a JSON object");
		goto bad;
	}
	r = parse_container(&ps, line, CTL_NO_KEY, 0, false);
	if (r < 0)
		goto bad;
	skip_ws(&ps);
	if (ps.s != ps.end) {
		r = pfail_at(&ps, line, -EBADMSG, "text after the object");
		goto bad;
	}
	v = ctl_msg_get(out, "v");
	if (!v || v->type != CTL_T_UINT) {
		r = fail(err, errlen, -EBADMSG, "reply without \"v\"");
		goto bad;
	}
	if (v->v.u != CTL_VERSION) {
		r = fail(err, errlen, -EPROTONOSUPPORT,
			 "reply in protocol version %llu; this client speaks "
			 "tierbd/%d",
			 (unsigned long long)v->v.u, CTL_VERSION);
		goto bad;
	}
	return 0;
bad:
	if (r == -ENOMEM)
		fail(err, errlen, r, "out of memory");
	ctl_msg_free(out);
	return r;
}

void ctl_msg_free(struct ctl_msg *m)
{
	if (!m)
		return;
	free(m->tok);
	free(m->arena);
	memset(m, 0, sizeof(*m));
}

const char *ctl_msg_key(const struct ctl_msg *m, const struct ctl_tok *t)
{
	return t->key == CTL_NO_KEY ? NULL : m->arena + t->key;
}

int ctl_msg_encode(const struct ctl_msg *m, char **line, size_t *len)
{
	struct ctl_out o;

	memset(&o, 0, sizeof(o));
	if (m->ntok == 0 || m->tok[0].type != CTL_T_OBJ)
		return -EINVAL;
	put(&o, "{", 1);
	o.first[0] = true;
	for (size_t i = 1; i < m->ntok; i++) {
		const struct ctl_tok *t = &m->tok[i];
		const char *k = ctl_msg_key(m, t);

		switch (t->type) {
		case CTL_T_OBJ:
			ctl_out_obj(&o, k);
			break;
		case CTL_T_ARR:
			ctl_out_arr(&o, k);
			break;
		case CTL_T_END:
			if (o.depth)
				ctl_out_end(&o);
			break;
		case CTL_T_STR:
			ctl_out_strn(&o, k, m->arena + t->str, t->strlen);
			break;
		case CTL_T_UINT:
			ctl_out_u64(&o, k, t->v.u);
			break;
		case CTL_T_INT:
			ctl_out_i64(&o, k, t->v.i);
			break;
		case CTL_T_NUM:
			ctl_out_num(&o, k, t->v.d);
			break;
		case CTL_T_BOOL:
			ctl_out_bool(&o, k, t->v.b);
			break;
		default:
			ctl_out_null(&o, k);
			break;
		}
	}
	/* The last END closed the top-level object: finish adds the '}'
	 * it stands for. */
	return ctl_out_finish(&o, line, len);
}

/* ---- replies: lookups -------------------------------------------------- */

const struct ctl_tok *ctl_msg_get(const struct ctl_msg *m, const char *path)
{
	/* The path of each token: its container's path plus its key or
	 * index.  seg[d] is the offset in cur where depth d's part starts,
	 * idx[d] the next index inside an array at depth d. */
	char cur[512];
	size_t seg[CTL_DEPTH_MAX + 2];
	uint64_t idx[CTL_DEPTH_MAX + 2];
	bool arr[CTL_DEPTH_MAX + 2];
	size_t plen = strlen(path);

	if (m->ntok == 0)
		return NULL;
	seg[0] = 0;
	cur[0] = 0;
	arr[0] = false;
	for (size_t i = 1; i < m->ntok; i++) {
		const struct ctl_tok *t = &m->tok[i];
		unsigned d = t->depth; /* >= 1 below the top object */
		size_t at;
		int n;

		if (t->type == CTL_T_END || d == 0 || d > CTL_DEPTH_MAX + 1)
			continue;
		at = seg[d - 1];
		if (d > 1)
			cur[at++] = '.';
		if (arr[d - 1])
			n = snprintf(cur + at, sizeof(cur) - at, "%llu",
				     (unsigned long long)idx[d - 1]++);
		else
			n = snprintf(cur + at, sizeof(cur) - at, "%s",
				     m->arena + t->key);
		if (n < 0 || (size_t)n >= sizeof(cur) - at)
			continue;
		if (t->type == CTL_T_OBJ || t->type == CTL_T_ARR) {
			if (d <= CTL_DEPTH_MAX) {
				seg[d] = at + (size_t)n;
				idx[d] = 0;
				arr[d] = t->type == CTL_T_ARR;
			}
		}
		if (at + (size_t)n == plen && memcmp(cur, path, plen) == 0)
			return t;
	}
	return NULL;
}

uint64_t ctl_msg_u64(const struct ctl_msg *m, const char *path, uint64_t def)
{
	const struct ctl_tok *t = ctl_msg_get(m, path);

	return t && t->type == CTL_T_UINT ? t->v.u : def;
}

double ctl_msg_num(const struct ctl_msg *m, const char *path, double def)
{
	const struct ctl_tok *t = ctl_msg_get(m, path);

	if (!t)
		return def;
	switch (t->type) {
	case CTL_T_NUM:
		return t->v.d;
	case CTL_T_UINT:
		return (double)t->v.u;
	case CTL_T_INT:
		return (double)t->v.i;
	default:
		return def;
	}
}

const char *ctl_msg_str(const struct ctl_msg *m, const char *path,
			const char *def)
{
	const struct ctl_tok *t = ctl_msg_get(m, path);

	return t && t->type == CTL_T_STR ? m->arena + t->str : def;
}

bool ctl_msg_bool(const struct ctl_msg *m, const char *path, bool def)
{
	const struct ctl_tok *t = ctl_msg_get(m, path);

	return t && t->type == CTL_T_BOOL ? t->v.b : def;
}

static size_t array_walk(const struct ctl_msg *m, const char *path,
			 uint64_t *out, size_t max)
{
	const struct ctl_tok *t = ctl_msg_get(m, path);
	size_t n = 0, i;

	if (!t || t->type != CTL_T_ARR)
		return 0;
	for (i = (size_t)(t - m->tok) + 1; i < m->ntok; i++) {
		const struct ctl_tok *e = &m->tok[i];

		if (e->depth == t->depth && e->type == CTL_T_END)
			break;
		if (e->depth != t->depth + 1 || e->type == CTL_T_END)
			continue;
		if (out && n < max)
			out[n] = e->type == CTL_T_UINT ? e->v.u : 0;
		n++;
	}
	return n;
}

size_t ctl_msg_len(const struct ctl_msg *m, const char *path)
{
	return array_walk(m, path, NULL, 0);
}

size_t ctl_msg_u64s(const struct ctl_msg *m, const char *path, uint64_t *out,
		    size_t max)
{
	size_t n = array_walk(m, path, out, max);

	return n < max ? n : max;
}

const char *ctl_errno_name(int err)
{
	static const struct {
		int e;
		const char *name;
	} names[] = {
		{ EPERM, "EPERM" },
		{ ENOENT, "ENOENT" },
		{ EIO, "EIO" },
		{ E2BIG, "E2BIG" },
		{ ENOMEM, "ENOMEM" },
		{ EACCES, "EACCES" },
		{ EBUSY, "EBUSY" },
		{ EINVAL, "EINVAL" },
		{ ENOSPC, "ENOSPC" },
		{ EROFS, "EROFS" },
		{ ERANGE, "ERANGE" },
		{ ENOSYS, "ENOSYS" },
		{ EBADMSG, "EBADMSG" },
		{ EPROTONOSUPPORT, "EPROTONOSUPPORT" },
		{ EOPNOTSUPP, "EOPNOTSUPP" },
		{ ESHUTDOWN, "ESHUTDOWN" },
		{ ETIMEDOUT, "ETIMEDOUT" },
		{ EAGAIN, "EAGAIN" },
		{ ESTALE, "ESTALE" },
	};
	static __thread char buf[16];

	if (err < 0)
		err = -err;
	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++)
		if (names[i].e == err)
			return names[i].name;
	snprintf(buf, sizeof(buf), "E%d", err);
	return buf;
}
