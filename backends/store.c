/* store.c - pick the store named by a store= specification; helpers
 * common to every store. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "store.h"

struct store *store_open(const struct store_conf *conf)
{
	const char *spec = conf->spec;

	if (!spec || !*spec) {
		tlog(&conf->log, LOG_ERROR,
		     "no store given: pass store=dir:PATH or "
		     "store=s3://BUCKET/PREFIX");
		errno = EINVAL;
		return NULL;
	}
	if (strncmp(spec, "dir:", 4) == 0 && spec[4])
		return dir_store_open(conf, spec + 4);
	if (strncmp(spec, "s3://", 5) == 0 && spec[5] && spec[5] != '/')
		return s3_store_open(conf, spec + 5);
	tlog(&conf->log, LOG_ERROR,
	     "store=%s: unknown store; use store=dir:PATH (a local "
	     "directory) or store=s3://BUCKET/PREFIX",
	     spec);
	errno = EINVAL;
	return NULL;
}

int store_get_into(struct store *st, const char *key, void *buf, size_t cap,
		   size_t *len)
{
	void *obj;
	size_t n;
	int r;

	if (st->ops->get_into)
		return st->ops->get_into(st, key, buf, cap, len);
	r = st->ops->get(st, key, &obj, &n);
	if (r < 0)
		return r;
	if (n > cap) {
		free(obj);
		return -EFBIG;
	}
	memcpy(buf, obj, n);
	free(obj);
	*len = n;
	return 0;
}

int store_get_range(struct store *st, const char *key, uint64_t off, size_t len,
		    void *buf, size_t *got)
{
	void *obj;
	size_t n;
	int r;

	if (st->ops->get_range)
		return st->ops->get_range(st, key, off, len, buf, got);
	if (!buf && len)
		return -EINVAL;
	r = st->ops->get(st, key, &obj, &n);
	if (r < 0)
		return r;
	*got = off < n ? (n - off < len ? n - off : len) : 0;
	if (*got)
		memcpy(buf, (char *)obj + off, *got);
	free(obj);
	return 0;
}
