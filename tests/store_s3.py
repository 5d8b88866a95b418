"""store_s3 - the test harness's access to objects in an S3 bucket.

tests/tierbd_test.py uses it when TIERBD_TEST_STORE=s3: each Device then
keeps its chunks under its own prefix in a bucket, and the tests read,
damage, truncate and delete those objects through here instead of as
files.  Every request is a `curl --aws-sigv4` subprocess (curl is already
needed by tests/ceph-s3.sh; no Python S3 library), with the payload's
SHA-256 in x-amz-content-sha256, which RGW checks like AWS does.

Environment (what `tests/ceph-s3.sh env` prints, plus the bucket):
  S3_ENDPOINT             http://127.0.0.1:PORT
  S3_ACCESS_KEY, S3_SECRET_KEY
  S3_REGION               default us-east-1
  TIERBD_TEST_S3_BUCKET   an existing bucket (default tierbd-test)

Objects are left in the bucket after a test (tests/test-s3-suite.sh
throws its RGW away at the end); each device has a fresh prefix, so runs
never see each other's objects.

Also a small command line, for shell tests and for looking around:
  store_s3.py ls PREFIX | get KEY | put KEY FILE | rm KEY
"""

import hashlib
import os
import subprocess
import sys
import tempfile
import time
import urllib.parse
import xml.etree.ElementTree as ET

EMPTY_SHA256 = hashlib.sha256(b"").hexdigest()
NS = "{http://s3.amazonaws.com/doc/2006-03-01/}"


class S3Error(Exception):
    """A request failed: the message has the method, key, HTTP status and
    the server's reply."""

    def __init__(self, msg, status=None):
        super().__init__(msg)
        self.status = status


def _quote(s, safe="/"):
    # SigV4's encoding: everything but A-Za-z0-9-_.~ (and / in paths).
    return urllib.parse.quote(s, safe=safe)


class Client:
    """Plain S3 calls on one bucket, signed by curl."""

    def __init__(self, endpoint, bucket, access_key, secret_key,
                 region="us-east-1", timeout=60):
        self.endpoint = endpoint.rstrip("/")
        self.bucket = bucket
        self.access_key = access_key
        self.secret_key = secret_key
        self.region = region or "us-east-1"
        self.timeout = timeout

    @classmethod
    def from_env(cls):
        env = os.environ
        missing = [v for v in ("S3_ENDPOINT", "S3_ACCESS_KEY", "S3_SECRET_KEY")
                   if not env.get(v)]
        if missing:
            raise S3Error("TIERBD_TEST_STORE=s3 needs %s in the environment "
                          "(eval \"$(tests/ceph-s3.sh env)\")" %
                          ", ".join(missing))
        return cls(env["S3_ENDPOINT"],
                   env.get("TIERBD_TEST_S3_BUCKET") or "tierbd-test",
                   env["S3_ACCESS_KEY"], env["S3_SECRET_KEY"],
                   env.get("S3_REGION") or "us-east-1")

    def _request(self, method, key=None, query=None, body=None,
                 ok=(200, 204)):
        """-> (status, reply bytes).  Sent again (for up to 20 s) when
        curl cannot connect or the server answers 5xx, as after a
        restart of radosgw; any status not in `ok` raises S3Error."""
        path = "/" + _quote(self.bucket, safe="")
        if key is not None:
            path += "/" + _quote(key)
        url = self.endpoint + path
        if query:
            # SigV4 wants the query sorted and encoded; curl signs it as
            # written.
            url += "?" + "&".join("%s=%s" % (_quote(k, ""), _quote(v, ""))
                                  for k, v in sorted(query.items()))
        sha = hashlib.sha256(body).hexdigest() if body is not None \
            else EMPTY_SHA256
        with tempfile.TemporaryDirectory(prefix="store-s3-") as tmp:
            out = os.path.join(tmp, "out")
            cmd = ["curl", "-sS", "-o", out, "-w", "%{http_code}",
                   "--max-time", str(self.timeout),
                   "--aws-sigv4", "aws:amz:%s:s3" % self.region,
                   "--user", "%s:%s" % (self.access_key, self.secret_key),
                   "-H", "x-amz-content-sha256: " + sha, "-X", method]
            if body is not None:
                inp = os.path.join(tmp, "in")
                with open(inp, "wb") as f:
                    f.write(body)
                cmd += ["-H", "Content-Type: application/octet-stream",
                        "--data-binary", "@" + inp]
            cmd.append(url)
            deadline = time.monotonic() + 20
            while True:
                p = subprocess.run(cmd, stdin=subprocess.DEVNULL,
                                   capture_output=True, text=True)
                status = int(p.stdout.strip() or 0) if p.returncode == 0 \
                    else 0
                if (status == 0 or status >= 500) and \
                        time.monotonic() < deadline:
                    time.sleep(0.5)
                    continue
                break
            reply = b""
            if os.path.exists(out):
                with open(out, "rb") as f:
                    reply = f.read()
        if status not in ok:
            raise S3Error("%s %s: %s" % (
                method, url, "HTTP %d: %s" % (status, reply[:500].decode(
                    errors="replace")) if status else
                "curl failed (%d): %s" % (p.returncode, p.stderr.strip())),
                status)
        return status, reply

    def list(self, prefix=""):
        """[(key, size)] of every object whose key starts with prefix,
        in key order (ListObjectsV2, all pages)."""
        out, token = [], None
        while True:
            q = {"list-type": "2", "prefix": prefix}
            if token:
                q["continuation-token"] = token
            _, reply = self._request("GET", query=q)
            root = ET.fromstring(reply)
            for c in root.findall(NS + "Contents"):
                out.append((c.findtext(NS + "Key"),
                            int(c.findtext(NS + "Size"))))
            if root.findtext(NS + "IsTruncated") != "true":
                break
            token = root.findtext(NS + "NextContinuationToken")
            if not token:
                raise S3Error("ListObjectsV2 truncated without a "
                              "continuation token")
        return sorted(out)

    def get(self, key):
        return self._request("GET", key)[1]

    def put(self, key, data):
        self._request("PUT", key, body=bytes(data))

    def delete(self, key):
        self._request("DELETE", key)


class S3Store:
    """One device's objects: those under PREFIX/ in the bucket.  Keys
    given and returned are relative to the prefix (chunks/..., log/...),
    as the store itself names them (docs/s3.md)."""

    kind = "s3"

    def __init__(self, client, prefix):
        self.client = client
        self.prefix = prefix.strip("/")
        self.spec = "s3://%s/%s" % (client.bucket, self.prefix)

    def params(self):
        """Parameters nbdkit needs at every start (not only at creation:
        the endpoint is not stored in the cache directory)."""
        return ["s3-endpoint=" + self.client.endpoint,
                "s3-region=" + self.client.region]

    def env(self):
        """Credentials for nbdkit (the second source in docs/s3.md)."""
        return {"AWS_ACCESS_KEY_ID": self.client.access_key,
                "AWS_SECRET_ACCESS_KEY": self.client.secret_key}

    def list(self):
        n = len(self.prefix) + 1
        return [(k[n:], size) for k, size in
                self.client.list(self.prefix + "/")]

    def get(self, key):
        return self.client.get(self.prefix + "/" + key)

    def put(self, key, data):
        self.client.put(self.prefix + "/" + key, data)

    def delete(self, key):
        self.client.delete(self.prefix + "/" + key)


def env_credentials():
    """AWS_* for nbdkit from S3_ACCESS_KEY / S3_SECRET_KEY (empty if
    unset)."""
    e = os.environ
    if not e.get("S3_ACCESS_KEY"):
        return {}
    return {"AWS_ACCESS_KEY_ID": e["S3_ACCESS_KEY"],
            "AWS_SECRET_ACCESS_KEY": e.get("S3_SECRET_KEY", "")}


def main(argv):
    c = Client.from_env()
    if len(argv) >= 1 and argv[0] == "ls":
        for k, size in c.list(argv[1] if len(argv) > 1 else ""):
            print("%10d %s" % (size, k))
    elif len(argv) == 2 and argv[0] == "get":
        sys.stdout.buffer.write(c.get(argv[1]))
    elif len(argv) == 3 and argv[0] == "put":
        with open(argv[2], "rb") as f:
            c.put(argv[1], f.read())
    elif len(argv) == 2 and argv[0] == "rm":
        c.delete(argv[1])
    else:
        print("usage: store_s3.py ls [PREFIX] | get KEY | put KEY FILE | "
              "rm KEY", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
