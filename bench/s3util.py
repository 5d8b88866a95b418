#!/usr/bin/python3
# s3util.py - object chores for the S3 benchmarks (boto3; never timed).
#
#   EP=URL s3util.py keys  BUCKET PREFIX   list the keys, one a line
#   EP=URL s3util.py count BUCKET PREFIX   how many there are
#   EP=URL s3util.py rm    BUCKET PREFIX   delete them all
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
else:
    sys.exit("usage: s3util.py keys|count|rm BUCKET PREFIX")
