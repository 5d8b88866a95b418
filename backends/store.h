/* store.h - the cold tier: one ops table, several stores behind it.
 *
 * A store holds whole objects named by keys ("chunks/0000000000a1/
 * 0000000000000007", "log/...").  Keys are relative: the store adds its
 * own prefix (a directory for `dir`, BUCKET/PREFIX for `s3`).  Objects
 * are written whole and atomically: a reader sees the old object, the
 * new one, or ENOENT, never a mix.  PUT of a key that exists replaces
 * it, but the engine never overwrites a key that a commit references.
 *
 * Every op may be called from many threads at once.  Ops return 0 or
 * -errno; transient failures (timeouts, 5xx) are retried inside the
 * store, so an error returned to the engine is final for that call:
 *   -ENOENT  no such object            -EACCES  credentials refused
 *   -EIO     I/O error, corrupt reply  -ETIMEDOUT/-EAGAIN  gave up retrying
 *   -ENOSPC  store full                -EINVAL  bad key or argument
 * A store never logs secrets.
 */
#ifndef TIERBD_STORE_H
#define TIERBD_STORE_H

#include <stddef.h>
#include <stdint.h>

#include "../common/log.h"

struct store;

/* Counters every store keeps; the engine reports them in its stats. */
struct store_stats {
	uint64_t gets, puts, dels, heads, lists; /* ops completed OK */
	uint64_t bytes_in, bytes_out;		 /* payload bytes */
	uint64_t retries; /* transient failures retried */
	uint64_t errors;  /* ops that returned an error */
	/* outcome counters (s3: by HTTP class / CURLcode; dir: by errno) */
	uint64_t not_found, denied, timeouts, server_errors, net_errors;
};

/* Called by list() once per object; a non-zero return stops the listing
 * and is returned by list(). */
typedef int (*store_list_cb)(void *opaque, const char *key, uint64_t size);

struct store_ops {
	const char *name; /* "dir", "s3" */

	/* Read a whole object.  On success *buf is malloc'd (caller frees)
	 * and *len its size.  -ENOENT when absent. */
	int (*get)(struct store *st, const char *key, void **buf, size_t *len);

	/* Read a whole object into buf, which holds cap bytes: no
	 * allocation per object (a fetch reuses its buffer).  -EFBIG when
	 * the object is larger than cap (not retried).  Optional: callers
	 * use store_get_into(), which falls back to get. */
	int (*get_into)(struct store *st, const char *key, void *buf,
			size_t cap, size_t *len);

	/* Read bytes [off, off+len) of an object into buf (room for len
	 * bytes); *got is how many there were: fewer at the object's end,
	 * 0 when off is at or past it.  -ENOENT when absent.  Optional:
	 * callers use store_get_range(), which falls back to get. */
	int (*get_range)(struct store *st, const char *key, uint64_t off,
			 size_t len, void *buf, size_t *got);

	/* Write a whole object; durable in the store when it returns 0. */
	int (*put)(struct store *st, const char *key, const void *buf,
		   size_t len);

	/* Delete n objects (a missing object is not an error).  Stores
	 * batch internally (S3 DeleteObjects takes up to 1000 keys). */
	int (*del)(struct store *st, const char *const *keys, size_t n);

	/* Size of an object without reading it; -ENOENT when absent. */
	int (*head)(struct store *st, const char *key, uint64_t *size);

	/* Every object whose key starts with prefix, in key order. */
	int (*list)(struct store *st, const char *prefix, store_list_cb cb,
		    void *opaque);

	void (*stats)(struct store *st, struct store_stats *out);

	/* Release everything.  NULL-safe through store_destroy(). */
	void (*destroy)(struct store *st);
};

/* Every store embeds this as its first member. */
struct store {
	const struct store_ops *ops;
	struct logger log;
};

/* Parameters for every store; the `spec` is the user's store= string:
 *   dir:PATH                 a local directory (created if missing)
 *   s3://BUCKET[/PREFIX]     S3, configured by the s3_* fields
 * Unset (NULL / 0) fields take defaults. */
struct store_conf {
	const char *spec;
	struct logger log;
	/* Only an existing store will do: create nothing, and fail with
	 * errno ENOENT, without logging, where there is none (dir). */
	int no_create;

	/* s3 only */
	const char *s3_endpoint;   /* http(s)://host[:port]; default AWS */
	const char *s3_region;	   /* default us-east-1 */
	int s3_virtual_host;	   /* 1: BUCKET.host; default path style */
	const char *s3_ca_bundle;  /* CA file for https */
	int s3_insecure;	   /* 1: skip TLS verification (tests only) */
	int s3_unsigned_payload;   /* 1: PUT bodies are not hashed (https) */
	const char *s3_access_key; /* else AWS_ACCESS_KEY_ID, else file */
	const char *s3_secret_key; /* else AWS_SECRET_ACCESS_KEY, else file */
	const char *s3_credentials_file; /* ~/.aws/credentials format */
	const char *s3_profile;		 /* section in it; default "default" */
	unsigned s3_timeout_ms;		 /* per request; default 30000 */
	unsigned s3_retry_ms;		 /* give up retrying after; 60000 */
	unsigned s3_connections;	 /* pooled handles; default 16 */
};

/* Open the store named by conf->spec.  Checks that it is reachable and
 * usable (the directory is writable, the bucket exists and the
 * credentials work), so a misconfiguration fails here, with a message
 * through conf->log that says what to fix.  Returns NULL and sets errno
 * on failure. */
struct store *store_open(const struct store_conf *conf);

struct store *dir_store_open(const struct store_conf *conf, const char *path);
struct store *s3_store_open(const struct store_conf *conf, const char *url);

/* ops->get_range, or get and a copy where a store has none. */
int store_get_range(struct store *st, const char *key, uint64_t off, size_t len,
		    void *buf, size_t *got);

/* ops->get_into, or get and a copy where a store has no get_into. */
int store_get_into(struct store *st, const char *key, void *buf, size_t cap,
		   size_t *len);

static inline void store_destroy(struct store *st)
{
	if (st)
		st->ops->destroy(st);
}

#endif
