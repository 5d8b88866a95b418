/* s3_int.h - what the parts of the s3 store share (not for the engine).
 *
 *   s3.c       the open checks and the ops
 *   s3_conf.c  spec, endpoint and credentials into struct s3
 *   s3_http.c  the handle pool and s3_perform(): one request, signed by
 *              libcurl (CURLOPT_AWS_SIGV4), with retries, and the one
 *              place where HTTP status / CURLcode become -errno
 *   s3_xml.c   the few S3 XML replies we read, and escaping for the
 *              one we write
 */
#ifndef TIERBD_S3_INT_H
#define TIERBD_S3_INT_H

#include <curl/curl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "store.h"

#define S3_KEY_MAX 1024 /* S3's limit, prefix included */

/* A growable byte buffer; data is malloc'd. */
struct s3_buf {
	char *data;
	size_t len, cap;
	bool fixed; /* data is the caller's, cap bytes: never grown or freed */
};

void s3_buf_free(struct s3_buf *b);
/* 0; -ENOMEM; -EFBIG when a fixed buffer is full.  A NUL follows the
 * data where there is room (always, unless fixed). */
int s3_buf_add(struct s3_buf *b, const void *p, size_t n);
int s3_buf_addf(struct s3_buf *b, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

struct s3 {
	struct store st;

	/* configuration, immutable after open */
	char *endpoint; /* "http://127.0.0.1:7480", no trailing '/' */
	/* The URL of key K is object_url + encoded K; bucket_url is for
	 * bucket requests.  Path style: "http://host/BUCKET/" and
	 * "http://host/BUCKET"; virtual host: "http://BUCKET.host/" both. */
	char *object_url;
	char *bucket_url;
	char *bucket;
	char *prefix; /* "" or "vol1/" */
	char *region;
	char *sigv4; /* "aws:amz:REGION:s3" */
	char *access_key;
	char *secret_key;    /* never logged; wiped on destroy */
	char *session_token; /* x-amz-security-token header, or NULL */
	char *cred_source;   /* where the keys came from, for messages */
	char *ca_bundle;
	bool insecure;
	bool unsigned_payload; /* x-amz-content-sha256: UNSIGNED-PAYLOAD */
	bool virtual_host;
	unsigned timeout_ms, retry_ms, connections;

	/* the handle pool (s3_http.c) */
	bool http_ready;	    /* the locks below are initialised */
	pthread_mutex_t pool_lock;  /* protects free_handles, nfree */
	pthread_cond_t handle_free; /* signalled when nfree goes up */
	CURL **free_handles;
	unsigned nfree;
	CURLSH *share;		    /* DNS cache and TLS sessions */
	pthread_mutex_t share_lock; /* held by curl around share access */

	struct {
		atomic_uint_fast64_t gets, puts, dels, heads, lists;
		atomic_uint_fast64_t bytes_in, bytes_out;
		atomic_uint_fast64_t retries, errors;
		atomic_uint_fast64_t not_found, denied, timeouts;
		atomic_uint_fast64_t server_errors, net_errors;
		atomic_uint_fast64_t requests, client_errors, throttled;
	} n;
};

#define S3_COUNT(s3, field, v) \
	atomic_fetch_add_explicit(&(s3)->n.field, (v), memory_order_relaxed)

/* One request.  The caller fills the first block; s3_perform() fills
 * the second. */
struct s3_req {
	const char *method; /* GET HEAD PUT POST DELETE */
	const char *key;    /* object key (prefix included); NULL: bucket */
	const char *query;  /* canonical query string without '?', or NULL:
			     * sorted, percent-encoded, every name with '=' */
	const void *body;   /* PUT/POST payload */
	size_t body_len;
	const char *content_type; /* or NULL */
	const char *content_md5;  /* base64, or NULL */
	unsigned retry_ms;	  /* retry budget; 0: the store's s3_retry_ms */
	bool quiet_404; /* a 404 is an expected answer: do not log it */
	bool quiet;	/* log nothing (the caller explains failures) */
	/* "bytes=A-B" for a ranged GET (s3.c get_range): a fixed resp then
	 * takes only a 206 reply, and a 416 is no error (no bytes there) */
	const char *range;

	long status;	    /* last HTTP status, 0 if none */
	CURLcode curl_code; /* last CURLcode */
	char curl_err[CURL_ERROR_SIZE];
	struct s3_buf resp;	 /* response body (caller frees) */
	bool overflow;		 /* resp is fixed and the body did not fit */
	uint64_t content_length; /* from the response headers */
	bool have_length;
	char bucket_region[64]; /* x-amz-bucket-region, if sent */
	char code[64];		/* S3 error <Code>, if any */
	char message[256];	/* S3 error <Message>, if any */
	unsigned attempts;
};

/* ---- s3_conf.c ---- */

/* Fill the configuration part of s3 from conf and store=s3://url;
 * logs what to fix.  0 / -errno. */
int s3_conf_parse(struct s3 *s3, const struct store_conf *conf,
		  const char *url);
void s3_wipe_free(char *s); /* free a secret, zeroed first */

/* ---- s3_http.c ---- */

int s3_http_init(struct s3 *s3); /* the pool; 0 / -errno */
void s3_http_fini(struct s3 *s3);
int s3_perform(struct s3 *s3, struct s3_req *req); /* 0: 2xx; -errno */

/* Percent-encode src for a URL path (keep_slash) or a query value, in
 * the form SigV4 signs: every byte but A-Z a-z 0-9 - _ . ~ as %XX. */
int s3_uri_encode(struct s3_buf *out, const char *src, bool keep_slash);

void s3_sha256_hex(const void *p, size_t n, char out[65]);
void s3_md5_base64(const void *p, size_t n, char out[32]);

/* ---- s3_xml.c ---- */

/* ListObjectsV2 reply: calls cb for each <Contents> with its <Key>
 * (unescaped) and <Size>; sets *truncated and *token (malloc'd, NULL
 * when absent).  0, the callback's non-zero return, or -EIO if the
 * reply does not parse. */
typedef int (*s3_xml_obj_cb)(void *opaque, const char *key, uint64_t size);
int s3_xml_list(const char *xml, size_t len, s3_xml_obj_cb cb, void *opaque,
		bool *truncated, char **token);

/* <Error><Code>..</Code><Message>..</Message><Region>..</Region>: copies
 * what it finds (truncated to the buffers); 0, or -EIO if none. */
int s3_xml_error(const char *xml, size_t len, char *code, size_t code_len,
		 char *msg, size_t msg_len, char *region, size_t region_len);

/* DeleteObjects reply: cb for every <Error> with its Key, Code, Message.
 * 0, the callback's non-zero return, or -EIO. */
typedef int (*s3_xml_delerr_cb)(void *opaque, const char *key, const char *code,
				const char *msg);
int s3_xml_delete_result(const char *xml, size_t len, s3_xml_delerr_cb cb,
			 void *opaque);

/* Append s with & < > " ' escaped. */
int s3_xml_escape(struct s3_buf *out, const char *s);

#endif
