/* s3_http.c - one S3 request: a pooled handle, signing, retries, errno.
 *
 * Pool: s3_connections easy handles made at open.  A request takes a
 * free handle (waiting on handle_free when all are busy), resets it,
 * sets it up and performs; the handle keeps its connection open for the
 * next request (curl_easy_reset does not close it), so N threads run N
 * requests in parallel over N kept-alive connections.  The handles
 * share one DNS cache and TLS session cache.  A handle goes back to the
 * pool before a retry's backoff sleep, so sleeping never holds one.
 *
 * Signing is libcurl's (CURLOPT_AWS_SIGV4, keys in CURLOPT_USERNAME /
 * CURLOPT_PASSWORD).  With curl 7.88 and a server that checks SigV4 as
 * strictly as AWS (Ceph RGW):
 *   - x-amz-content-sha256 is always sent, the hex SHA-256 of the body
 *     (of nothing for GET / HEAD / DELETE): curl signs the value we give
 *     and the server checks the body against it; with
 *     s3-unsigned-payload, bodies go as UNSIGNED-PAYLOAD instead (the
 *     server hashes nothing; over https TLS protects the body);
 *   - curl signs the path and query exactly as given: paths are sent
 *     percent-encoded in SigV4's form and queries sorted, encoded, each
 *     name with '=' (s3_uri_encode, callers);
 *   - every header we add is signed, and curl 7.88 also signs a blanked
 *     one ("Expect:") that it then does not send, so we never blank a
 *     header.  Bodies go by CURLOPT_POSTFIELDS (PUT via CUSTOMREQUEST),
 *     for which curl only adds "Expect: 100-continue" above 1 MiB (for
 *     CURLOPT_UPLOAD it adds it to every body, costing a round trip per
 *     PUT).  That header is not signed and servers accept it; for the
 *     bodies above 1 MiB we wait at most S3_EXPECT_MS for the 100.
 *
 * s3_perform() is the one place where HTTP status and CURLcode become
 * -errno, retried or not, counted per outcome:
 *   2xx                    0
 *   404                    -ENOENT     (not_found)
 *   401, 403               -EACCES     (denied); 403 QuotaExceeded -ENOSPC
 *   400, 411..416          -EINVAL     (client_errors)
 *   416 to a ranged GET    0           (nothing at or past that offset)
 *   405, 501               -EOPNOTSUPP (client_errors / server_errors)
 *   507                    -ENOSPC     (server_errors)
 *   other 3xx, 4xx         -EIO        (client_errors)
 *   408, timeout           retried     (timeouts)          then -ETIMEDOUT
 *   connect, send, recv    retried     (net_errors)        then -ETIMEDOUT
 *   429, 503 SlowDown      retried     (throttled)         then -EAGAIN
 *   other 5xx              retried     (server_errors)     then -EIO
 *   TLS verification       -EACCES; bad URL / option -EINVAL; else -EIO
 * Retries back off exponentially with full jitter (a random sleep in
 * [0, min(S3_BACKOFF_CAP_MS, S3_BACKOFF_BASE_MS * 2^attempt)]) until
 * the request's retry budget (s3_retry_ms) would be exceeded.
 */
#include <errno.h>
#include <inttypes.h>
#include <openssl/evp.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "common/cleanup.h"
#include "s3_int.h"

#define S3_BACKOFF_BASE_MS 100
#define S3_BACKOFF_CAP_MS 5000
#define S3_EXPECT_MS 200
#define S3_ERROR_BODY_MAX (64 * 1024)
#define S3_EMPTY_SHA256 \
	"e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"

/* ---- buffers and digests ---------------------------------------------- */

void s3_buf_free(struct s3_buf *b)
{
	if (b->fixed) {
		b->len = 0;
		return;
	}
	free(b->data);
	b->data = NULL;
	b->len = b->cap = 0;
}

static int s3_buf_reserve(struct s3_buf *b, size_t need)
{
	if (need <= b->cap)
		return 0;
	if (b->fixed)
		return -EFBIG;
	size_t cap = b->cap ? b->cap : 256;
	while (cap < need)
		cap = cap * 2 > cap ? cap * 2 : need;
	char *d = realloc(b->data, cap);
	if (!d)
		return -ENOMEM;
	b->data = d;
	b->cap = cap;
	return 0;
}

int s3_buf_add(struct s3_buf *b, const void *p, size_t n)
{
	int r;

	if (n > SIZE_MAX - b->len - 1)
		return -ENOMEM;
	r = s3_buf_reserve(b, b->len + n + !b->fixed);
	if (r < 0)
		return r;
	if (n)
		memcpy(b->data + b->len, p, n);
	b->len += n;
	if (b->len < b->cap)
		b->data[b->len] = '\0'; /* a C string too */
	return 0;
}

int s3_buf_addf(struct s3_buf *b, const char *fmt, ...)
{
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(NULL, 0, fmt, ap);
	va_end(ap);
	if (n < 0 || s3_buf_reserve(b, b->len + (size_t)n + 1))
		return -ENOMEM;
	va_start(ap, fmt);
	vsnprintf(b->data + b->len, (size_t)n + 1, fmt, ap);
	va_end(ap);
	b->len += (size_t)n;
	return 0;
}

int s3_uri_encode(struct s3_buf *out, const char *src, bool keep_slash)
{
	static const char hex[] = "0123456789ABCDEF";

	for (const unsigned char *p = (const unsigned char *)src; *p; p++) {
		char e[3];

		if ((*p >= 'A' && *p <= 'Z') || (*p >= 'a' && *p <= 'z') ||
		    (*p >= '0' && *p <= '9') || *p == '-' || *p == '_' ||
		    *p == '.' || *p == '~' || (keep_slash && *p == '/')) {
			if (s3_buf_add(out, p, 1))
				return -ENOMEM;
			continue;
		}
		e[0] = '%';
		e[1] = hex[*p >> 4];
		e[2] = hex[*p & 15];
		if (s3_buf_add(out, e, 3))
			return -ENOMEM;
	}
	return 0;
}

void s3_sha256_hex(const void *p, size_t n, char out[65])
{
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned int mdlen = 0;

	if (n == 0) {
		memcpy(out, S3_EMPTY_SHA256, 65);
		return;
	}
	EVP_Digest(p, n, md, &mdlen, EVP_sha256(), NULL);
	for (unsigned i = 0; i < 32; i++)
		snprintf(out + 2 * i, 3, "%02x", md[i]);
	out[64] = '\0';
}

void s3_md5_base64(const void *p, size_t n, char out[32])
{
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned int mdlen = 0;

	EVP_Digest(p, n, md, &mdlen, EVP_md5(), NULL);
	EVP_EncodeBlock((unsigned char *)out, md, (int)mdlen); /* 24 + NUL */
}

/* ---- the pool --------------------------------------------------------- */

static pthread_once_t global_once = PTHREAD_ONCE_INIT;
static CURLcode global_rc;

static void global_init(void)
{
	global_rc = curl_global_init(CURL_GLOBAL_ALL);
}

static void share_lock_cb(CURL *h, curl_lock_data data, curl_lock_access access,
			  void *opaque)
{
	struct s3 *s3 = opaque;

	pthread_mutex_lock(&s3->share_lock);
}

static void share_unlock_cb(CURL *h, curl_lock_data data, void *opaque)
{
	struct s3 *s3 = opaque;

	pthread_mutex_unlock(&s3->share_lock);
}

int s3_http_init(struct s3 *s3)
{
	pthread_once(&global_once, global_init);
	if (global_rc != CURLE_OK)
		return -ENOMEM;

	pthread_mutex_init(&s3->pool_lock, NULL);
	pthread_cond_init(&s3->handle_free, NULL);
	pthread_mutex_init(&s3->share_lock, NULL);
	s3->http_ready = true;
	s3->share = curl_share_init();
	if (!s3->share)
		return -ENOMEM;
	curl_share_setopt(s3->share, CURLSHOPT_LOCKFUNC, share_lock_cb);
	curl_share_setopt(s3->share, CURLSHOPT_UNLOCKFUNC, share_unlock_cb);
	curl_share_setopt(s3->share, CURLSHOPT_USERDATA, s3);
	curl_share_setopt(s3->share, CURLSHOPT_SHARE, CURL_LOCK_DATA_DNS);
	curl_share_setopt(s3->share, CURLSHOPT_SHARE,
			  CURL_LOCK_DATA_SSL_SESSION);

	s3->free_handles = calloc(s3->connections, sizeof(CURL *));
	if (!s3->free_handles)
		return -ENOMEM;
	for (unsigned i = 0; i < s3->connections; i++) {
		CURL *h = curl_easy_init();

		if (!h)
			return -ENOMEM;
		s3->free_handles[s3->nfree++] = h;
	}
	return 0;
}

/* Call after every request has returned. */
void s3_http_fini(struct s3 *s3)
{
	if (!s3->http_ready)
		return;
	s3->http_ready = false;
	if (s3->free_handles) {
		for (unsigned i = 0; i < s3->nfree; i++)
			curl_easy_cleanup(s3->free_handles[i]);
		free(s3->free_handles);
		s3->free_handles = NULL;
		s3->nfree = 0;
	}
	if (s3->share) {
		curl_share_cleanup(s3->share);
		s3->share = NULL;
	}
	pthread_mutex_destroy(&s3->share_lock);
	pthread_cond_destroy(&s3->handle_free);
	pthread_mutex_destroy(&s3->pool_lock);
}

static CURL *handle_get(struct s3 *s3)
{
	SCOPED_LOCK(&s3->pool_lock);
	while (s3->nfree == 0)
		pthread_cond_wait(&s3->handle_free, &s3->pool_lock);
	return s3->free_handles[--s3->nfree];
}

static void handle_put(struct s3 *s3, CURL *h)
{
	SCOPED_LOCK(&s3->pool_lock);
	s3->free_handles[s3->nfree++] = h;
	pthread_cond_signal(&s3->handle_free);
}

/* ---- one attempt ------------------------------------------------------ */

struct xfer {
	struct s3_req *req;
	CURL *h;
	bool sized;
};

static size_t write_cb(char *p, size_t size, size_t nmemb, void *opaque)
{
	struct xfer *x = opaque;
	struct s3_buf *b = &x->req->resp;
	size_t n = size * nmemb;
	long status = 0;

	curl_easy_getinfo(x->h, CURLINFO_RESPONSE_CODE, &status);
	if (status >= 300 && b->len + n > S3_ERROR_BODY_MAX)
		return 0; /* an error reply has no business being this big */
	/* A ranged GET's fixed buffer is the caller's and has room for the
	 * range only: any other reply (an error's body, a 200 with the
	 * whole object from a server that ignores Range) goes to a buffer
	 * of its own, which the caller frees. */
	if (x->req->range && b->fixed && status != 206)
		*b = (struct s3_buf){ 0 };
	if (!x->sized) {
		curl_off_t cl = -1;

		/* one allocation for a whole object */
		x->sized = true;
		curl_easy_getinfo(x->h, CURLINFO_CONTENT_LENGTH_DOWNLOAD_T,
				  &cl);
		if (cl > 0 && cl < ((curl_off_t)1 << 31))
			s3_buf_reserve(b, (size_t)cl + 1);
	}
	int r = s3_buf_add(b, p, n);

	if (r == -EFBIG)
		x->req->overflow = true;
	return r == 0 ? n : 0;
}

static size_t header_cb(char *p, size_t size, size_t nmemb, void *opaque)
{
	struct xfer *x = opaque;
	size_t n = size * nmemb;
	static const char name[] = "x-amz-bucket-region:";

	if (n > sizeof(name) && strncasecmp(p, name, sizeof(name) - 1) == 0) {
		const char *v = p + sizeof(name) - 1;
		const char *e = p + n;

		while (v < e && (*v == ' ' || *v == '\t'))
			v++;
		while (e > v &&
		       (e[-1] == '\r' || e[-1] == '\n' || e[-1] == ' '))
			e--;
		size_t l = (size_t)(e - v);
		if (l < sizeof(x->req->bucket_region)) {
			memcpy(x->req->bucket_region, v, l);
			x->req->bucket_region[l] = '\0';
		}
	}
	return n;
}

static int build_url(struct s3 *s3, const struct s3_req *req,
		     struct s3_buf *url)
{
	int r;

	if (req->key) {
		r = s3_buf_addf(url, "%s", s3->object_url);
		if (r == 0)
			r = s3_uri_encode(url, req->key, true);
	} else {
		r = s3_buf_addf(url, "%s", s3->bucket_url);
	}
	if (r == 0 && req->query)
		r = s3_buf_addf(url, "?%s", req->query);
	return r;
}

static struct curl_slist *build_headers(struct s3 *s3, const struct s3_req *req)
{
	struct curl_slist *l = NULL, *t;
	char line[512];
	char sha[65];

	/* A body the server need not hash (s3-unsigned-payload): the
	 * signature then covers the headers only. */
	if (s3->unsigned_payload && req->body_len)
		snprintf(sha, sizeof(sha), "UNSIGNED-PAYLOAD");
	else
		s3_sha256_hex(req->body, req->body_len, sha);
	snprintf(line, sizeof(line), "x-amz-content-sha256: %s", sha);
	if (!(l = curl_slist_append(l, line)))
		return NULL;
#define ADD(...)                                           \
	do {                                               \
		snprintf(line, sizeof(line), __VA_ARGS__); \
		t = curl_slist_append(l, line);            \
		if (!t)                                    \
			goto fail;                         \
		l = t;                                     \
	} while (0)
	if (req->content_type)
		ADD("Content-Type: %s", req->content_type);
	if (req->content_md5)
		ADD("Content-MD5: %s", req->content_md5);
	if (req->range)
		ADD("Range: %s", req->range);
	if (s3->session_token) {
		/* may be long: no snprintf into line */
		char *h;

		if (asprintf(&h, "x-amz-security-token: %s",
			     s3->session_token) < 0)
			goto fail;
		t = curl_slist_append(l, h);
		free(h);
		if (!t)
			goto fail;
		l = t;
	}
#undef ADD
	return l;
fail:
	curl_slist_free_all(l);
	return NULL;
}

static CURLcode attempt(struct s3 *s3, CURL *h, struct s3_req *req,
			const char *url, struct curl_slist *hdrs)
{
	struct xfer x = { .req = req, .h = h };
	CURLcode cc;

	curl_easy_reset(h);
	req->resp.len = 0;
	req->overflow = false;
	req->curl_err[0] = '\0';
	req->bucket_region[0] = '\0';
	curl_easy_setopt(h, CURLOPT_URL, url);
	curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "http,https");
	curl_easy_setopt(h, CURLOPT_PATH_AS_IS, 1L);
	curl_easy_setopt(h, CURLOPT_USERAGENT, "tierbd");
	curl_easy_setopt(h, CURLOPT_SHARE, s3->share);
	curl_easy_setopt(h, CURLOPT_ERRORBUFFER, req->curl_err);
	curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, (long)s3->timeout_ms);
	curl_easy_setopt(
		h, CURLOPT_CONNECTTIMEOUT_MS,
		(long)(s3->timeout_ms < 10000 ? s3->timeout_ms : 10000));
	curl_easy_setopt(h, CURLOPT_TCP_KEEPALIVE, 1L);
	curl_easy_setopt(h, CURLOPT_EXPECT_100_TIMEOUT_MS, (long)S3_EXPECT_MS);
	curl_easy_setopt(h, CURLOPT_AWS_SIGV4, s3->sigv4);
	curl_easy_setopt(h, CURLOPT_USERNAME, s3->access_key);
	curl_easy_setopt(h, CURLOPT_PASSWORD, s3->secret_key);
	curl_easy_setopt(h, CURLOPT_HTTPHEADER, hdrs);
	curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, write_cb);
	curl_easy_setopt(h, CURLOPT_WRITEDATA, &x);
	curl_easy_setopt(h, CURLOPT_HEADERFUNCTION, header_cb);
	curl_easy_setopt(h, CURLOPT_HEADERDATA, &x);
	if (s3->ca_bundle)
		curl_easy_setopt(h, CURLOPT_CAINFO, s3->ca_bundle);
	if (s3->insecure) {
		curl_easy_setopt(h, CURLOPT_SSL_VERIFYPEER, 0L);
		curl_easy_setopt(h, CURLOPT_SSL_VERIFYHOST, 0L);
	}

	if (strcmp(req->method, "HEAD") == 0) {
		curl_easy_setopt(h, CURLOPT_NOBODY, 1L);
	} else if (strcmp(req->method, "PUT") == 0 ||
		   strcmp(req->method, "POST") == 0) {
		/* POSTFIELDS, not UPLOAD: see the top of the file */
		curl_easy_setopt(h, CURLOPT_POSTFIELDS,
				 req->body ? req->body : "");
		curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE_LARGE,
				 (curl_off_t)req->body_len);
		if (req->method[1] == 'U')
			curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, "PUT");
	} else if (strcmp(req->method, "GET") != 0) {
		curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, req->method);
	}

	cc = curl_easy_perform(h);
	req->curl_code = cc;
	req->status = 0;
	curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &req->status);
	if (cc == CURLE_OK) {
		curl_off_t cl = -1;

		curl_easy_getinfo(h, CURLINFO_CONTENT_LENGTH_DOWNLOAD_T, &cl);
		req->have_length = cl >= 0;
		req->content_length = cl >= 0 ? (uint64_t)cl : 0;
	}
	return cc;
}

/* ---- outcome ---------------------------------------------------------- */

enum verdict { V_DONE, V_RETRY };

/* Sort one attempt's outcome: *err is the errno to return now (V_DONE)
 * or if retries run out (V_RETRY). */
static enum verdict judge(struct s3 *s3, struct s3_req *req, int *err)
{
	long st = req->status;

	req->code[0] = req->message[0] = '\0';
	if (req->curl_code != CURLE_OK) {
		switch (req->curl_code) {
		case CURLE_OPERATION_TIMEDOUT:
			S3_COUNT(s3, timeouts, 1);
			*err = -ETIMEDOUT;
			return V_RETRY;
		case CURLE_COULDNT_RESOLVE_HOST:
		case CURLE_COULDNT_CONNECT:
		case CURLE_SEND_ERROR:
		case CURLE_RECV_ERROR:
		case CURLE_GOT_NOTHING:
		case CURLE_PARTIAL_FILE:
		case CURLE_SSL_CONNECT_ERROR:
		case CURLE_HTTP2:
		case CURLE_HTTP2_STREAM:
		case CURLE_HTTP3:
		case CURLE_WEIRD_SERVER_REPLY:
			S3_COUNT(s3, net_errors, 1);
			*err = -ETIMEDOUT;
			return V_RETRY;
		case CURLE_PEER_FAILED_VERIFICATION:
		case CURLE_SSL_CACERT_BADFILE:
		case CURLE_SSL_CERTPROBLEM:
			S3_COUNT(s3, net_errors, 1);
			*err = -EACCES;
			return V_DONE;
		case CURLE_OUT_OF_MEMORY:
			*err = -ENOMEM;
			return V_DONE;
		case CURLE_WRITE_ERROR:
			/* our write_cb refused: out of memory, an
			 * oversized error reply, or an object larger than
			 * the caller's buffer */
			*err = req->overflow	    ? -EFBIG
			       : req->status >= 300 ? -EIO
						    : -ENOMEM;
			return V_DONE;
		case CURLE_URL_MALFORMAT:
		case CURLE_UNSUPPORTED_PROTOCOL:
		case CURLE_BAD_FUNCTION_ARGUMENT:
			*err = -EINVAL;
			return V_DONE;
		default:
			S3_COUNT(s3, net_errors, 1);
			*err = -EIO;
			return V_DONE;
		}
	}

	if (st >= 200 && st < 300) {
		*err = 0;
		return V_DONE;
	}
	if (st == 416 && req->range) {
		*err = 0; /* the range starts at or past the end */
		return V_DONE;
	}
	if (req->resp.len)
		s3_xml_error(req->resp.data, req->resp.len, req->code,
			     sizeof(req->code), req->message,
			     sizeof(req->message), NULL, 0);
	switch (st) {
	case 404:
		S3_COUNT(s3, not_found, 1);
		*err = -ENOENT;
		return V_DONE;
	case 401:
	case 403:
		if (strcmp(req->code, "QuotaExceeded") == 0) {
			S3_COUNT(s3, client_errors, 1);
			*err = -ENOSPC;
		} else {
			S3_COUNT(s3, denied, 1);
			*err = -EACCES;
		}
		return V_DONE;
	case 408:
		S3_COUNT(s3, timeouts, 1);
		*err = -ETIMEDOUT;
		return V_RETRY;
	case 429:
		S3_COUNT(s3, throttled, 1);
		*err = -EAGAIN;
		return V_RETRY;
	case 400:
	case 411:
	case 412:
	case 413:
	case 414:
	case 415:
	case 416:
		S3_COUNT(s3, client_errors, 1);
		*err = -EINVAL;
		return V_DONE;
	case 405:
		S3_COUNT(s3, client_errors, 1);
		*err = -EOPNOTSUPP;
		return V_DONE;
	case 501:
		S3_COUNT(s3, server_errors, 1);
		*err = -EOPNOTSUPP;
		return V_DONE;
	case 507:
		S3_COUNT(s3, server_errors, 1);
		*err = -ENOSPC;
		return V_DONE;
	}
	if (st == 503 && strcmp(req->code, "SlowDown") == 0) {
		S3_COUNT(s3, throttled, 1);
		*err = -EAGAIN;
		return V_RETRY;
	}
	if (st >= 500) {
		S3_COUNT(s3, server_errors, 1);
		*err = -EIO;
		return V_RETRY;
	}
	S3_COUNT(s3, client_errors, 1);
	*err = -EIO;
	return V_DONE;
}

static uint64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/* Full jitter: uniform in [0, min(cap, base * 2^attempt)]. */
static unsigned backoff_ms(unsigned attempt)
{
	static __thread uint64_t rnd;
	uint64_t ceil = S3_BACKOFF_BASE_MS;

	if (!rnd)
		rnd = now_ms() ^ ((uintptr_t)&rnd << 16) ^ 0x9e3779b97f4a7c15;
	rnd ^= rnd << 13; /* xorshift64 */
	rnd ^= rnd >> 7;
	rnd ^= rnd << 17;
	for (unsigned i = 0; i < attempt && ceil < S3_BACKOFF_CAP_MS; i++)
		ceil *= 2;
	if (ceil > S3_BACKOFF_CAP_MS)
		ceil = S3_BACKOFF_CAP_MS;
	return (unsigned)(rnd % (ceil + 1));
}

static void sleep_ms(unsigned ms)
{
	struct timespec ts = { ms / 1000, (long)(ms % 1000) * 1000000 };

	while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
		;
}

/* What went wrong, for a message: never a secret (curl's error text
 * and the server's reply know none). */
static void describe(const struct s3_req *req, char *buf, size_t len)
{
	if (req->curl_code != CURLE_OK)
		snprintf(buf, len, "%s",
			 req->curl_err[0] ? req->curl_err
					  : curl_easy_strerror(req->curl_code));
	else
		snprintf(buf, len, "HTTP %ld%s%s%s%s", req->status,
			 req->code[0] ? " " : "", req->code,
			 req->message[0] ? ": " : "", req->message);
}

int s3_perform(struct s3 *s3, struct s3_req *req)
{
	struct s3_buf url = { 0 };
	struct curl_slist *hdrs;
	unsigned budget = req->retry_ms ? req->retry_ms : s3->retry_ms;
	uint64_t start = now_ms();
	char what[512];
	int err;

	if (build_url(s3, req, &url) < 0)
		return -ENOMEM;
	hdrs = build_headers(s3, req);
	if (!hdrs) {
		s3_buf_free(&url);
		return -ENOMEM;
	}
	for (req->attempts = 0;; req->attempts++) {
		CURL *h = handle_get(s3);

		S3_COUNT(s3, requests, 1);
		attempt(s3, h, req, url.data, hdrs);
		handle_put(s3, h);
		if (judge(s3, req, &err) == V_DONE)
			break;

		unsigned wait = backoff_ms(req->attempts);
		uint64_t spent = now_ms() - start;
		if (spent + wait >= budget)
			break;
		S3_COUNT(s3, retries, 1);
		if (!req->quiet) {
			describe(req, what, sizeof(what));
			tlog(&s3->st.log, LOG_DEBUG,
			     "s3: %s %s: %s; retrying in %u ms", req->method,
			     req->key ? req->key : "(bucket)", what, wait);
		}
		sleep_ms(wait);
	}
	if (err && !req->quiet && !(err == -ENOENT && req->quiet_404)) {
		describe(req, what, sizeof(what));
		tlog(&s3->st.log, LOG_ERROR,
		     "s3: %s %s%s%s: %s (%u attempts in %" PRIu64 " ms)",
		     req->method, s3->bucket, req->key ? "/" : "",
		     req->key ? req->key : "", what, req->attempts + 1,
		     now_ms() - start);
	}
	curl_slist_free_all(hdrs);
	s3_buf_free(&url);
	return err;
}
