/* s3_conf.c - the s3 store's configuration: spec, endpoint, credentials.
 *
 * Turns store= and the s3_* fields of struct store_conf into the
 * immutable part of struct s3, or says what is wrong and how to fix it.
 *
 * Credentials, first found wins:
 *   1. s3_access_key + s3_secret_key (both, or it is an error);
 *   2. AWS_ACCESS_KEY_ID + AWS_SECRET_ACCESS_KEY in the environment
 *      (+ AWS_SESSION_TOKEN, sent as x-amz-security-token);
 *   3. a credentials file in the ~/.aws/credentials format:
 *      s3_credentials_file, else $AWS_SHARED_CREDENTIALS_FILE, else
 *      $HOME/.aws/credentials; section s3_profile, else $AWS_PROFILE,
 *      else "default"; keys aws_access_key_id, aws_secret_access_key,
 *      aws_session_token.
 * cred_source records which, for messages; the secret and the token
 * are never in a message and are wiped from memory when freed.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "common/cleanup.h"
#include "s3_int.h"

void s3_wipe_free(char *s)
{
	if (s) {
		explicit_bzero(s, strlen(s));
		free(s);
	}
}

static int parse_spec(struct s3 *s3, const char *url)
{
	const struct logger *lg = &s3->st.log;
	const char *slash = strchr(url, '/');
	size_t bl = slash ? (size_t)(slash - url) : strlen(url);
	const char *p;

	if (bl == 0 || bl > 255) {
		tlog(lg, LOG_ERROR,
		     "store=s3://%s: no bucket: use store=s3://BUCKET/PREFIX",
		     url);
		return -EINVAL;
	}
	for (size_t i = 0; i < bl; i++) {
		char c = url[i];

		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
		      (c >= '0' && c <= '9') || c == '-' || c == '.' ||
		      c == '_')) {
			tlog(lg, LOG_ERROR,
			     "store=s3://%s: the bucket name may only hold "
			     "letters, digits, '-', '.' and '_'",
			     url);
			return -EINVAL;
		}
	}
	s3->bucket = strndup(url, bl);
	if (!s3->bucket)
		return -ENOMEM;

	/* the prefix: trimmed of '/' at both ends, then "P/" */
	p = slash ? slash : "";
	while (*p == '/')
		p++;
	size_t pl = strlen(p);
	while (pl && p[pl - 1] == '/')
		pl--;
	if (pl == 0) {
		s3->prefix = strdup("");
		return s3->prefix ? 0 : -ENOMEM;
	}
	if (asprintf(&s3->prefix, "%.*s/", (int)pl, p) < 0) {
		s3->prefix = NULL;
		return -ENOMEM;
	}
	/* the prefix follows the key rule (it is part of every key) */
	bool start = true;
	for (size_t i = 0; i < pl; i++) {
		unsigned char c = (unsigned char)p[i];

		if (c < 0x20 || c == 0x7f ||
		    (start && (c == '/' || c == '.')) || pl > S3_KEY_MAX / 2) {
			tlog(lg, LOG_ERROR,
			     "store=s3://%s: bad prefix: use '/'-separated "
			     "names, none empty or starting with '.'",
			     url);
			return -EINVAL;
		}
		start = c == '/';
	}
	return 0;
}

static int parse_endpoint(struct s3 *s3, const struct store_conf *conf)
{
	const struct logger *lg = &s3->st.log;
	const char *ep = conf->s3_endpoint;
	CLEANUP_FREE char *dflt = NULL;
	const char *scheme, *host;
	size_t hl;

	if (!ep || !*ep) {
		if (asprintf(&dflt, "https://s3.%s.amazonaws.com", s3->region) <
		    0)
			return -ENOMEM;
		ep = dflt;
	}
	if (strchr(ep, '@')) {
		/* it may hold a password: do not repeat it */
		tlog(lg, LOG_ERROR,
		     "s3-endpoint: give http(s)://HOST[:PORT] (keys go in "
		     "s3-access-key= and s3-secret-key=, not in the URL)");
		return -EINVAL;
	}
	if (strncasecmp(ep, "http://", 7) == 0) {
		scheme = "http";
		host = ep + 7;
	} else if (strncasecmp(ep, "https://", 8) == 0) {
		scheme = "https";
		host = ep + 8;
	} else {
		tlog(lg, LOG_ERROR,
		     "s3-endpoint=%s: give the URL of the server, "
		     "http://HOST[:PORT] or https://HOST[:PORT]",
		     ep);
		return -EINVAL;
	}
	hl = strcspn(host, "/?#");
	for (const char *q = host + hl; *q; q++) {
		if (*q != '/') {
			tlog(lg, LOG_ERROR,
			     "s3-endpoint=%s: give only http(s)://HOST[:PORT], "
			     "without a path (the bucket goes in store=)",
			     ep);
			return -EINVAL;
		}
	}
	if (hl == 0) {
		tlog(lg, LOG_ERROR,
		     "s3-endpoint=%s: give http(s)://HOST[:PORT]", ep);
		return -EINVAL;
	}
	if (asprintf(&s3->endpoint, "%s://%.*s", scheme, (int)hl, host) < 0) {
		s3->endpoint = NULL;
		return -ENOMEM;
	}
	if (conf->s3_virtual_host) {
		/* BUCKET.HOST must be a name: not BUCKET.10.0.0.1 */
		size_t name_len = strcspn(host, ":/");

		if (host[0] == '[' || strspn(host, "0123456789.") == name_len) {
			tlog(lg, LOG_ERROR,
			     "s3-virtual-host=true needs a host name in "
			     "s3-endpoint=%s, not an IP address: give the "
			     "name BUCKET.NAME resolves under, or drop "
			     "s3-virtual-host (path style)",
			     ep);
			return -EINVAL;
		}
		if (asprintf(&s3->object_url, "%s://%s.%.*s/", scheme,
			     s3->bucket, (int)hl, host) < 0) {
			s3->object_url = NULL;
			return -ENOMEM;
		}
		s3->bucket_url = strdup(s3->object_url);
	} else {
		if (asprintf(&s3->object_url, "%s/%s/", s3->endpoint,
			     s3->bucket) < 0) {
			s3->object_url = NULL;
			return -ENOMEM;
		}
		s3->bucket_url =
			strndup(s3->object_url, strlen(s3->object_url) - 1);
	}
	return s3->bucket_url ? 0 : -ENOMEM;
}

/* Strip blanks at both ends, in place. */
static char *trim(char *s)
{
	while (*s == ' ' || *s == '\t')
		s++;
	size_t l = strlen(s);
	while (l && (s[l - 1] == ' ' || s[l - 1] == '\t' || s[l - 1] == '\r' ||
		     s[l - 1] == '\n'))
		s[--l] = '\0';
	return s;
}

/* Read aws_access_key_id, aws_secret_access_key, aws_session_token from
 * [profile] of an ~/.aws/credentials file.  -ENOENT if the file is
 * missing, -ESRCH if the profile has no keys. */
static int read_credentials_file(struct s3 *s3, const char *file,
				 const char *profile)
{
	FILE *f = fopen(file, "re");
	char *line = NULL;
	size_t cap = 0;
	bool in = false;
	int r = -ESRCH;

	if (!f)
		return -errno;
	while (getline(&line, &cap, f) > 0) {
		char *s = trim(line), *eq, *v;
		char **dst = NULL;

		if (*s == '#' || *s == ';' || !*s)
			continue;
		if (*s == '[') {
			char *e = strchr(s, ']');

			if (e) {
				*e = '\0';
				in = strcmp(trim(s + 1), profile) == 0;
			}
			continue;
		}
		if (!in || !(eq = strchr(s, '=')))
			continue;
		*eq = '\0';
		v = trim(eq + 1);
		s = trim(s);
		if (strcasecmp(s, "aws_access_key_id") == 0)
			dst = &s3->access_key;
		else if (strcasecmp(s, "aws_secret_access_key") == 0)
			dst = &s3->secret_key;
		else if (strcasecmp(s, "aws_session_token") == 0)
			dst = &s3->session_token;
		if (dst && *v) {
			s3_wipe_free(*dst);
			*dst = strdup(v);
			if (!*dst) {
				r = -ENOMEM;
				break;
			}
		}
	}
	if (line) {
		explicit_bzero(line, cap);
		free(line);
	}
	fclose(f);
	if (r == -ENOMEM)
		return r;
	return s3->access_key && s3->secret_key ? 0 : -ESRCH;
}

static int set_keys(struct s3 *s3, const char *ak, const char *sk,
		    const char *token)
{
	s3->access_key = strdup(ak);
	s3->secret_key = strdup(sk);
	if (token && *token)
		s3->session_token = strdup(token);
	if (!s3->access_key || !s3->secret_key ||
	    (token && *token && !s3->session_token))
		return -ENOMEM;
	return 0;
}

static int find_credentials(struct s3 *s3, const struct store_conf *conf)
{
	const struct logger *lg = &s3->st.log;
	const char *ak = conf->s3_access_key, *sk = conf->s3_secret_key;
	CLEANUP_FREE char *home_file = NULL;
	const char *file, *profile;
	int r;

	if ((ak && *ak) || (sk && *sk)) {
		if (!ak || !*ak || !sk || !*sk) {
			tlog(lg, LOG_ERROR,
			     "s3: %s given without %s: pass both "
			     "s3-access-key= and s3-secret-key=",
			     ak && *ak ? "s3-access-key" : "s3-secret-key",
			     ak && *ak ? "s3-secret-key" : "s3-access-key");
			return -EINVAL;
		}
		s3->cred_source = strdup("s3-access-key/s3-secret-key");
		return set_keys(s3, ak, sk, NULL);
	}

	ak = getenv("AWS_ACCESS_KEY_ID");
	sk = getenv("AWS_SECRET_ACCESS_KEY");
	if ((ak && *ak) || (sk && *sk)) {
		if (!ak || !*ak || !sk || !*sk) {
			tlog(lg, LOG_ERROR,
			     "s3: %s is set in the environment but %s is not: "
			     "set both, or neither",
			     ak && *ak ? "AWS_ACCESS_KEY_ID"
				       : "AWS_SECRET_ACCESS_KEY",
			     ak && *ak ? "AWS_SECRET_ACCESS_KEY"
				       : "AWS_ACCESS_KEY_ID");
			return -EINVAL;
		}
		s3->cred_source = strdup("AWS_ACCESS_KEY_ID/"
					 "AWS_SECRET_ACCESS_KEY");
		return set_keys(s3, ak, sk, getenv("AWS_SESSION_TOKEN"));
	}

	file = conf->s3_credentials_file;
	if (!file || !*file)
		file = getenv("AWS_SHARED_CREDENTIALS_FILE");
	if (!file || !*file) {
		const char *home = getenv("HOME");

		if (home && *home &&
		    asprintf(&home_file, "%s/.aws/credentials", home) < 0) {
			home_file = NULL;
			return -ENOMEM;
		}
		file = home_file;
	}
	profile = conf->s3_profile;
	if (!profile || !*profile)
		profile = getenv("AWS_PROFILE");
	if (!profile || !*profile)
		profile = "default";

	r = file ? read_credentials_file(s3, file, profile) : -ENOENT;
	if (r == 0) {
		if (asprintf(&s3->cred_source, "%s [%s]", file, profile) < 0)
			s3->cred_source = NULL;
		return 0;
	}
	if (r == -ESRCH) {
		tlog(lg, LOG_ERROR,
		     "s3: %s has no aws_access_key_id and "
		     "aws_secret_access_key in [%s]: add them, or choose "
		     "another profile with s3-profile=",
		     file, profile);
		return -EINVAL;
	}
	if (r == -ENOMEM)
		return r;
	if (r != -ENOENT ||
	    (conf->s3_credentials_file && *conf->s3_credentials_file)) {
		tlog(lg, LOG_ERROR, "s3: cannot read credentials file %s: %s",
		     file, strerror(-r));
		return -EINVAL;
	}
	tlog(lg, LOG_ERROR,
	     "s3: no credentials: pass s3-access-key= and s3-secret-key=, "
	     "or set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or write "
	     "them to %s (profile [%s]) or name a file with "
	     "s3-credentials-file=",
	     file ? file : "~/.aws/credentials", profile);
	return -EINVAL;
}

int s3_conf_parse(struct s3 *s3, const struct store_conf *conf, const char *url)
{
	int r;

	s3->timeout_ms = conf->s3_timeout_ms ? conf->s3_timeout_ms : 30000;
	s3->retry_ms = conf->s3_retry_ms ? conf->s3_retry_ms : 60000;
	s3->connections = conf->s3_connections ? conf->s3_connections : 16;
	if (s3->connections > 1024)
		s3->connections = 1024;
	s3->insecure = conf->s3_insecure != 0;
	s3->unsigned_payload = conf->s3_unsigned_payload != 0;
	s3->virtual_host = conf->s3_virtual_host != 0;
	s3->region =
		strdup(conf->s3_region && *conf->s3_region ? conf->s3_region
							   : "us-east-1");
	if (!s3->region)
		return -ENOMEM;
	if (!*s3->region || strlen(s3->region) > 64 ||
	    strspn(s3->region, "abcdefghijklmnopqrstuvwxyz"
			       "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_") !=
		    strlen(s3->region)) {
		tlog(&conf->log, LOG_ERROR,
		     "s3-region=%s: give a region name such as us-east-1",
		     s3->region);
		return -EINVAL;
	}
	if (asprintf(&s3->sigv4, "aws:amz:%s:s3", s3->region) < 0) {
		s3->sigv4 = NULL;
		return -ENOMEM;
	}
	if (conf->s3_ca_bundle && *conf->s3_ca_bundle) {
		if (access(conf->s3_ca_bundle, R_OK) < 0) {
			r = -errno;
			tlog(&conf->log, LOG_ERROR,
			     "s3-ca-bundle=%s: %s: give a readable PEM file",
			     conf->s3_ca_bundle, strerror(-r));
			return -EINVAL;
		}
		s3->ca_bundle = strdup(conf->s3_ca_bundle);
		if (!s3->ca_bundle)
			return -ENOMEM;
	}
	if ((r = parse_spec(s3, url)) < 0 ||
	    (r = parse_endpoint(s3, conf)) < 0 ||
	    (r = find_credentials(s3, conf)) < 0)
		return r;
	if (s3->insecure && strncasecmp(s3->endpoint, "https:", 6) == 0)
		tlog(&conf->log, LOG_WARN,
		     "s3-insecure=true: the certificate of %s is not checked, "
		     "so anyone on the path can read and change the data; "
		     "for tests only (give s3-ca-bundle=FILE instead)",
		     s3->endpoint);
	return s3->cred_source ? 0 : -ENOMEM;
}
