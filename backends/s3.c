/* s3.c - the `s3` store: objects in an S3 bucket (AWS, MinIO, Ceph RGW).
 *
 * store=s3://BUCKET[/PREFIX] keeps object KEY at BUCKET/PREFIX/KEY.  The
 * endpoint is http(s)://host[:port] (default https://s3.REGION.amazonaws
 * .com), addressed path style (host/BUCKET/KEY, what MinIO and RGW
 * expect) unless s3_virtual_host (BUCKET.host/KEY).
 *
 * Credentials come from the parameters, the environment or a
 * credentials file (s3_conf.c); messages name where they came from and
 * the access key id, never the secret.
 *
 * Open checks the bucket with ListObjectsV2 max-keys=1 (what the engine
 * needs: listing, and the keys being accepted), so a wrong secret, a
 * missing bucket or a server that is not running fails at start with a
 * message saying what to fix, after a short retry (S3_OPEN_RETRY_MS),
 * not the minute a running device would wait.
 *
 * The ops map onto GET (with a Range for get_range) / PUT / HEAD
 * object, DeleteObjects (1000 keys per request, per-key errors read
 * from the reply, transient ones sent again) and ListObjectsV2 with
 * continuation tokens.  Requests, retries and errno mapping are in
 * s3_http.c, XML in s3_xml.c.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "common/cleanup.h"
#include "s3_int.h"

#define S3_OPEN_RETRY_MS 2000
#define S3_DELETE_BATCH 1000
#define S3_DELETE_ROUNDS 5

static const struct store_ops s3_ops;

/* The same key rule as the dir store (see dir.c): 1..1024 bytes with
 * the prefix, '/'-separated components, none empty or starting with
 * '.', no control characters. */
static bool key_valid(const struct s3 *s3, const char *key)
{
	bool start = true;

	if (!*key || strlen(key) + strlen(s3->prefix) > S3_KEY_MAX)
		return false;
	for (const char *p = key; *p; p++) {
		unsigned char c = (unsigned char)*p;

		if (c < 0x20 || c == 0x7f)
			return false;
		if (start && (c == '/' || c == '.'))
			return false;
		start = c == '/';
	}
	return !start;
}

static int s3_result(struct s3 *s3, int r)
{
	if (r != 0)
		S3_COUNT(s3, errors, 1);
	return r;
}

/* key with the store's prefix, malloc'd */
static char *full_key(const struct s3 *s3, const char *key)
{
	char *k;

	return asprintf(&k, "%s%s", s3->prefix, key) < 0 ? NULL : k;
}

/* ---- ops -------------------------------------------------------------- */

/* GET key into req->resp (a fixed buffer, or one grown as it comes). */
static int get_object(struct s3 *s3, const char *key, struct s3_req *req)
{
	CLEANUP_FREE char *k = NULL;
	int r;

	if (!key_valid(s3, key))
		return -EINVAL;
	if (!(k = full_key(s3, key)))
		return -ENOMEM;
	req->method = "GET";
	req->quiet_404 = true;
	req->key = k;
	r = s3_perform(s3, req);
	if (r == 0 && req->have_length && req->content_length != req->resp.len)
		r = -EIO;
	if (r == 0) {
		S3_COUNT(s3, gets, 1);
		/* not a 416's error body */
		if (req->status < 300)
			S3_COUNT(s3, bytes_in, req->resp.len);
	}
	return r;
}

static int s3_get(struct store *st, const char *key, void **buf, size_t *len)
{
	struct s3 *s3 = (struct s3 *)st;
	struct s3_req req = { 0 };
	int r = get_object(s3, key, &req);

	if (r == 0 && !req.resp.data) {
		req.resp.data = malloc(1); /* an empty object */
		if (!req.resp.data)
			r = -ENOMEM;
	}
	if (r < 0) {
		s3_buf_free(&req.resp);
		return s3_result(s3, r);
	}
	*buf = req.resp.data;
	*len = req.resp.len;
	return 0;
}

static int s3_get_into(struct store *st, const char *key, void *buf, size_t cap,
		       size_t *len)
{
	struct s3 *s3 = (struct s3 *)st;
	struct s3_req req = {
		.resp = { .data = buf, .cap = cap, .fixed = true }
	};
	int r = get_object(s3, key, &req);

	if (r < 0)
		return s3_result(s3, r);
	*len = req.resp.len;
	return 0;
}

/* Bytes [off, off + len): a GET with "Range: bytes=off-(off+len-1)".
 * A 206 reply is written straight into buf (fewer bytes at the end of
 * the object); 416 means off is at or past the end: no bytes; a 200 is
 * the whole object from a server that ignores Range, and the range is
 * copied out of it (s3_http.c keeps every reply but a 206 out of buf).
 * The Content-Range of a 206 is not checked: a reader checks what it
 * reads (seg_frame_check).  len 0, or an offset no S3 object reaches,
 * asks for byte 0 only to learn whether the object exists. */
static int s3_get_range(struct store *st, const char *key, uint64_t off,
			size_t len, void *buf, size_t *got)
{
	struct s3 *s3 = (struct s3 *)st;
	const uint64_t far = UINT64_C(1) << 62;
	uint8_t scratch[1];
	char range[64];
	bool probe = len == 0 || off >= far;
	struct s3_req req = { .range = range };
	uint64_t first = 0, last = 0;
	size_t n = 0;
	int r;

	if (!buf && len)
		return s3_result(s3, -EINVAL);
	if (probe) {
		req.resp = (struct s3_buf){ .data = (char *)scratch,
					    .cap = 1,
					    .fixed = true };
	} else {
		req.resp = (struct s3_buf){ .data = buf,
					    .cap = len,
					    .fixed = true };
		first = off;
		last = len - 1 > far - off ? far : off + len - 1;
	}
	snprintf(range, sizeof(range), "bytes=%" PRIu64 "-%" PRIu64, first,
		 last);
	r = get_object(s3, key, &req);
	if (r == -EFBIG)
		r = -EIO; /* a 206 longer than the range asked for */
	if (r == 0 && !probe) {
		if (req.status == 206 && req.resp.len > len)
			r = -EIO;
		else if (req.status == 206)
			n = req.resp.len;
		else if (req.status == 200 && off < req.resp.len)
			n = req.resp.len - off < len ? req.resp.len - off : len;
		else if (req.status != 200 && req.status != 416)
			r = -EIO;
		/* a 206 is in buf, unless a retry's reply went elsewhere */
		if (r == 0 && n && req.resp.data != buf)
			memcpy(buf,
			       req.resp.data + (req.status == 200 ? off : 0),
			       n);
	}
	s3_buf_free(&req.resp); /* frees only a buffer of its own */
	if (r < 0)
		return s3_result(s3, r);
	*got = n;
	return 0;
}

static int s3_put(struct store *st, const char *key, const void *buf,
		  size_t len)
{
	struct s3 *s3 = (struct s3 *)st;
	CLEANUP_FREE char *k = NULL;
	struct s3_req req = { .method = "PUT",
			      .body = buf,
			      .body_len = len,
			      .content_type = "application/octet-stream" };
	int r;

	if (!key_valid(s3, key) || (!buf && len))
		return s3_result(s3, -EINVAL);
	if (!(k = full_key(s3, key)))
		return s3_result(s3, -ENOMEM);
	req.key = k;
	r = s3_perform(s3, &req);
	s3_buf_free(&req.resp);
	if (r < 0)
		return s3_result(s3, r);
	S3_COUNT(s3, puts, 1);
	S3_COUNT(s3, bytes_out, len);
	return 0;
}

static int s3_head(struct store *st, const char *key, uint64_t *size)
{
	struct s3 *s3 = (struct s3 *)st;
	CLEANUP_FREE char *k = NULL;
	struct s3_req req = { .method = "HEAD", .quiet_404 = true };
	int r;

	if (!key_valid(s3, key))
		return s3_result(s3, -EINVAL);
	if (!(k = full_key(s3, key)))
		return s3_result(s3, -ENOMEM);
	req.key = k;
	r = s3_perform(s3, &req);
	s3_buf_free(&req.resp);
	if (r == 0 && !req.have_length)
		r = -EIO;
	if (r < 0)
		return s3_result(s3, r);
	*size = req.content_length;
	S3_COUNT(s3, heads, 1);
	return 0;
}

/* DeleteObjects: what one round of a batch left to do. */
struct del_round {
	struct s3 *s3;
	char **again; /* keys that failed transiently (malloc'd) */
	size_t nagain, cap;
	size_t nfailed; /* keys that failed for good */
	int err;	/* the first one's errno */
};

static int del_error_cb(void *opaque, const char *key, const char *code,
			const char *msg)
{
	struct del_round *dr = opaque;
	struct s3 *s3 = dr->s3;
	size_t pl = strlen(s3->prefix);

	if (strcmp(code, "NoSuchKey") == 0)
		return 0;
	if (strcmp(code, "InternalError") == 0 ||
	    strcmp(code, "SlowDown") == 0 ||
	    strcmp(code, "ServiceUnavailable") == 0 ||
	    strcmp(code, "OperationAborted") == 0) {
		char *k;

		if (dr->nagain == dr->cap)
			return -EIO; /* more errors than keys sent */
		if (!(k = strdup(key)))
			return -ENOMEM;
		dr->again[dr->nagain++] = k;
		return 0;
	}
	if (dr->nfailed++ == 0) {
		/* one message per request, not one per key */
		tlog(&s3->st.log, LOG_ERROR, "s3: delete %s: %s%s%s",
		     strncmp(key, s3->prefix, pl) == 0 ? key + pl : key, code,
		     *msg ? ": " : "", msg);
		dr->err = strcmp(code, "AccessDenied") == 0 ? -EACCES : -EIO;
	}
	return 0;
}

/* One DeleteObjects request for keys[0..n) (full keys). */
static int delete_objects(struct s3 *s3, char *const *keys, size_t n,
			  struct del_round *dr)
{
	struct s3_buf xml = { 0 };
	struct s3_req req = { .method = "POST",
			      .query = "delete=",
			      .content_type = "application/xml" };
	char md5[32];
	int r;

	r = s3_buf_addf(&xml, "<?xml version=\"1.0\" encoding=\"UTF-8\"?>"
			      "<Delete><Quiet>true</Quiet>");
	for (size_t i = 0; i < n && r == 0; i++) {
		r = s3_buf_addf(&xml, "<Object><Key>");
		if (r == 0)
			r = s3_xml_escape(&xml, keys[i]);
		if (r == 0)
			r = s3_buf_addf(&xml, "</Key></Object>");
	}
	if (r == 0)
		r = s3_buf_addf(&xml, "</Delete>");
	if (r < 0) {
		s3_buf_free(&xml);
		return -ENOMEM;
	}
	s3_md5_base64(xml.data, xml.len, md5);
	req.body = xml.data;
	req.body_len = xml.len;
	req.content_md5 = md5;
	r = s3_perform(s3, &req);
	/* Quiet mode lists only failures; a server that has none to list
	 * may send no document at all. */
	if (r == 0 && req.resp.len > strspn(req.resp.data, " \t\r\n")) {
		r = s3_xml_delete_result(req.resp.data, req.resp.len,
					 del_error_cb, dr);
		if (r == -EIO)
			tlog(&s3->st.log, LOG_ERROR,
			     "s3: DeleteObjects on %s: the reply does not "
			     "parse",
			     s3->bucket);
	}
	s3_buf_free(&req.resp);
	s3_buf_free(&xml);
	return r;
}

/* Servers without DeleteObjects (it answered 501 or 405): one by one. */
static int delete_one_by_one(struct s3 *s3, char *const *keys, size_t n)
{
	int first = 0;

	for (size_t i = 0; i < n; i++) {
		struct s3_req req = { .method = "DELETE",
				      .key = keys[i],
				      .quiet_404 = true };
		int r = s3_perform(s3, &req);

		s3_buf_free(&req.resp);
		if (r < 0 && r != -ENOENT && first == 0)
			first = r;
	}
	return first;
}

static void free_keys(char **keys, size_t n)
{
	for (size_t i = 0; i < n; i++)
		free(keys[i]);
}

/* Delete keys[0..n) (full keys, the caller's), sending again the keys
 * that failed transiently, for up to S3_DELETE_ROUNDS rounds. */
static int delete_batch(struct s3 *s3, char *const *keys, size_t n)
{
	char *const *todo = keys;
	char **again = calloc(n, sizeof(*again));
	char **mine = NULL; /* this round's keys after the first round */
	size_t nmine = 0;
	int r = 0;

	if (!again)
		return -ENOMEM;
	for (unsigned round = 0;; round++) {
		struct del_round dr = { .s3 = s3, .again = again, .cap = n };

		r = delete_objects(s3, todo, n, &dr);
		if (r == -EOPNOTSUPP)
			r = delete_one_by_one(s3, todo, n);
		else if (r == 0)
			r = dr.err;
		if (dr.nfailed > 1)
			tlog(&s3->st.log, LOG_ERROR,
			     "s3: DeleteObjects on %s: %zu keys failed",
			     s3->bucket, dr.nfailed);
		free_keys(mine, nmine);
		nmine = 0;
		if (r < 0 || dr.nagain == 0 || round + 1 == S3_DELETE_ROUNDS) {
			if (r == 0 && dr.nagain) {
				tlog(&s3->st.log, LOG_ERROR,
				     "s3: DeleteObjects on %s: %zu keys "
				     "still failing after %u rounds",
				     s3->bucket, dr.nagain, S3_DELETE_ROUNDS);
				r = -EIO;
			}
			free_keys(again, dr.nagain);
			break;
		}
		S3_COUNT(s3, retries, 1);
		usleep(100000u << round);
		if (!mine && !(mine = calloc(n, sizeof(*mine)))) {
			free_keys(again, dr.nagain);
			r = -ENOMEM;
			break;
		}
		memcpy(mine, again, dr.nagain * sizeof(*mine));
		nmine = n = dr.nagain;
		todo = mine;
	}
	free(mine);
	free(again);
	return r;
}

static int s3_del(struct store *st, const char *const *keys, size_t n)
{
	struct s3 *s3 = (struct s3 *)st;
	int first = 0;

	for (size_t i = 0; i < n; i++)
		if (!key_valid(s3, keys[i]))
			return s3_result(s3, -EINVAL);
	for (size_t i = 0; i < n; i += S3_DELETE_BATCH) {
		size_t m = n - i < S3_DELETE_BATCH ? n - i : S3_DELETE_BATCH;
		char **full = calloc(m, sizeof(*full));
		size_t j = 0;
		int r = 0;

		if (!full)
			return s3_result(s3, -ENOMEM);
		for (; j < m; j++) {
			full[j] = full_key(s3, keys[i + j]);
			if (!full[j]) {
				r = -ENOMEM;
				break;
			}
		}
		if (r == 0)
			r = delete_batch(s3, full, m);
		free_keys(full, j);
		free(full);
		if (r < 0 && first == 0)
			first = r;
	}
	if (first == 0)
		S3_COUNT(s3, dels, 1);
	return s3_result(s3, first);
}

struct list_ctx {
	struct s3 *s3;
	store_list_cb cb;
	void *opaque;
	bool stopped;
};

static int list_obj_cb(void *opaque, const char *key, uint64_t size)
{
	struct list_ctx *lc = opaque;
	size_t pl = strlen(lc->s3->prefix);
	int r;

	if (strncmp(key, lc->s3->prefix, pl) != 0 || !key[pl])
		return -EIO; /* not what we asked for */
	r = lc->cb(lc->opaque, key + pl, size);
	lc->stopped = r != 0;
	return r;
}

static int s3_list(struct store *st, const char *prefix, store_list_cb cb,
		   void *opaque)
{
	struct s3 *s3 = (struct s3 *)st;
	struct list_ctx lc = { .s3 = s3, .cb = cb, .opaque = opaque };
	struct s3_buf enc_prefix = { 0 }, query = { 0 };
	CLEANUP_FREE char *full = NULL;
	char *token = NULL;
	bool truncated = true;
	int r;

	if (!prefix)
		prefix = "";
	if (!cb || strlen(prefix) > S3_KEY_MAX)
		return s3_result(s3, -EINVAL);
	if (!(full = full_key(s3, prefix)) ||
	    s3_uri_encode(&enc_prefix, full, false) < 0) {
		s3_buf_free(&enc_prefix);
		return s3_result(s3, -ENOMEM);
	}
	for (r = 0; r == 0 && truncated;) {
		struct s3_req req = { .method = "GET" };

		/* sorted: continuation-token < list-type < prefix */
		query.len = 0;
		if (token) {
			r = s3_buf_addf(&query, "continuation-token=");
			if (r == 0)
				r = s3_uri_encode(&query, token, false);
			if (r == 0)
				r = s3_buf_addf(&query, "&");
		}
		if (r == 0)
			r = s3_buf_addf(&query, "list-type=2&prefix=%s",
					enc_prefix.data ? enc_prefix.data : "");
		if (r < 0)
			break;
		req.query = query.data;
		r = s3_perform(s3, &req);
		free(token);
		token = NULL;
		if (r == 0) {
			r = s3_xml_list(req.resp.data, req.resp.len,
					list_obj_cb, &lc, &truncated, &token);
			if (r == -EIO && !lc.stopped)
				tlog(&s3->st.log, LOG_ERROR,
				     "s3: ListObjectsV2 on %s: the reply does "
				     "not parse",
				     s3->bucket);
		}
		s3_buf_free(&req.resp);
	}
	free(token);
	s3_buf_free(&query);
	s3_buf_free(&enc_prefix);
	if (r == 0 || lc.stopped) {
		S3_COUNT(s3, lists, 1);
		return r; /* the callback's stop is not a store error */
	}
	return s3_result(s3, r);
}

static void s3_stats(struct store *st, struct store_stats *out)
{
	struct s3 *s3 = (struct s3 *)st;

	memset(out, 0, sizeof(*out));
	out->gets = atomic_load(&s3->n.gets);
	out->puts = atomic_load(&s3->n.puts);
	out->dels = atomic_load(&s3->n.dels);
	out->heads = atomic_load(&s3->n.heads);
	out->lists = atomic_load(&s3->n.lists);
	out->bytes_in = atomic_load(&s3->n.bytes_in);
	out->bytes_out = atomic_load(&s3->n.bytes_out);
	out->retries = atomic_load(&s3->n.retries);
	out->errors = atomic_load(&s3->n.errors);
	out->not_found = atomic_load(&s3->n.not_found);
	out->denied = atomic_load(&s3->n.denied);
	out->timeouts = atomic_load(&s3->n.timeouts);
	out->server_errors = atomic_load(&s3->n.server_errors) +
			     atomic_load(&s3->n.throttled);
	out->net_errors = atomic_load(&s3->n.net_errors);
}

static void s3_destroy(struct store *st)
{
	struct s3 *s3 = (struct s3 *)st;

	s3_http_fini(s3);
	tlog(&s3->st.log, LOG_DEBUG,
	     "s3: closing %s: %" PRIu64 " requests, %" PRIu64
	     " retries, %" PRIu64 " client errors, %" PRIu64 " throttled",
	     s3->bucket ? s3->bucket : "?", (uint64_t)s3->n.requests,
	     (uint64_t)s3->n.retries, (uint64_t)s3->n.client_errors,
	     (uint64_t)s3->n.throttled);
	free(s3->endpoint);
	free(s3->object_url);
	free(s3->bucket_url);
	free(s3->bucket);
	free(s3->prefix);
	free(s3->region);
	free(s3->sigv4);
	free(s3->access_key);
	s3_wipe_free(s3->secret_key);
	s3_wipe_free(s3->session_token);
	free(s3->cred_source);
	free(s3->ca_bundle);
	free(s3);
}

static const struct store_ops s3_ops = {
	.name = "s3",
	.get = s3_get,
	.get_into = s3_get_into,
	.get_range = s3_get_range,
	.put = s3_put,
	.del = s3_del,
	.head = s3_head,
	.list = s3_list,
	.stats = s3_stats,
	.destroy = s3_destroy,
};

static int ignore_obj(void *opaque, const char *key, uint64_t size)
{
	return 0;
}

/* ListObjectsV2 max-keys=1 under our prefix: explains any failure. */
static int check_bucket(struct s3 *s3)
{
	const struct logger *lg = &s3->st.log;
	struct s3_buf query = { 0 };
	struct s3_req req = { .method = "GET",
			      .retry_ms = S3_OPEN_RETRY_MS < s3->retry_ms
						  ? S3_OPEN_RETRY_MS
						  : s3->retry_ms,
			      .quiet = true };
	char region[64] = "";
	bool truncated;
	char *token = NULL;
	int r;

	r = s3_buf_addf(&query, "list-type=2&max-keys=1&prefix=");
	if (r == 0)
		r = s3_uri_encode(&query, s3->prefix, false);
	if (r < 0)
		return -ENOMEM;
	req.query = query.data;
	r = s3_perform(s3, &req);
	s3_buf_free(&query);
	if (req.resp.len)
		s3_xml_error(req.resp.data, req.resp.len, NULL, 0, NULL, 0,
			     region, sizeof(region));
	if (!region[0])
		memcpy(region, req.bucket_region, sizeof(region));

	if (r == 0) {
		r = s3_xml_list(req.resp.data, req.resp.len, ignore_obj, NULL,
				&truncated, &token);
		free(token);
		if (r < 0)
			tlog(lg, LOG_ERROR,
			     "s3: %s does not answer like S3 for bucket %s "
			     "(the reply to ListObjectsV2 does not parse): "
			     "check s3-endpoint= and s3-virtual-host=",
			     s3->endpoint, s3->bucket);
	} else if (req.curl_code != CURLE_OK && r == -EACCES) {
		tlog(lg, LOG_ERROR,
		     "s3: TLS with %s failed: %s: give the CA that signed "
		     "its certificate with s3-ca-bundle=FILE (or, for tests "
		     "only, s3-insecure=true)",
		     s3->endpoint,
		     req.curl_err[0] ? req.curl_err
				     : curl_easy_strerror(req.curl_code));
	} else if (req.curl_code != CURLE_OK) {
		tlog(lg, LOG_ERROR,
		     "s3: cannot connect to %s: %s: check s3-endpoint= and "
		     "that the server is running and reachable",
		     s3->endpoint,
		     req.curl_err[0] ? req.curl_err
				     : curl_easy_strerror(req.curl_code));
		if (req.curl_code == CURLE_COULDNT_CONNECT)
			r = -ECONNREFUSED;
	} else if (r == -ENOENT && strcmp(req.code, "NoSuchBucket") == 0) {
		tlog(lg, LOG_ERROR,
		     "s3: bucket %s does not exist at %s: create it (e.g. "
		     "`aws --endpoint-url %s s3 mb s3://%s`, `mc mb "
		     "ALIAS/%s`, or tests/ceph-s3.sh mkbucket %s), or fix "
		     "store=s3://BUCKET/...",
		     s3->bucket, s3->endpoint, s3->endpoint, s3->bucket,
		     s3->bucket, s3->bucket);
	} else if (r == -EACCES) {
		bool keys = strcmp(req.code, "SignatureDoesNotMatch") == 0 ||
			    strcmp(req.code, "InvalidAccessKeyId") == 0;

		if (strcmp(req.code, "RequestTimeTooSkewed") == 0)
			tlog(lg, LOG_ERROR,
			     "s3: %s refuses the request time: set this "
			     "host's clock right (NTP)",
			     s3->endpoint);
		else
			tlog(lg, LOG_ERROR,
			     "s3: access denied by %s for bucket %s (%s, "
			     "access key %s from %s): %s",
			     s3->endpoint, s3->bucket,
			     req.code[0] ? req.code : "HTTP 403",
			     s3->access_key, s3->cred_source,
			     keys ? "check s3-access-key/s3-secret-key (or "
				    "AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY, "
				    "or the credentials file)"
				  : "check s3-access-key/s3-secret-key (or "
				    "AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY, "
				    "or the credentials file) and that this "
				    "key may list, read and write the bucket");
	} else if (region[0] && strcmp(region, s3->region) != 0) {
		tlog(lg, LOG_ERROR,
		     "s3: bucket %s is in region %s, not %s: set "
		     "s3-region=%s",
		     s3->bucket, region, s3->region, region);
		r = -EINVAL;
	} else {
		char what[384];

		snprintf(what, sizeof(what), "HTTP %ld%s%s%s%s", req.status,
			 req.code[0] ? " " : "", req.code,
			 req.message[0] ? ": " : "", req.message);
		tlog(lg, LOG_ERROR,
		     "s3: checking bucket %s at %s failed: %s: check "
		     "s3-endpoint=, s3-region= and s3-virtual-host=",
		     s3->bucket, s3->endpoint, what);
		if (r == 0 || r == -ENOENT)
			r = -EIO;
	}
	s3_buf_free(&req.resp);
	return r;
}

struct store *s3_store_open(const struct store_conf *conf, const char *url)
{
	struct s3 *s3 = calloc(1, sizeof(*s3));
	int r;

	if (!s3) {
		errno = ENOMEM;
		return NULL;
	}
	s3->st.ops = &s3_ops;
	s3->st.log = conf->log;
	if ((r = s3_conf_parse(s3, conf, url)) < 0)
		goto fail;
	if ((r = s3_http_init(s3)) < 0) {
		tlog(&conf->log, LOG_ERROR, "s3: cannot set up libcurl: %s",
		     strerror(-r));
		goto fail;
	}
	if ((r = check_bucket(s3)) < 0)
		goto fail;
	tlog(&conf->log, LOG_INFO,
	     "s3: bucket %s at %s (%s, region %s), prefix \"%s\", access key "
	     "%s from %s, %u connections",
	     s3->bucket, s3->endpoint,
	     s3->virtual_host ? "virtual host" : "path style", s3->region,
	     s3->prefix, s3->access_key, s3->cred_source, s3->connections);
	return &s3->st;

fail:
	s3_destroy(&s3->st);
	errno = -r;
	return NULL;
}
