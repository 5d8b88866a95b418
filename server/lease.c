/* lease.c - one host at a time on a device: a lease object in the store.
 *
 * The object `lease` names the cache directory that owns the device: a
 * random owner token kept in that directory (file `owner`), with the
 * host, pid, path and the time it was last renewed, as text:
 *
 *   tierbd-lease 1
 *   owner 5f0c...       (32 hex digits)
 *   host  NAME
 *   pid   N
 *   cache PATH
 *   renewed UNIXTIME
 *
 * Open: no lease, or our own token (a restart on the same cache
 * directory, after a crash too) -> write ours.  Another token -> refused
 * with who holds it and when it was last renewed, unless takeover=true
 * (the way to recover a device whose host died).  The commit worker
 * renews the lease; if it finds another owner's token there, this
 * process was taken over: it stops committing (fenced) and says so.
 * A clean close with nothing dirty and everything committed deletes the
 * lease, so another host may open the device without force.
 *
 * Object stores have no compare-and-swap that all of them offer, so two
 * hosts racing within one renewal interval are not excluded; the lease
 * is against mistakes (the same store= on two hosts), not adversaries.
 */
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/random.h>
#include <unistd.h>

#include "../common/cleanup.h"
#include "device_priv.h"

#define LEASE_KEY "lease"
#define OWNER_FILE "owner"

struct lease {
	char owner[33];
	char host[256];
	char cache[1024];
	long long pid, renewed;
};

/* The owner token of this cache directory, created if missing. */
static int owner_token(struct device *d, char out[33])
{
	CLEANUP_FREE char *path = NULL;
	int fd, r = 0;

	if (asprintf(&path, "%s/" OWNER_FILE, d->cache_dir) < 0)
		return -ENOMEM;
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd >= 0) {
		ssize_t n = read(fd, out, 32);
		close(fd);
		if (n == 32 && strspn(out, "0123456789abcdef") >= 32) {
			out[32] = 0;
			return 0;
		}
		tlog(&d->log, LOG_WARN,
		     "%s is damaged: making a new owner token", path);
	}
	uint8_t rnd[16];
	if (getrandom(rnd, sizeof(rnd), 0) != sizeof(rnd))
		return -EIO;
	for (int i = 0; i < 16; i++)
		snprintf(out + 2 * i, 3, "%02x", rnd[i]);
	fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (fd < 0 || write(fd, out, 32) != 32 || fsync(fd) < 0)
		r = -errno;
	if (fd >= 0)
		close(fd);
	if (r < 0)
		tlog(&d->log, LOG_ERROR, "writing %s: %s", path, strerror(-r));
	return r;
}

static void lease_parse(const char *text, size_t len, struct lease *l)
{
	CLEANUP_FREE char *s = strndup(text, len);
	char *save = NULL;

	memset(l, 0, sizeof(*l));
	if (!s)
		return;
	for (char *line = strtok_r(s, "\n", &save); line;
	     line = strtok_r(NULL, "\n", &save)) {
		char *v = strchr(line, ' ');
		if (!v)
			continue;
		*v++ = 0;
		while (*v == ' ')
			v++;
		if (strcmp(line, "owner") == 0)
			snprintf(l->owner, sizeof(l->owner), "%s", v);
		else if (strcmp(line, "host") == 0)
			snprintf(l->host, sizeof(l->host), "%s", v);
		else if (strcmp(line, "cache") == 0)
			snprintf(l->cache, sizeof(l->cache), "%s", v);
		else if (strcmp(line, "pid") == 0)
			l->pid = atoll(v);
		else if (strcmp(line, "renewed") == 0)
			l->renewed = atoll(v);
	}
}

static int lease_get(struct device *d, struct lease *l)
{
	void *buf = NULL;
	size_t len;
	int r = d->store->ops->get(d->store, LEASE_KEY, &buf, &len);

	if (r == 0)
		lease_parse(buf, len, l);
	free(buf);
	return r;
}

static int lease_put(struct device *d)
{
	char host[256] = "?", *text = NULL;
	int n, r;

	gethostname(host, sizeof(host) - 1);
	n = asprintf(&text,
		     "tierbd-lease 1\nowner %s\nhost %s\npid %ld\ncache %s\n"
		     "renewed %lld\n",
		     d->owner, host, (long)getpid(), d->cache_dir,
		     (long long)time(NULL));
	if (n < 0)
		return -ENOMEM;
	r = d->store->ops->put(d->store, LEASE_KEY, text, (size_t)n);
	free(text);
	return r;
}

int lease_acquire(struct device *d, bool takeover)
{
	struct lease l;
	int r = owner_token(d, d->owner);

	if (r < 0)
		return r;
	r = lease_get(d, &l);
	if (r < 0 && r != -ENOENT) {
		tlog(&d->log, LOG_ERROR, "reading the lease from the store: %s",
		     strerror(-r));
		return r;
	}
	if (r == 0 && strcmp(l.owner, d->owner) != 0) {
		long long age = (long long)time(NULL) - l.renewed;
		if (!takeover) {
			tlog(&d->log, LOG_ERROR,
			     "the device in this store is in use by host %s "
			     "(pid %lld, cache %s), lease renewed %lld s ago: "
			     "stop it there; if that host is gone for good, "
			     "pass takeover=true to take the device over",
			     *l.host ? l.host : "?", l.pid,
			     *l.cache ? l.cache : "?", age);
			return -EBUSY;
		}
		tlog(&d->log, LOG_WARN,
		     "takeover=true: taking the device over from host %s "
		     "(pid %lld, cache %s, lease renewed %lld s ago)",
		     *l.host ? l.host : "?", l.pid, *l.cache ? l.cache : "?",
		     age);
	}
	r = lease_put(d);
	if (r < 0) {
		tlog(&d->log, LOG_ERROR, "writing the lease to the store: %s",
		     strerror(-r));
		return r;
	}
	d->lease_renewed = time(NULL);
	return 0;
}

int lease_renew(struct device *d)
{
	struct lease l;
	int r = lease_get(d, &l);

	if (r == 0 && strcmp(l.owner, d->owner) != 0) {
		if (!d->fenced)
			tlog(&d->log, LOG_ERROR,
			     "the device was taken over by host %s (cache %s): "
			     "this process stops committing to the store; "
			     "stop it, and move its cache directory aside "
			     "before using it again",
			     *l.host ? l.host : "?", *l.cache ? l.cache : "?");
		d->fenced = true;
		return -EBUSY;
	}
	if (r < 0 && r != -ENOENT)
		return r; /* the store is away: try again later */
	r = lease_put(d);
	if (r == 0)
		d->lease_renewed = time(NULL);
	return r;
}

void lease_release(struct device *d)
{
	const char *key = LEASE_KEY;
	struct lease l;

	if (!*d->owner || d->fenced)
		return;
	if (lease_get(d, &l) == 0 && strcmp(l.owner, d->owner) == 0)
		d->store->ops->del(d->store, &key, 1);
}
