#!/bin/bash
# test-store-s3.sh - the s3 store against a real, SigV4-checking server:
# a throwaway Ceph RGW on 127.0.0.1 (tests/ceph-s3.sh), started and
# stopped here.
#
#   test-store-s3.sh [PATH/TO/test-store]
#
# 1. the conformance suite (test-store) on s3://BUCKET/PREFIX;
# 2. every credential source, virtual-host addressing, and https (RGW
#    also serves TLS with a certificate from a CA made for the test):
#    with s3-ca-bundle, with s3-insecure, and refused without either;
# 3. open fails at once, with a message saying what to fix, for a wrong
#    secret, an unknown access key, an unknown bucket, no credentials,
#    and a server that is not running;
# 4. radosgw killed (SIGKILL, by its pid) while 8 threads put and get,
#    restarted a few seconds later: every call succeeds after retrying.
# Skips (77) only if radosgw is not installed.  Only 127.0.0.1 is used;
# only the daemons started here are stopped, by pid.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
test_store=${1:-${TIERBD_BUILD:-.}/tests/test-store}
ceph_s3="$here/ceph-s3.sh"

if ! command -v radosgw >/dev/null; then
  echo "SKIP: radosgw is not installed (install it with: $ceph_s3 install)"
  exit 77
fi
[ -x "$test_store" ] || { echo "FAIL: no test-store at $test_store"; exit 1; }

# a port nothing listens on (another test may run its own RGW)
free_port() {
  local p
  for _ in $(seq 1 100); do
    p=$((20000 + RANDOM % 20000))
    if ! (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null; then
      echo "$p"
      return 0
    fi
  done
  return 1
}

export CEPH_S3_DIR
CEPH_S3_DIR=$(mktemp -d "${TMPDIR:-/tmp}/tierbd-s3.XXXXXX")
S3_PORT=$(free_port)
MON_PORT=$(free_port)
S3_TLS_PORT=$(free_port)
export S3_PORT MON_PORT S3_TLS_PORT
bg_pid=

cleanup() {
  local rc=$?
  if [ -n "$bg_pid" ] && kill -0 "$bg_pid" 2>/dev/null; then
    kill "$bg_pid" 2>/dev/null || true
    wait "$bg_pid" 2>/dev/null || true
  fi
  "$ceph_s3" stop || true
  if [ $rc -ne 0 ] && [ $rc -ne 77 ]; then
    f="$CEPH_S3_DIR/log/client.rgw.a.log"
    [ -f "$f" ] && { echo "---- tail of $f"; tail -n 30 "$f"; }
  fi
  rm -rf "$CEPH_S3_DIR"
  exit $rc
}
trap cleanup EXIT

"$ceph_s3" start
eval "$("$ceph_s3" env)"
bucket=tierbd-test
"$ceph_s3" mkbucket "$bucket"

# run NAME test-store-args...: one step, timed
pass=0
run() {
  local name=$1 t0=$SECONDS
  shift
  echo "== $name"
  "$test_store" "$@"
  echo "== $name: ok ($((SECONDS - t0)) s)"
  pass=$((pass + 1))
}

keys=(--endpoint="$S3_ENDPOINT" --region="$S3_REGION"
      --access-key="$S3_ACCESS_KEY" --secret-key="$S3_SECRET_KEY")

# ---- 1. conformance --------------------------------------------------------
run conformance "${keys[@]}" "s3://$bucket/conform"

# ---- 2. credential sources and addressing ----------------------------------
AWS_ACCESS_KEY_ID=$S3_ACCESS_KEY AWS_SECRET_ACCESS_KEY=$S3_SECRET_KEY \
  run "credentials from the environment" --endpoint="$S3_ENDPOINT" \
  --mode=smoke "s3://$bucket/env"

creds="$CEPH_S3_DIR/credentials"
cat >"$creds" <<EOF
[default]
aws_access_key_id = nobody
aws_secret_access_key = wrong

# the one we use
[ceph]
aws_access_key_id = $S3_ACCESS_KEY
aws_secret_access_key = $S3_SECRET_KEY
EOF
run "credentials file and profile" --endpoint="$S3_ENDPOINT" --mode=smoke \
  --credentials-file="$creds" --profile=ceph "s3://$bucket/file"
AWS_SHARED_CREDENTIALS_FILE=$creds AWS_PROFILE=ceph \
  run "AWS_SHARED_CREDENTIALS_FILE and AWS_PROFILE" \
  --endpoint="$S3_ENDPOINT" --mode=smoke "s3://$bucket/file2"
mkdir -p "$CEPH_S3_DIR/home/.aws"
cp "$creds" "$CEPH_S3_DIR/home/.aws/credentials"
HOME=$CEPH_S3_DIR/home AWS_PROFILE=ceph \
  run "\$HOME/.aws/credentials" --endpoint="$S3_ENDPOINT" --mode=smoke \
  "s3://$bucket/home"

# curl resolves *.localhost to the loopback addresses itself
run "virtual-host addressing" --endpoint="http://localhost:$S3_PORT" \
  --virtual-host --region="$S3_REGION" --access-key="$S3_ACCESS_KEY" \
  --secret-key="$S3_SECRET_KEY" --mode=smoke "s3://$bucket/vhost"

run "https with s3-ca-bundle" --endpoint="$S3_TLS_ENDPOINT" \
  --ca-bundle="$S3_CA_BUNDLE" "${keys[@]:1}" --mode=smoke "s3://$bucket/tls"
run "https with s3-insecure" --endpoint="$S3_TLS_ENDPOINT" --insecure \
  "${keys[@]:1}" --mode=smoke "s3://$bucket/tls-insecure"
run "https, certificate from an unknown CA" --mode=open-fail \
  --max-open-ms=5000 --endpoint="$S3_TLS_ENDPOINT" "${keys[@]:1}" \
  --expect="TLS with $S3_TLS_ENDPOINT failed" \
  --expect="give the CA that signed its certificate with s3-ca-bundle=FILE" \
  "s3://$bucket/x"

# ---- 3. open fails with a clear message ------------------------------------
run "wrong secret" --mode=open-fail --max-open-ms=5000 \
  --endpoint="$S3_ENDPOINT" --access-key="$S3_ACCESS_KEY" \
  --secret-key=not-the-secret-0451 \
  --expect="access denied by $S3_ENDPOINT for bucket $bucket" \
  --expect="check s3-access-key/s3-secret-key" \
  --forbid="$S3_SECRET_KEY" "s3://$bucket/x"
run "unknown access key" --mode=open-fail --max-open-ms=5000 \
  --endpoint="$S3_ENDPOINT" --access-key=nosuchkey \
  --secret-key="$S3_SECRET_KEY" --expect="access denied" \
  --expect=InvalidAccessKeyId "s3://$bucket/x"
run "unknown bucket" --mode=open-fail --max-open-ms=5000 "${keys[@]}" \
  --expect="bucket no-such-bucket does not exist at $S3_ENDPOINT: create it" \
  "s3://no-such-bucket/x"
(
  unset AWS_ACCESS_KEY_ID AWS_SECRET_ACCESS_KEY AWS_SHARED_CREDENTIALS_FILE
  HOME=$CEPH_S3_DIR/nohome run "no credentials" --mode=open-fail \
    --endpoint="$S3_ENDPOINT" --expect="no credentials" "s3://$bucket/x"
)
pass=$((pass + 1))
run "profile without keys" --mode=open-fail --endpoint="$S3_ENDPOINT" \
  --credentials-file="$creds" --profile=absent \
  --expect="has no aws_access_key_id" "s3://$bucket/x"
dead=$(free_port)
run "server not running" --mode=open-fail --max-open-ms=5000 \
  --endpoint="http://127.0.0.1:$dead" --access-key=k --secret-key=some-secret \
  --expect="cannot connect to http://127.0.0.1:$dead" "s3://$bucket/x"
run "bad endpoint" --mode=open-fail --max-open-ms=100 \
  --endpoint="127.0.0.1:$S3_PORT" "${keys[@]:1}" \
  --expect="give the URL of the server" "s3://$bucket/x"

# ---- 4. radosgw dies and comes back ----------------------------------------
echo "== radosgw killed and restarted during I/O"
out="$CEPH_S3_DIR/outage.out"
"$test_store" --mode=outage --seconds=14 --threads=8 --timeout-ms=5000 \
  --retry-ms=60000 "${keys[@]}" "s3://$bucket/outage" >"$out" &
bg_pid=$!
sleep 3
"$ceph_s3" rgw-stop -9
sleep 4
"$ceph_s3" rgw-start
rc=0
wait "$bg_pid" || rc=$?
bg_pid=
cat "$out"
[ $rc -eq 0 ] || { echo "FAIL: calls failed across the restart"; exit 1; }
retries=$(sed -n 's/^retries=//p' "$out")
[ "${retries:-0}" -gt 0 ] || { echo "FAIL: no retries counted"; exit 1; }
echo "== radosgw killed and restarted during I/O: ok ($retries retries)"
pass=$((pass + 1))

echo "PASS: $pass s3 checks"
