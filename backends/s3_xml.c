/* s3_xml.c - read the few XML replies of S3 that the store needs.
 *
 * Not a general XML parser: S3 replies are small, machine-written
 * documents of nested elements with text in the leaves.  A pull lexer
 * yields open / close / text events; processing instructions, comments
 * and <!DOCTYPE> are skipped, CDATA sections are text, attributes and
 * namespace prefixes are ignored, entities (&lt; &gt; &amp; &quot;
 * &apos; &#N; &#xN;) are decoded.  xml_walk() keeps the stack of open
 * element names and hands every close of an element to a handler with
 * the element's text, so a reply is read by matching paths such as
 * ListBucketResult/Contents/Key.  Anything malformed (unbalanced tags,
 * bad entities, truncated input, too deep) is -EIO, never a guess.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "s3_int.h"

#define XML_DEPTH_MAX 16

enum xml_ev { XML_OPEN, XML_CLOSE };

struct xml_stack {
	unsigned depth;
	struct {
		const char *name;
		size_t len;
	} el[XML_DEPTH_MAX];
};

/* Handler: ev XML_OPEN (text NULL) or XML_CLOSE (the element's own text,
 * decoded, NUL-terminated), with the element on top of st. */
typedef int (*xml_handler)(void *opaque, enum xml_ev ev,
			   const struct xml_stack *st, const char *text,
			   size_t text_len);

/* Does the stack read exactly like the NULL-terminated list of names? */
static bool path_is(const struct xml_stack *st, ...)
{
	va_list ap;
	unsigned i = 0;
	bool ok = true;

	va_start(ap, st);
	for (const char *n; (n = va_arg(ap, const char *)); i++) {
		if (i >= st->depth || strlen(n) != st->el[i].len ||
		    memcmp(n, st->el[i].name, st->el[i].len) != 0) {
			ok = false;
			break;
		}
	}
	va_end(ap);
	return ok && i == st->depth;
}

static int put_utf8(struct s3_buf *out, uint32_t cp)
{
	char u[4];
	size_t n;

	if (cp == 0 || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
		return -EIO;
	if (cp < 0x80) {
		u[0] = (char)cp;
		n = 1;
	} else if (cp < 0x800) {
		u[0] = (char)(0xc0 | cp >> 6);
		u[1] = (char)(0x80 | (cp & 0x3f));
		n = 2;
	} else if (cp < 0x10000) {
		u[0] = (char)(0xe0 | cp >> 12);
		u[1] = (char)(0x80 | ((cp >> 6) & 0x3f));
		u[2] = (char)(0x80 | (cp & 0x3f));
		n = 3;
	} else {
		u[0] = (char)(0xf0 | cp >> 18);
		u[1] = (char)(0x80 | ((cp >> 12) & 0x3f));
		u[2] = (char)(0x80 | ((cp >> 6) & 0x3f));
		u[3] = (char)(0x80 | (cp & 0x3f));
		n = 4;
	}
	return s3_buf_add(out, u, n);
}

/* Append the text p[0..n) with its entities decoded. */
static int add_text(struct s3_buf *out, const char *p, size_t n)
{
	const char *end = p + n;

	while (p < end) {
		const char *amp = memchr(p, '&', (size_t)(end - p));

		if (!amp)
			return s3_buf_add(out, p, (size_t)(end - p));
		if (s3_buf_add(out, p, (size_t)(amp - p)) < 0)
			return -ENOMEM;
		const char *semi = memchr(amp, ';', (size_t)(end - amp));
		if (!semi || semi - amp > 12)
			return -EIO;
		const char *e = amp + 1;
		size_t el = (size_t)(semi - e);
		static const struct {
			const char *name;
			char c;
		} named[] = { { "lt", '<' },
			      { "gt", '>' },
			      { "amp", '&' },
			      { "quot", '"' },
			      { "apos", '\'' } };
		int r = -EIO;

		if (el >= 2 && e[0] == '#') {
			bool hex = e[1] == 'x' || e[1] == 'X';
			const char *d = e + 1 + hex;
			uint32_t cp = 0;

			if (d == semi)
				return -EIO;
			for (; d < semi; d++) {
				unsigned v;

				if (*d >= '0' && *d <= '9')
					v = (unsigned)(*d - '0');
				else if (hex && *d >= 'a' && *d <= 'f')
					v = (unsigned)(*d - 'a' + 10);
				else if (hex && *d >= 'A' && *d <= 'F')
					v = (unsigned)(*d - 'A' + 10);
				else
					return -EIO;
				cp = cp * (hex ? 16 : 10) + v;
				if (cp > 0x10ffff)
					return -EIO;
			}
			r = put_utf8(out, cp);
		} else {
			for (size_t i = 0; i < sizeof(named) / sizeof(named[0]);
			     i++) {
				if (strlen(named[i].name) == el &&
				    memcmp(named[i].name, e, el) == 0) {
					r = s3_buf_add(out, &named[i].c, 1);
					break;
				}
			}
		}
		if (r < 0)
			return r;
		p = semi + 1;
	}
	return 0;
}

/* Skip from p (just after "<") to just after the matching terminator
 * of a markup declaration; NULL if it never ends. */
static const char *skip_until(const char *p, const char *end, const char *term)
{
	size_t tl = strlen(term);

	for (; p + tl <= end; p++)
		if (memcmp(p, term, tl) == 0)
			return p + tl;
	return NULL;
}

static bool is_space(char c)
{
	return c == ' ' || c == '\t' || c == '\r' || c == '\n';
}

static int xml_walk(const char *xml, size_t len, xml_handler h, void *opaque)
{
	const char *p = xml, *end = xml + len;
	struct xml_stack st = { 0 };
	struct s3_buf text = { 0 };
	bool seen_root = false;
	int r = 0;

	while (p < end && r == 0) {
		if (*p != '<') {
			const char *lt = memchr(p, '<', (size_t)(end - p));
			const char *stop = lt ? lt : end;

			if (st.depth == 0) {
				/* only whitespace outside the root */
				for (; p < stop; p++)
					if (!is_space(*p))
						r = -EIO;
			} else {
				r = add_text(&text, p, (size_t)(stop - p));
			}
			p = stop;
			continue;
		}
		p++;
		if (p < end && *p == '?') {
			p = skip_until(p, end, "?>");
		} else if (end - p >= 3 && memcmp(p, "!--", 3) == 0) {
			p = skip_until(p + 3, end, "-->");
		} else if (end - p >= 8 && memcmp(p, "![CDATA[", 8) == 0) {
			const char *s = p + 8;

			p = skip_until(s, end, "]]>");
			if (p && st.depth > 0)
				r = s3_buf_add(&text, s, (size_t)(p - 3 - s));
			else if (p)
				r = -EIO;
		} else if (p < end && *p == '!') {
			p = skip_until(p, end, ">"); /* DOCTYPE */
		} else {
			bool closing = p < end && *p == '/';
			const char *name, *colon;
			size_t nlen;

			p += closing;
			name = p;
			while (p < end && !is_space(*p) && *p != '>' &&
			       *p != '/')
				p++;
			nlen = (size_t)(p - name);
			/* drop a namespace prefix: "s3:Key" is "Key" */
			colon = memchr(name, ':', nlen);
			if (colon) {
				nlen -= (size_t)(colon + 1 - name);
				name = colon + 1;
			}
			/* skip attributes, minding quotes */
			char quote = 0;
			for (; p < end; p++) {
				if (quote) {
					if (*p == quote)
						quote = 0;
				} else if (*p == '"' || *p == '\'') {
					quote = *p;
				} else if (*p == '>') {
					break;
				}
			}
			if (p >= end || nlen == 0) {
				r = -EIO;
				break;
			}
			bool selfclose = !closing && p[-1] == '/';
			p++;
			if (closing) {
				if (st.depth == 0 ||
				    st.el[st.depth - 1].len != nlen ||
				    memcmp(st.el[st.depth - 1].name, name,
					   nlen) != 0) {
					r = -EIO;
					break;
				}
			} else {
				if (st.depth == XML_DEPTH_MAX ||
				    (st.depth == 0 && seen_root)) {
					r = -EIO;
					break;
				}
				seen_root = true;
				st.el[st.depth].name = name;
				st.el[st.depth].len = nlen;
				st.depth++;
				text.len = 0;
				r = h(opaque, XML_OPEN, &st, NULL, 0);
				if (r)
					break;
			}
			if (closing || selfclose) {
				if (s3_buf_add(&text, "", 1) < 0) {
					r = -ENOMEM;
					break;
				}
				r = h(opaque, XML_CLOSE, &st, text.data,
				      text.len - 1);
				st.depth--;
				text.len = 0;
			}
		}
		if (!p)
			r = -EIO;
	}
	if (r == 0 && (st.depth != 0 || !seen_root))
		r = -EIO;
	s3_buf_free(&text);
	return r;
}

/* ---- ListObjectsV2 ---------------------------------------------------- */

struct list_state {
	s3_xml_obj_cb cb;
	void *opaque;
	char *key;
	uint64_t size;
	bool have_size;
	bool truncated;
	char *token;
};

static int parse_u64(const char *s, uint64_t *v)
{
	char *e;

	if (*s < '0' || *s > '9')
		return -EIO;
	errno = 0;
	*v = strtoull(s, &e, 10);
	return errno || *e ? -EIO : 0;
}

static int list_handler(void *opaque, enum xml_ev ev,
			const struct xml_stack *st, const char *text,
			size_t text_len)
{
	struct list_state *ls = opaque;

	if (st->depth == 1 && !path_is(st, "ListBucketResult", NULL))
		return -EIO;
	if (ev == XML_OPEN) {
		if (path_is(st, "ListBucketResult", "Contents", NULL)) {
			free(ls->key);
			ls->key = NULL;
			ls->have_size = false;
		}
		return 0;
	}
	if (path_is(st, "ListBucketResult", "Contents", "Key", NULL)) {
		if (text_len == 0 || strlen(text) != text_len)
			return -EIO; /* empty, or an embedded NUL */
		free(ls->key);
		ls->key = strdup(text);
		return ls->key ? 0 : -ENOMEM;
	}
	if (path_is(st, "ListBucketResult", "Contents", "Size", NULL)) {
		ls->have_size = true;
		return parse_u64(text, &ls->size);
	}
	if (path_is(st, "ListBucketResult", "Contents", NULL)) {
		if (!ls->key || !ls->have_size)
			return -EIO;
		return ls->cb(ls->opaque, ls->key, ls->size);
	}
	if (path_is(st, "ListBucketResult", "IsTruncated", NULL)) {
		ls->truncated = strcmp(text, "true") == 0;
		return 0;
	}
	if (path_is(st, "ListBucketResult", "NextContinuationToken", NULL)) {
		free(ls->token);
		ls->token = strdup(text);
		return ls->token ? 0 : -ENOMEM;
	}
	return 0;
}

int s3_xml_list(const char *xml, size_t len, s3_xml_obj_cb cb, void *opaque,
		bool *truncated, char **token)
{
	struct list_state ls = { .cb = cb, .opaque = opaque };
	int r = xml_walk(xml, len, list_handler, &ls);

	free(ls.key);
	if (r == 0 && ls.truncated && (!ls.token || !*ls.token))
		r = -EIO; /* truncated, but no way to go on */
	if (r != 0) {
		free(ls.token);
		return r;
	}
	*truncated = ls.truncated;
	*token = ls.token;
	return 0;
}

/* ---- <Error> ---------------------------------------------------------- */

struct error_state {
	char *code, *msg, *region;
	size_t code_len, msg_len, region_len;
	bool found;
};

static void copy_trunc(char *dst, size_t dst_len, const char *src)
{
	if (dst && dst_len) {
		size_t n = strlen(src);

		if (n >= dst_len)
			n = dst_len - 1;
		memcpy(dst, src, n);
		dst[n] = '\0';
	}
}

static int error_handler(void *opaque, enum xml_ev ev,
			 const struct xml_stack *st, const char *text,
			 size_t text_len)
{
	struct error_state *es = opaque;

	if (ev == XML_OPEN)
		return 0;
	if (path_is(st, "Error", "Code", NULL)) {
		es->found = true;
		copy_trunc(es->code, es->code_len, text);
	} else if (path_is(st, "Error", "Message", NULL)) {
		copy_trunc(es->msg, es->msg_len, text);
	} else if (path_is(st, "Error", "Region", NULL)) {
		copy_trunc(es->region, es->region_len, text);
	}
	return 0;
}

int s3_xml_error(const char *xml, size_t len, char *code, size_t code_len,
		 char *msg, size_t msg_len, char *region, size_t region_len)
{
	struct error_state es = { code,	   msg,	       region, code_len,
				  msg_len, region_len, false };
	int r = xml_walk(xml, len, error_handler, &es);

	return r == 0 && es.found ? 0 : -EIO;
}

/* ---- DeleteObjects ---------------------------------------------------- */

struct delete_state {
	s3_xml_delerr_cb cb;
	void *opaque;
	char *key, *code, *msg;
};

static int set_str(char **dst, const char *src)
{
	free(*dst);
	*dst = strdup(src);
	return *dst ? 0 : -ENOMEM;
}

static int delete_handler(void *opaque, enum xml_ev ev,
			  const struct xml_stack *st, const char *text,
			  size_t text_len)
{
	struct delete_state *ds = opaque;

	if (st->depth == 1 && !path_is(st, "DeleteResult", NULL))
		return -EIO;
	if (ev == XML_OPEN) {
		if (path_is(st, "DeleteResult", "Error", NULL)) {
			free(ds->key);
			free(ds->code);
			free(ds->msg);
			ds->key = ds->code = ds->msg = NULL;
		}
		return 0;
	}
	if (path_is(st, "DeleteResult", "Error", "Key", NULL))
		return set_str(&ds->key, text);
	if (path_is(st, "DeleteResult", "Error", "Code", NULL))
		return set_str(&ds->code, text);
	if (path_is(st, "DeleteResult", "Error", "Message", NULL))
		return set_str(&ds->msg, text);
	if (path_is(st, "DeleteResult", "Error", NULL))
		return ds->cb(ds->opaque, ds->key ? ds->key : "",
			      ds->code ? ds->code : "", ds->msg ? ds->msg : "");
	return 0;
}

int s3_xml_delete_result(const char *xml, size_t len, s3_xml_delerr_cb cb,
			 void *opaque)
{
	struct delete_state ds = { .cb = cb, .opaque = opaque };
	int r = xml_walk(xml, len, delete_handler, &ds);

	free(ds.key);
	free(ds.code);
	free(ds.msg);
	return r;
}

int s3_xml_escape(struct s3_buf *out, const char *s)
{
	for (; *s; s++) {
		const char *e = NULL;

		switch (*s) {
		case '&':
			e = "&amp;";
			break;
		case '<':
			e = "&lt;";
			break;
		case '>':
			e = "&gt;";
			break;
		case '"':
			e = "&quot;";
			break;
		case '\'':
			e = "&apos;";
			break;
		}
		if (e ? s3_buf_add(out, e, strlen(e)) : s3_buf_add(out, s, 1))
			return -ENOMEM;
	}
	return 0;
}
