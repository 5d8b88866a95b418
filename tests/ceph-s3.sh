#!/bin/bash
# ceph-s3.sh - a throwaway single-node Ceph RADOS Gateway (S3) on 127.0.0.1,
# for tests and for trying tierbd; Debian 12 packages only.  RGW checks
# SigV4 signatures and payload hashes as strictly as AWS does.
#
#   ceph-s3.sh install        apt-get install the packages (as root or via sudo)
#   ceph-s3.sh start          1 mon + 1 OSD (memstore: RAM) + radosgw; waits
#                             until a signed S3 request succeeds (~6 s)
#   ceph-s3.sh stop           stop the daemons it started (by their pid files)
#   ceph-s3.sh env            print "export S3_...=..." lines (eval them)
#   ceph-s3.sh mkbucket NAME  create a bucket (curl --aws-sigv4)
#   ceph-s3.sh rgw-stop [-9]  stop radosgw only (SIGTERM, or SIGKILL with -9)
#   ceph-s3.sh rgw-start      start radosgw again, wait until it answers
#   ceph-s3.sh status         show the daemons and their pids
#
# Environment (all optional):
#   CEPH_S3_DIR   state and logs        (default /tmp/ceph-s3; wiped on start)
#   S3_PORT       radosgw HTTP port     (default 7480, on 127.0.0.1)
#   MON_PORT      ceph-mon msgr2 port   (default 3300, on 127.0.0.1)
#   S3_ACCESS_KEY / S3_SECRET_KEY       (default testkey / testsecret)
#   OSD_STORE     memstore | bluestore  (default memstore; bluestore keeps a
#                                        sparse 10 GiB file in CEPH_S3_DIR)
#   START_TIMEOUT seconds               (default 120)
#   S3_TLS_PORT   also serve https here, with a certificate for 127.0.0.1
#                 and localhost signed by a CA made for this cluster
#                 (openssl; $CEPH_S3_DIR/tls/ca.pem)
# After "start", $CEPH_S3_DIR/s3.env holds S3_ENDPOINT, S3_ACCESS_KEY,
# S3_SECRET_KEY and S3_REGION (with S3_TLS_PORT also S3_TLS_ENDPOINT and
# S3_CA_BUNDLE); the other commands read the ports from it.
#
# Only daemons whose pid files are in $CEPH_S3_DIR/run are ever signalled,
# and only if the pid still belongs to the expected program.
set -euo pipefail
D=$(realpath -m "${CEPH_S3_DIR:-/tmp/ceph-s3}")
S3_PORT=${S3_PORT:-7480}
MON_PORT=${MON_PORT:-3300}
AK=${S3_ACCESS_KEY:-testkey}
SK=${S3_SECRET_KEY:-testsecret}
STORE=${OSD_STORE:-memstore}
TMO=${START_TIMEOUT:-120}
EMPTY_SHA256=e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855
export CEPH_CONF="$D/ceph.conf"

die() {
  echo "ceph-s3: $*" >&2
  for f in "$D"/log/*.log; do
    [ -f "$f" ] && { echo "---- $f" >&2; tail -n 20 "$f" >&2; }
  done
  exit 1
}

# wait_for SECONDS CMD... : retry CMD every 0.2 s until it succeeds or time is up
wait_for() {
  local end=$((SECONDS + $1)); shift
  until "$@" >/dev/null 2>&1; do
    [ $SECONDS -lt $end ] || return 1
    sleep 0.2
  done
}

# A CA and a server certificate it signed, for 127.0.0.1 and localhost;
# for tests only (the keys are in $D/tls).
make_tls() {
  local t="$D/tls"
  mkdir -p "$t"
  openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj "/CN=tierbd test CA" \
    -keyout "$t/ca.key" -out "$t/ca.pem" >"$t/openssl.out" 2>&1 ||
    die "openssl: cannot make the CA ($t/openssl.out)"
  openssl req -newkey rsa:2048 -nodes -subj "/CN=127.0.0.1" \
    -keyout "$t/server.key" -out "$t/server.csr" >>"$t/openssl.out" 2>&1 ||
    die "openssl: cannot make the server key ($t/openssl.out)"
  printf 'subjectAltName=IP:127.0.0.1,DNS:localhost\n' >"$t/san.ext"
  openssl x509 -req -in "$t/server.csr" -CA "$t/ca.pem" -CAkey "$t/ca.key" \
    -CAcreateserial -days 2 -extfile "$t/san.ext" -out "$t/server.pem" \
    >>"$t/openssl.out" 2>&1 ||
    die "openssl: cannot sign the server certificate ($t/openssl.out)"
}

# the settings of a started cluster: ports and keys from s3.env
load_env() {
  [ -f "$D/s3.env" ] || die "no cluster in $D (run: $0 start)"
  # shellcheck disable=SC1091
  . "$D/s3.env"
  S3_PORT=${S3_ENDPOINT##*:}
  AK=$S3_ACCESS_KEY
  SK=$S3_SECRET_KEY
}

# pid_of NAME PROGRAM: the pid in run/NAME.pid if it is a live PROGRAM
pid_of() {
  local f="$D/run/$1.pid" p
  [ -f "$f" ] || return 1
  p=$(cat "$f")
  [ -n "$p" ] && [ "$(cat "/proc/$p/comm" 2>/dev/null)" = "$2" ] || return 1
  echo "$p"
}

# alive PID: running, not a zombie waiting to be reaped
alive() {
  local st
  st=$(awk '{print $3}' "/proc/$1/stat" 2>/dev/null) || return 1
  [ -n "$st" ] && [ "$st" != Z ] && [ "$st" != X ]
}

# stop_daemon NAME PROGRAM [SIGNAL]
stop_daemon() {
  local p
  if p=$(pid_of "$1" "$2"); then
    kill "-${3:-TERM}" "$p" 2>/dev/null || true
    for _ in $(seq 1 100); do
      alive "$p" || break
      sleep 0.1
    done
    if alive "$p"; then
      kill -KILL "$p" 2>/dev/null || true
      sleep 0.2
    fi
  fi
  rm -f "$D/run/$1.pid"
}

s3_ready() {
  curl -sf -o /dev/null --max-time 5 --aws-sigv4 "aws:amz:us-east-1:s3" \
    --user "$AK:$SK" -H "x-amz-content-sha256: $EMPTY_SHA256" \
    "http://127.0.0.1:$S3_PORT/"
}

do_install() {
  local sudo=
  [ "$(id -u)" = 0 ] || sudo=sudo
  $sudo apt-get update -q
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -q \
    --no-install-recommends ceph-mon ceph-osd radosgw curl openssl
}

do_stop() {
  local f n
  [ -d "$D/run" ] || return 0
  stop_daemon client.rgw.a radosgw
  for f in "$D"/run/osd.*.pid; do
    [ -f "$f" ] || continue
    n=$(basename "$f" .pid)
    stop_daemon "$n" ceph-osd
  done
  stop_daemon mon.a ceph-mon
}

do_start() {
  local b
  for b in ceph-mon ceph-osd radosgw radosgw-admin ceph monmaptool curl \
    ${S3_TLS_PORT:+openssl}; do
    command -v "$b" >/dev/null || die "$b not found (run: $0 install)"
  done
  [ -d "$D/run" ] && do_stop
  local t0=$SECONDS
  rm -rf "$D"
  mkdir -p "$D"/{mon/ceph-a,osd/ceph-0,run,log,rgw}
  local fsid osdconf
  fsid=$(cat /proc/sys/kernel/random/uuid)
  if [ "$STORE" = bluestore ]; then
    osdconf="osd_objectstore = bluestore
bluestore_block_path = $D/osd/block
bluestore_block_create = true
bluestore_block_size = 10737418240
bluestore_block_db_create = false
bluestore_block_wal_create = false
osd_memory_target = 939524096
bluestore_cache_autotune = false
bluestore_cache_size = 134217728"
  else
    osdconf="osd_objectstore = memstore
memstore_device_bytes = 8589934592"
  fi
  local frontends="beast endpoint=127.0.0.1:$S3_PORT"
  if [ -n "${S3_TLS_PORT:-}" ]; then
    make_tls
    frontends="$frontends ssl_endpoint=127.0.0.1:$S3_TLS_PORT"
    frontends="$frontends ssl_certificate=$D/tls/server.pem"
    frontends="$frontends ssl_private_key=$D/tls/server.key"
  fi
  cat >"$CEPH_CONF" <<EOF
[global]
fsid = $fsid
mon_host = v2:127.0.0.1:$MON_PORT
public_addr = 127.0.0.1
cluster_addr = 127.0.0.1
ms_bind_ipv6 = false
ms_bind_msgr1 = false
# no cephx between the daemons (SigV4 in radosgw is unaffected); auth
# "none" needs crc mode, else radosgw insists on "secure" and fails (-13)
auth_cluster_required = none
auth_service_required = none
auth_client_required = none
ms_mon_client_mode = crc
ms_client_mode = crc
ms_mon_service_mode = crc
ms_service_mode = crc
ms_mon_cluster_mode = crc
ms_cluster_mode = crc
run_dir = $D/run
admin_socket = $D/run/\$name.asok
pid_file = $D/run/\$name.pid
log_file = $D/log/\$name.log
osd_pool_default_size = 1
osd_pool_default_min_size = 1
osd_pool_default_pg_num = 8
osd_pool_default_pgp_num = 8
osd_pool_default_pg_autoscale_mode = off
osd_crush_chooseleaf_type = 0
mon_allow_pool_size_one = true
mon_allow_pool_delete = true
mon_warn_on_pool_no_redundancy = false
mon_max_pg_per_osd = 1000
mon_data_avail_warn = 1
[mon]
mon_data = $D/mon/\$cluster-\$id
mon_initial_members = a
[osd]
osd_data = $D/osd/\$cluster-\$id
osd_crush_update_on_start = false
$osdconf
[client.rgw.a]
rgw_frontends = $frontends
rgw_data = $D/rgw
rgw_dns_name = localhost
EOF
  monmaptool --create --fsid "$fsid" --addv a "[v2:127.0.0.1:$MON_PORT]" \
    "$D/monmap" >/dev/null
  ceph-mon --mkfs -i a --monmap "$D/monmap" >"$D/log/mkfs-mon.out" 2>&1 ||
    die "mon mkfs failed"
  ceph-mon -i a || die "ceph-mon failed to start"
  wait_for 30 ceph -s --connect-timeout 2 || die "mon did not come up"
  local uuid id
  uuid=$(cat /proc/sys/kernel/random/uuid)
  id=$(ceph osd new "$uuid")
  ceph-osd -i "$id" --mkfs --osd-uuid "$uuid" >"$D/log/mkfs-osd.out" 2>&1 ||
    die "osd mkfs failed"
  ceph osd crush add "osd.$id" 1.0 host=localhost root=default >/dev/null 2>&1
  ceph-osd -i "$id" >"$D/log/osd-start.out" 2>&1 || die "ceph-osd failed to start"
  wait_for 60 sh -c 'ceph osd stat | grep -q "1 up"' || die "osd did not come up"
  # create the radosgw pools in parallel: radosgw makes them one by one (~8 s)
  local pool
  for pool in .rgw.root default.rgw.control default.rgw.meta default.rgw.log \
    default.rgw.buckets.index default.rgw.buckets.data \
    default.rgw.buckets.non-ec; do
    (ceph osd pool create "$pool" 8 8 >/dev/null 2>&1 &&
      ceph osd pool application enable "$pool" rgw >/dev/null 2>&1) &
  done
  wait
  radosgw -n client.rgw.a || die "radosgw failed to start"
  wait_for "$TMO" curl -s -o /dev/null "http://127.0.0.1:$S3_PORT/" ||
    die "radosgw does not answer"
  radosgw-admin user create --uid=ci --display-name=ci \
    --access-key="$AK" --secret="$SK" >"$D/log/user.out" 2>&1 ||
    die "user create failed"
  wait_for 30 s3_ready || die "signed request fails"
  cat >"$D/s3.env" <<EOF
S3_ENDPOINT=http://127.0.0.1:$S3_PORT
S3_ACCESS_KEY=$AK
S3_SECRET_KEY=$SK
S3_REGION=us-east-1
EOF
  if [ -n "${S3_TLS_PORT:-}" ]; then
    printf 'S3_TLS_ENDPOINT=https://127.0.0.1:%s\nS3_CA_BUNDLE=%s\n' \
      "$S3_TLS_PORT" "$D/tls/ca.pem" >>"$D/s3.env"
    wait_for 30 curl -s --cacert "$D/tls/ca.pem" -o /dev/null \
      "https://127.0.0.1:$S3_TLS_PORT/" || die "radosgw does not answer https"
  fi
  echo "ceph-s3: radosgw ready at http://127.0.0.1:$S3_PORT after" \
    "$((SECONDS - t0)) s (pids mon=$(cat "$D/run/mon.a.pid")" \
    "osd=$(cat "$D/run/osd.$id.pid") rgw=$(cat "$D/run/client.rgw.a.pid"))"
}

do_env() {
  load_env
  sed 's/^/export /' "$D/s3.env"
}

do_mkbucket() {
  local name=${1:-} code
  [ -n "$name" ] || die "usage: $0 mkbucket NAME"
  load_env
  code=$(curl -s -o "$D/log/mkbucket.out" -w '%{http_code}' --max-time 30 \
    --aws-sigv4 "aws:amz:$S3_REGION:s3" --user "$AK:$SK" \
    -H "x-amz-content-sha256: $EMPTY_SHA256" -X PUT \
    "$S3_ENDPOINT/$name") || die "cannot reach $S3_ENDPOINT"
  case $code in
  200) echo "ceph-s3: bucket $name created" ;;
  409) grep -q BucketAlreadyOwnedByYou "$D/log/mkbucket.out" ||
         die "bucket $name: $(cat "$D/log/mkbucket.out")"
       echo "ceph-s3: bucket $name exists" ;;
  *) die "bucket $name: HTTP $code: $(cat "$D/log/mkbucket.out")" ;;
  esac
}

do_rgw_stop() {
  local sig=TERM p
  [ "${1:-}" = -9 ] && sig=KILL
  p=$(pid_of client.rgw.a radosgw) || die "radosgw is not running"
  stop_daemon client.rgw.a radosgw "$sig"
  echo "ceph-s3: radosgw $p stopped (SIG$sig)"
}

do_rgw_start() {
  load_env
  if pid_of client.rgw.a radosgw >/dev/null; then
    die "radosgw is already running"
  fi
  radosgw -n client.rgw.a || die "radosgw failed to start"
  wait_for "$TMO" s3_ready || die "radosgw does not answer"
  echo "ceph-s3: radosgw $(cat "$D/run/client.rgw.a.pid") ready"
}

do_status() {
  local f n prog p
  for f in "$D"/run/*.pid; do
    [ -f "$f" ] || continue
    n=$(basename "$f" .pid)
    case $n in
    mon.*) prog=ceph-mon ;;
    osd.*) prog=ceph-osd ;;
    *) prog=radosgw ;;
    esac
    if p=$(pid_of "$n" "$prog"); then
      echo "$n: $prog running, pid $p"
    else
      echo "$n: not running"
    fi
  done
}

case "${1:-}" in
install) do_install ;;
start) do_start ;;
stop) do_stop ;;
env) do_env ;;
mkbucket) do_mkbucket "${2:-}" ;;
rgw-stop) do_rgw_stop "${2:-}" ;;
rgw-start) do_rgw_start ;;
status) do_status ;;
*)
  echo "usage: $0 install|start|stop|env|mkbucket NAME|rgw-stop [-9]|rgw-start|status" >&2
  exit 2
  ;;
esac
