/* dir.c - the `dir` store: one file per object in a local directory.
 *
 * store=dir:PATH keeps object KEY in the file PATH/KEY; the '/' in keys
 * become subdirectories, created on demand.  It is the embedded default
 * and what the unit tests run against, so it keeps the same contract as
 * S3 (store.h): whole objects, atomic replacement, listing in key order.
 *
 * put writes a temporary file ".tmp.<pid>.<n>" in the key's directory,
 * fsyncs it, renames it over the key and fsyncs the directory, so the
 * object is durable when put returns and a reader sees the old file or
 * the new one, never a mix.  A directory entry is only durable once its
 * parent directory is fsynced too: `durable` remembers the directories
 * whose entry we know is on disk (created and parent fsynced, by this
 * process or a previous one found at lookup), so a put into a directory
 * that another thread created a moment ago still waits for that entry.
 *
 * Keys: 1..1024 bytes, components separated by single '/', none empty
 * and none starting with '.' (so "." / ".." cannot escape PATH and the
 * temporaries can never collide with an object), no control characters.
 * The s3 store checks the same rule, so a key valid on one store is
 * valid on every store.  A key cannot be both an object and a prefix of
 * another key followed by '/' (a file cannot also be a directory): put
 * returns -EINVAL then.
 *
 * list walks the tree in byte order of the whole key (strcmp, the order
 * S3 uses).  Sorting each directory by name, with "/" appended to the
 * names of subdirectories, gives exactly that order: "a-c" < "a/" < "a0".
 *
 * Every path operation is relative to a descriptor of PATH (openat and
 * friends), so nothing depends on the current directory.  Errors are
 * -errno.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/cleanup.h"
#include "store.h"

#define DIR_KEY_MAX 1024
#define TMP_PREFIX ".tmp."
#define DURABLE_BUCKETS 4096

struct durable_dir {
	struct durable_dir *next;
	char path[]; /* relative to the root, no trailing '/' */
};

struct dir_store {
	struct store st;
	char *path;  /* the root, as given */
	int root_fd; /* O_DIRECTORY descriptor of the root */
	atomic_uint_fast64_t tmp_seq;

	pthread_mutex_t durable_lock; /* protects durable[] and its chains */
	struct durable_dir *durable[DURABLE_BUCKETS];

	struct {
		atomic_uint_fast64_t gets, puts, dels, heads, lists;
		atomic_uint_fast64_t bytes_in, bytes_out;
		atomic_uint_fast64_t errors, not_found, denied;
	} n;
};

static const struct store_ops dir_ops;

#define COUNT(ds, field, v) \
	atomic_fetch_add_explicit(&(ds)->n.field, (v), memory_order_relaxed)

/* Count the outcome of one op and pass its result through. */
static int dir_result(struct dir_store *ds, int r)
{
	if (r == 0)
		return 0;
	COUNT(ds, errors, 1);
	if (r == -ENOENT)
		COUNT(ds, not_found, 1);
	else if (r == -EACCES || r == -EPERM)
		COUNT(ds, denied, 1);
	return r;
}

/* The key rule described at the top. */
static bool key_valid(const char *key)
{
	size_t len = strlen(key);
	bool start = true; /* at the first byte of a component */

	if (len == 0 || len > DIR_KEY_MAX)
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

/* The prefix of list() may end anywhere (inside a component too); it
 * only selects keys, so any string without control characters goes. */
static bool prefix_valid(const char *prefix)
{
	for (const char *p = prefix; *p; p++)
		if ((unsigned char)*p < 0x20 || *p == 0x7f)
			return false;
	return strlen(prefix) <= DIR_KEY_MAX;
}

static size_t hash_str(const char *s)
{
	size_t h = 5381;

	while (*s)
		h = h * 33 + (unsigned char)*s++;
	return h % DURABLE_BUCKETS;
}

static bool durable_has(struct dir_store *ds, const char *rel)
{
	SCOPED_LOCK(&ds->durable_lock);
	for (struct durable_dir *d = ds->durable[hash_str(rel)]; d; d = d->next)
		if (strcmp(d->path, rel) == 0)
			return true;
	return false;
}

static void durable_add(struct dir_store *ds, const char *rel)
{
	size_t len = strlen(rel);
	struct durable_dir *d = malloc(sizeof(*d) + len + 1);

	if (!d)
		return; /* only costs an fsync next time */
	memcpy(d->path, rel, len + 1);
	SCOPED_LOCK(&ds->durable_lock);
	size_t h = hash_str(rel);
	for (struct durable_dir *o = ds->durable[h]; o; o = o->next) {
		if (strcmp(o->path, rel) == 0) {
			free(d);
			return;
		}
	}
	d->next = ds->durable[h];
	ds->durable[h] = d;
}

/* fsync the directory rel ("" = the root) relative to the root. */
static int fsync_dir_at(struct dir_store *ds, const char *rel)
{
	int fd = openat(ds->root_fd, *rel ? rel : ".",
			O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	int r = 0;

	if (fd < 0)
		return -errno;
	if (fsync(fd) < 0)
		r = -errno;
	close(fd);
	return r;
}

/* Make sure the directory rel (a key's parent, "a/b") exists and that
 * its entry, and its ancestors' entries, are on disk. */
static int ensure_dir(struct dir_store *ds, const char *rel)
{
	char buf[DIR_KEY_MAX + 1];
	size_t len = strlen(rel);

	if (len == 0 || durable_has(ds, rel))
		return 0;
	memcpy(buf, rel, len + 1);
	/* Walk down from the top: "a", "a/b", ... */
	for (size_t i = 0; i <= len; i++) {
		if (buf[i] != '/' && buf[i] != '\0')
			continue;
		buf[i] = '\0';
		if (!durable_has(ds, buf)) {
			struct stat sb;

			if (mkdirat(ds->root_fd, buf, 0777) < 0) {
				if (errno != EEXIST)
					return errno == ENOTDIR ? -EINVAL
								: -errno;
				/* an object where a directory should be */
				if (fstatat(ds->root_fd, buf, &sb,
					    AT_SYMLINK_NOFOLLOW) < 0)
					return -errno;
				if (!S_ISDIR(sb.st_mode))
					return -EINVAL;
			}
			/* Whether we or another thread created it, or it
			 * was there before: its entry is durable once its
			 * parent is fsynced. */
			char *slash = strrchr(buf, '/');
			int r;

			if (slash) {
				*slash = '\0';
				r = fsync_dir_at(ds, buf);
				*slash = '/';
			} else {
				r = fsync_dir_at(ds, "");
			}
			if (r < 0)
				return r;
			durable_add(ds, buf);
		}
		if (i < len)
			buf[i] = '/';
	}
	return 0;
}

static int write_all(int fd, const void *buf, size_t len)
{
	const char *p = buf;

	while (len > 0) {
		ssize_t n = write(fd, p, len);

		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

static int dir_put_file(struct dir_store *ds, const char *key, const void *buf,
			size_t len)
{
	char parent[DIR_KEY_MAX + 1];
	const char *base = key;
	const char *slash = strrchr(key, '/');
	char tmp[64];
	int r;

	parent[0] = '\0';
	if (slash) {
		memcpy(parent, key, (size_t)(slash - key));
		parent[slash - key] = '\0';
		base = slash + 1;
	}
	r = ensure_dir(ds, parent);
	if (r < 0)
		return r;

	CLEANUP_CLOSE int pfd = openat(ds->root_fd, *parent ? parent : ".",
				       O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (pfd < 0)
		return errno == ENOTDIR ? -EINVAL : -errno;

	snprintf(tmp, sizeof(tmp), TMP_PREFIX "%ld.%lu", (long)getpid(),
		 (unsigned long)atomic_fetch_add(&ds->tmp_seq, 1));
	int fd =
		openat(pfd, tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0666);
	if (fd < 0)
		return -errno;
	r = write_all(fd, buf, len);
	if (r == 0 && fsync(fd) < 0)
		r = -errno;
	if (close(fd) < 0 && r == 0)
		r = -errno;
	if (r == 0 && renameat(pfd, tmp, pfd, base) < 0)
		r = errno == EISDIR ? -EINVAL : -errno;
	if (r < 0) {
		unlinkat(pfd, tmp, 0);
		return r;
	}
	/* The rename is durable once the directory is. */
	if (fsync(pfd) < 0)
		return -errno;
	return 0;
}

static int dir_put(struct store *st, const char *key, const void *buf,
		   size_t len)
{
	struct dir_store *ds = (struct dir_store *)st;
	int r;

	if (!key_valid(key) || (!buf && len))
		return dir_result(ds, -EINVAL);
	r = dir_put_file(ds, key, buf, len);
	if (r == 0) {
		COUNT(ds, puts, 1);
		COUNT(ds, bytes_out, len);
	}
	return dir_result(ds, r);
}

/* open a key for reading: -ENOENT when absent or not a regular file. */
static int open_object(struct dir_store *ds, const char *key, struct stat *sb)
{
	int fd = openat(ds->root_fd, key, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);

	if (fd < 0)
		return errno == ENOTDIR || errno == ELOOP ? -ENOENT : -errno;
	if (fstat(fd, sb) < 0) {
		int r = -errno;

		close(fd);
		return r;
	}
	if (!S_ISREG(sb->st_mode)) {
		close(fd);
		return -ENOENT;
	}
	return fd;
}

/* Read a whole object into buf (cap bytes; -EFBIG if it is larger), or
 * into a new buffer when buf is NULL.  Objects are replaced by rename,
 * never written in place, so the inode we opened keeps its size. */
static int get_object(struct dir_store *ds, const char *key, char *buf,
		      size_t cap, void **bufp, size_t *lenp)
{
	struct stat sb;
	size_t len, done = 0;
	char *p = buf;

	if (!key_valid(key))
		return dir_result(ds, -EINVAL);
	CLEANUP_CLOSE int fd = open_object(ds, key, &sb);
	if (fd < 0)
		return dir_result(ds, fd);
	len = (size_t)sb.st_size;
	if (buf && len > cap)
		return dir_result(ds, -EFBIG);
	if (!buf && !(p = malloc(len ? len : 1)))
		return dir_result(ds, -ENOMEM);
	while (done < len) {
		ssize_t n = pread(fd, p + done, len - done, (off_t)done);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			int r = n < 0 ? -errno : -EIO;

			if (!buf)
				free(p);
			return dir_result(ds, r);
		}
		done += (size_t)n;
	}
	if (bufp)
		*bufp = p;
	*lenp = len;
	COUNT(ds, gets, 1);
	COUNT(ds, bytes_in, len);
	return 0;
}

static int dir_get(struct store *st, const char *key, void **bufp, size_t *lenp)
{
	return get_object((struct dir_store *)st, key, NULL, 0, bufp, lenp);
}

static int dir_get_into(struct store *st, const char *key, void *buf,
			size_t cap, size_t *lenp)
{
	return get_object((struct dir_store *)st, key, buf, cap, NULL, lenp);
}

/* Bytes [off, off + len) of an object: preads of what there is of
 * them.  The inode opened keeps its size (objects are replaced by
 * rename), so a short read is an I/O error, not a race. */
static int dir_get_range(struct store *st, const char *key, uint64_t off,
			 size_t len, void *buf, size_t *got)
{
	struct dir_store *ds = (struct dir_store *)st;
	struct stat sb;
	size_t want, done = 0;

	if (!key_valid(key) || (!buf && len))
		return dir_result(ds, -EINVAL);
	CLEANUP_CLOSE int fd = open_object(ds, key, &sb);
	if (fd < 0)
		return dir_result(ds, fd);
	want = 0;
	if (off < (uint64_t)sb.st_size)
		want = (uint64_t)sb.st_size - off < len
			       ? (size_t)((uint64_t)sb.st_size - off)
			       : len;
	while (done < want) {
		ssize_t n = pread(fd, (char *)buf + done, want - done,
				  (off_t)(off + done));

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return dir_result(ds, n < 0 ? -errno : -EIO);
		done += (size_t)n;
	}
	*got = want;
	COUNT(ds, gets, 1);
	COUNT(ds, bytes_in, want);
	return 0;
}

static int dir_head(struct store *st, const char *key, uint64_t *size)
{
	struct dir_store *ds = (struct dir_store *)st;
	struct stat sb;

	if (!key_valid(key))
		return dir_result(ds, -EINVAL);
	if (fstatat(ds->root_fd, key, &sb, AT_SYMLINK_NOFOLLOW) < 0)
		return dir_result(ds, errno == ENOTDIR ? -ENOENT : -errno);
	if (!S_ISREG(sb.st_mode))
		return dir_result(ds, -ENOENT);
	*size = (uint64_t)sb.st_size;
	COUNT(ds, heads, 1);
	return 0;
}

/* Deleting is not made durable: a delete lost in a crash leaves an
 * object no commit references, which the next GC removes again. */
static int dir_del(struct store *st, const char *const *keys, size_t n)
{
	struct dir_store *ds = (struct dir_store *)st;
	int first = 0;

	for (size_t i = 0; i < n; i++) {
		int r = 0;

		if (!key_valid(keys[i]))
			r = -EINVAL;
		else if (unlinkat(ds->root_fd, keys[i], 0) < 0 &&
			 errno != ENOENT && errno != ENOTDIR)
			r = errno == EISDIR ? -EINVAL : -errno;
		if (r < 0 && first == 0)
			first = r;
	}
	if (first == 0)
		COUNT(ds, dels, 1);
	return dir_result(ds, first);
}

/* ---- list ------------------------------------------------------------- */

struct ent {
	char *name; /* with a trailing '/' for a directory */
	uint64_t size;
};

static int ent_cmp(const void *a, const void *b)
{
	return strcmp(((const struct ent *)a)->name,
		      ((const struct ent *)b)->name);
}

struct walk {
	struct dir_store *ds;
	const char *prefix;
	size_t prefix_len;
	store_list_cb cb;
	void *opaque;
	bool stopped;		   /* the callback returned non-zero */
	char key[DIR_KEY_MAX + 2]; /* the path being walked, '/'-terminated */
};

/* Does the subtree or key at w->key (length len) intersect the prefix? */
static bool may_match(const struct walk *w, size_t len)
{
	size_t n = len < w->prefix_len ? len : w->prefix_len;

	return memcmp(w->key, w->prefix, n) == 0;
}

static int ent_push(struct ent **ents, size_t *n, size_t *cap, const char *name,
		    size_t nl, uint64_t size)
{
	if (*n == *cap) {
		size_t ncap = *cap ? *cap * 2 : 64;
		struct ent *ne = realloc(*ents, ncap * sizeof(*ne));

		if (!ne)
			return -ENOMEM;
		*ents = ne;
		*cap = ncap;
	}
	(*ents)[*n].name = strndup(name, nl);
	if (!(*ents)[*n].name)
		return -ENOMEM;
	(*ents)[(*n)++].size = size;
	return 0;
}

/* Read the entries of directory d that may hold keys with the prefix,
 * each as "name" or "name/", with the size of files. */
static int read_dir(struct walk *w, size_t len, DIR *d, struct ent **ents,
		    size_t *n)
{
	size_t cap = 0;

	for (;;) {
		struct dirent *de;
		struct stat sb;
		bool isdir;

		errno = 0;
		de = readdir(d);
		if (!de)
			return -errno;
		if (de->d_name[0] == '.')
			continue; /* ".", "..", temporaries */
		size_t nl = strlen(de->d_name);
		if (len + nl + 1 > DIR_KEY_MAX)
			continue; /* not one of ours */
		if (de->d_type != DT_UNKNOWN && de->d_type != DT_DIR &&
		    de->d_type != DT_REG)
			continue;
		isdir = de->d_type == DT_DIR;
		/* Filter before stat: in a directory of many chunks, a
		 * narrow prefix selects few of them. */
		memcpy(w->key + len, de->d_name, nl);
		w->key[len + nl] = '/';
		if (!may_match(w, len + nl + (de->d_type == DT_DIR)))
			continue;
		if (de->d_type == DT_DIR) {
			sb.st_size = 0;
		} else {
			if (fstatat(dirfd(d), de->d_name, &sb,
				    AT_SYMLINK_NOFOLLOW) < 0) {
				if (errno == ENOENT)
					continue; /* deleted meanwhile */
				return -errno;
			}
			isdir = S_ISDIR(sb.st_mode);
			if (!isdir && !S_ISREG(sb.st_mode))
				continue;
			if (isdir && !may_match(w, len + nl + 1))
				continue;
		}
		/* w->key + len holds the name and a '/' */
		int r = ent_push(ents, n, &cap, w->key + len, nl + isdir,
				 isdir ? 0 : (uint64_t)sb.st_size);
		if (r < 0)
			return r;
	}
}

/* Walk the directory w->key[0..len) ("" = root), '/'-terminated. */
static int walk_dir(struct walk *w, size_t len)
{
	struct ent *ents = NULL;
	size_t n = 0;
	int r;
	int fd = openat(w->ds->root_fd, len ? w->key : ".",
			O_RDONLY | O_DIRECTORY | O_CLOEXEC);

	if (fd < 0)
		return errno == ENOENT || errno == ENOTDIR ? 0 : -errno;
	DIR *d = fdopendir(fd);
	if (!d) {
		r = -errno;
		close(fd);
		return r;
	}
	r = read_dir(w, len, d, &ents, &n);
	closedir(d);

	if (r == 0 && n > 1)
		qsort(ents, n, sizeof(*ents), ent_cmp);
	for (size_t i = 0; i < n && r == 0; i++) {
		size_t nl = strlen(ents[i].name);

		memcpy(w->key + len, ents[i].name, nl + 1);
		if (ents[i].name[nl - 1] == '/') {
			r = walk_dir(w, len + nl);
		} else if (len + nl >= w->prefix_len) {
			/* may_match() held, and the key is at least as long
			 * as the prefix: it starts with it. */
			r = w->cb(w->opaque, w->key, ents[i].size);
			w->stopped = r != 0;
		}
	}
	for (size_t i = 0; i < n; i++)
		free(ents[i].name);
	free(ents);
	w->key[len] = '\0';
	return r;
}

static int dir_list(struct store *st, const char *prefix, store_list_cb cb,
		    void *opaque)
{
	struct dir_store *ds = (struct dir_store *)st;
	struct walk *w;
	const char *slash;
	size_t start = 0;
	bool stopped;
	int r;

	if (!prefix)
		prefix = "";
	if (!prefix_valid(prefix) || !cb)
		return dir_result(ds, -EINVAL);
	w = calloc(1, sizeof(*w));
	if (!w)
		return dir_result(ds, -ENOMEM);
	w->ds = ds;
	w->prefix = prefix;
	w->prefix_len = strlen(prefix);
	w->cb = cb;
	w->opaque = opaque;
	/* Start in the deepest directory the prefix names whole. */
	slash = strrchr(prefix, '/');
	if (slash) {
		start = (size_t)(slash - prefix) + 1;
		memcpy(w->key, prefix, start);
	}
	r = walk_dir(w, start);
	stopped = w->stopped;
	free(w);
	if (r == 0 || stopped) {
		COUNT(ds, lists, 1);
		return r; /* the callback's stop is not a store error */
	}
	return dir_result(ds, r);
}

static void dir_stats(struct store *st, struct store_stats *out)
{
	struct dir_store *ds = (struct dir_store *)st;

	memset(out, 0, sizeof(*out));
	out->gets = atomic_load(&ds->n.gets);
	out->puts = atomic_load(&ds->n.puts);
	out->dels = atomic_load(&ds->n.dels);
	out->heads = atomic_load(&ds->n.heads);
	out->lists = atomic_load(&ds->n.lists);
	out->bytes_in = atomic_load(&ds->n.bytes_in);
	out->bytes_out = atomic_load(&ds->n.bytes_out);
	out->errors = atomic_load(&ds->n.errors);
	out->not_found = atomic_load(&ds->n.not_found);
	out->denied = atomic_load(&ds->n.denied);
}

static void dir_destroy(struct store *st)
{
	struct dir_store *ds = (struct dir_store *)st;

	for (size_t i = 0; i < DURABLE_BUCKETS; i++) {
		struct durable_dir *d = ds->durable[i];

		while (d) {
			struct durable_dir *next = d->next;

			free(d);
			d = next;
		}
	}
	if (ds->root_fd >= 0)
		close(ds->root_fd);
	pthread_mutex_destroy(&ds->durable_lock);
	free(ds->path);
	free(ds);
}

static const struct store_ops dir_ops = {
	.name = "dir",
	.get = dir_get,
	.get_into = dir_get_into,
	.get_range = dir_get_range,
	.put = dir_put,
	.del = dir_del,
	.head = dir_head,
	.list = dir_list,
	.stats = dir_stats,
	.destroy = dir_destroy,
};

static void fsync_path(const char *path)
{
	int fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);

	if (fd >= 0) {
		fsync(fd);
		close(fd);
	}
}

/* mkdir -p path, fsyncing the parent of every directory it creates. */
static int mkdir_p(char *path)
{
	size_t len = strlen(path);

	for (size_t i = 1; i <= len; i++) {
		if (path[i] != '/' && path[i] != '\0')
			continue;
		char c = path[i];

		path[i] = '\0';
		if (mkdir(path, 0777) == 0) {
			char *slash = strrchr(path, '/');

			if (!slash) {
				fsync_path(".");
			} else if (slash == path) {
				fsync_path("/");
			} else {
				*slash = '\0';
				fsync_path(path);
				*slash = '/';
			}
		} else if (errno != EEXIST) {
			int r = -errno;

			path[i] = c;
			return r;
		}
		path[i] = c;
	}
	return 0;
}

/* Can we create files in the root?  access() says yes to root even on
 * a directory it does not own, and nothing about quotas: try it. */
static int probe_writable(struct dir_store *ds)
{
	char name[64];
	int fd;

	snprintf(name, sizeof(name), TMP_PREFIX "probe.%ld", (long)getpid());
	fd = openat(ds->root_fd, name, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC,
		    0600);
	if (fd < 0)
		return -errno;
	close(fd);
	unlinkat(ds->root_fd, name, 0);
	return 0;
}

struct store *dir_store_open(const struct store_conf *conf, const char *path)
{
	const struct logger *lg = &conf->log;
	struct dir_store *ds;
	struct stat sb;
	int r;

	ds = calloc(1, sizeof(*ds));
	if (!ds) {
		errno = ENOMEM;
		return NULL;
	}
	ds->st.ops = &dir_ops;
	ds->st.log = conf->log;
	ds->root_fd = -1;
	pthread_mutex_init(&ds->durable_lock, NULL);
	ds->path = strdup(path);
	if (!ds->path) {
		r = -ENOMEM;
		goto fail;
	}
	/* strip trailing slashes, keeping "/" */
	for (size_t l = strlen(ds->path); l > 1 && ds->path[l - 1] == '/';)
		ds->path[--l] = '\0';

	if (conf->no_create && stat(ds->path, &sb) < 0 && errno == ENOENT) {
		r = -ENOENT;
		goto fail_quiet;
	}
	r = mkdir_p(ds->path);
	if (r < 0) {
		tlog(lg, LOG_ERROR,
		     "store=dir:%s: cannot create the directory: %s: "
		     "create it, or give a path where this user may create "
		     "directories",
		     path, strerror(-r));
		goto fail;
	}
	if (stat(ds->path, &sb) < 0)
		r = -errno;
	else if (!S_ISDIR(sb.st_mode))
		r = -ENOTDIR;
	if (r < 0) {
		tlog(lg, LOG_ERROR,
		     "store=dir:%s: %s: give the path of a directory", path,
		     strerror(-r));
		goto fail;
	}
	ds->root_fd = open(ds->path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (ds->root_fd < 0) {
		r = -errno;
		tlog(lg, LOG_ERROR,
		     "store=dir:%s: cannot open the directory: %s: fix its "
		     "permissions or choose another directory",
		     path, strerror(-r));
		goto fail;
	}
	r = probe_writable(ds);
	if (r < 0) {
		tlog(lg, LOG_ERROR,
		     "store=dir:%s: cannot create files in the directory (%s): "
		     "fix its permissions or owner (the server runs as uid "
		     "%ld), or choose another directory",
		     path, strerror(-r), (long)geteuid());
		goto fail;
	}
	tlog(lg, LOG_DEBUG, "store=dir:%s opened", path);
	return &ds->st;

fail:
fail_quiet:
	dir_destroy(&ds->st);
	errno = -r;
	return NULL;
}
