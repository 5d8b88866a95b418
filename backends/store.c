/* store.c - pick the store named by a store= specification. */
#include <errno.h>
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
