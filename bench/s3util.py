#!/usr/bin/python3
# s3util.py - object chores for the S3 benchmarks (boto3; never timed).
#
#   EP=URL s3util.py keys  BUCKET PREFIX   list the keys, one a line
#   EP=URL s3util.py count BUCKET PREFIX   how many there are
#   EP=URL s3util.py rm    BUCKET PREFIX   delete them all
#   EP=URL s3util.py get   BUCKET PREFIX DIR N
#                                         the first N objects into DIR/0..N-1
#
# Credentials from AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY.  Run with
# /usr/bin/python3: Debian's boto3 is not seen by other pythons.
import os
import sys

import boto3

s3 = boto3.client("s3", endpoint_url=os.environ["EP"])
cmd, bucket, prefix = sys.argv[1:4]


def keys():
    for page in s3.get_paginator("list_objects_v2").paginate(
            Bucket=bucket, Prefix=prefix):
        for o in page.get("Contents", []):
            yield o["Key"]


def rm(batch):
    s3.delete_objects(Bucket=bucket, Delete={"Objects": batch, "Quiet": True})


if cmd == "keys":
    for k in keys():
        print(k)
elif cmd == "count":
    print(sum(1 for _ in keys()))
elif cmd == "rm":
    batch = []
    for k in list(keys()):
        batch.append({"Key": k})
        if len(batch) == 1000:
            rm(batch)
            batch = []
    if batch:
        rm(batch)
elif cmd == "get":
    out, n = sys.argv[4], int(sys.argv[5])
    got = 0
    for i, k in zip(range(n), keys()):
        s3.download_file(bucket, k, os.path.join(out, str(i)))
        got += 1
    if got < n:
        sys.exit("s3util.py: only %d objects under %s" % (got, prefix))
else:
    sys.exit("usage: s3util.py keys|count|rm BUCKET PREFIX, get BUCKET PREFIX DIR N")
