"""An in-memory S3 that records every request, under the fakes of glue/run_sql_job.py's unit tests
(test_run_sql_job.py and its neighbours): boto3's S3 client as the runner calls it, and the reads, writes and
purges of the fake SparkSession and GlueContext, each reduced to what the runner sees (a write's files at their
final keys, a read of every data file under a location). The requests S3A and the committers really send are
not modelled here: tests/python/test_glue_jobs_on_spark.py records them on the moto server, from real Spark.
"""

from __future__ import annotations

import hashlib
import io
import re
import uuid
from dataclasses import dataclass
from typing import Iterable


@dataclass(frozen=True)
class S3Call:
    """One S3 request: op is GET, PUT, DELETE or LIST."""

    op: str
    bucket: str
    key: str  # the object key; for LIST the prefix
    by: str  # which writer or reader made it
    found: bool = True  # GET: whether the key exists


class ClientError(Exception):
    """As botocore.exceptions.ClientError: the service's error code is in response["Error"]["Code"]."""

    def __init__(self, code: str, operation: str, message: str):
        super().__init__(f"An error occurred ({code}) when calling the {operation} operation: {message}")
        self.response = {"Error": {"Code": code, "Message": message}}
        self.operation_name = operation


class NotFound(Exception):
    pass


class NoSuchKey(NotFound):
    """What boto3 raises for a GET of a missing key: a ClientError whose code is NoSuchKey."""

    def __init__(self, uri: str):
        super().__init__(f"An error occurred (NoSuchKey) when calling the GetObject operation: {uri}")
        self.response = {"Error": {"Code": "NoSuchKey", "Message": "The specified key does not exist."}}


def split_uri(uri: str) -> tuple[str, str]:
    """s3://bucket/a/b/ -> (bucket, "a/b"): a Hadoop Path has no trailing slash."""
    assert uri.startswith(("s3://", "s3a://")), uri
    bucket, _, key = uri.split("://", 1)[1].partition("/")
    return bucket, key.strip("/")


def parent(key: str) -> str:
    return key.rsplit("/", 1)[0] if "/" in key else ""


class S3Store:
    """Buckets of objects; every request is recorded in `calls`, under the name of whoever is `acting`."""

    def __init__(self, objects: dict[str, dict[str, bytes | str]] | None = None):
        self.buckets: dict[str, dict[str, bytes]] = {}
        for bucket, keys in (objects or {}).items():
            self.buckets[bucket] = {k: v.encode("utf-8") if isinstance(v, str) else v for k, v in keys.items()}
        self.calls: list[S3Call] = []
        self.acting = "runner"

    def bucket(self, name: str) -> dict[str, bytes]:
        return self.buckets.setdefault(name, {})

    def _record(self, op: str, bucket: str, key: str, found: bool = True) -> None:
        self.calls.append(S3Call(op, bucket, key, self.acting, found))

    def get(self, bucket: str, key: str) -> bytes:
        found = key in self.bucket(bucket)
        self._record("GET", bucket, key, found=found)
        if not found:
            raise NoSuchKey(f"s3://{bucket}/{key}")
        return self.bucket(bucket)[key]

    def put(self, bucket: str, key: str, data: bytes) -> None:
        self._record("PUT", bucket, key)
        self.bucket(bucket)[key] = data

    def delete(self, bucket: str, key: str) -> None:
        self._record("DELETE", bucket, key)
        self.bucket(bucket).pop(key, None)

    def list(self, bucket: str, prefix: str) -> list[str]:
        self._record("LIST", bucket, prefix)
        return sorted(k for k in self.bucket(bucket) if k.startswith(prefix))

    # boto3's S3 client, as the runner calls it.
    def client(self) -> "Boto3S3":
        return Boto3S3(self)


class Boto3S3:
    """The part of boto3's S3 client the runner uses, on an S3Store."""

    def __init__(self, store: S3Store):
        self.store = store

    def get_object(self, Bucket, Key):  # noqa: N803 - boto3's names
        try:
            return {"Body": io.BytesIO(self.store.get(Bucket, Key))}
        except NotFound:
            raise ClientError("NoSuchKey", "GetObject", "The specified key does not exist.") from None

    def get_paginator(self, name):
        assert name == "list_objects_v2"
        return self

    def paginate(self, Bucket, Prefix):  # noqa: N803
        keys = self.store.list(Bucket, Prefix)
        objects = self.store.bucket(Bucket)
        # ListObjectsV2: each object's key, ETag (the MD5 of a single-part upload, quoted) and size.
        contents = [{"Key": k, "ETag": f'"{hashlib.md5(objects[k]).hexdigest()}"', "Size": len(objects[k])} for k in keys]
        half = len(contents) // 2  # two pages, as S3 returns for many objects
        return [{"Contents": contents[:half]}, {"Contents": contents[half:]}]

    def put_object(self, Bucket, Key, Body, ContentType=None):  # noqa: N803
        self.store.put(Bucket, Key, Body if isinstance(Body, bytes) else Body.encode("utf-8"))
        return {"ETag": f'"{hashlib.md5(self.store.bucket(Bucket)[Key]).hexdigest()}"'}

    def delete_objects(self, Bucket, Delete):  # noqa: N803
        """DeleteObjects: at most 1,000 keys, each deleted as by DeleteObject (s3:DeleteObject on each key)."""
        assert len(Delete["Objects"]) <= 1000
        for obj in Delete["Objects"]:
            self.store.delete(Bucket, obj["Key"])
        return {"Deleted": [{"Key": obj["Key"]} for obj in Delete["Objects"]]}


# --- The fake SparkSession's and GlueContext's reads and writes ---------------------------------------------


@dataclass
class OutputFile:
    path: str  # relative to <out>, e.g. reading_date=2022-06-18/part-00000-<uuid>.c000.snappy.parquet
    data: bytes


def part_file(index: int, suffix: str) -> str:
    return f"part-{index:05d}-{uuid.uuid4()}.c000{suffix}"


def spark_write(store: S3Store, uri: str, tasks: list[list[OutputFile]], by: str) -> None:
    """A committed write: each task's files at their final keys under <out>."""
    bucket, out = split_uri(uri)
    store.acting = by
    for files in tasks:
        for f in files:
            store.put(bucket, f"{out}/{f.path}", f.data)
    store.acting = "runner"


def purge_s3_path(store: S3Store, uri: str, retention_hours: float) -> None:
    """GlueContext.purge_s3_path: every object under the path (recursively) older than the retention period
    is deleted; with 0 hours, every one."""
    assert retention_hours == 0, "only a purge of everything is modelled"
    bucket, key = split_uri(uri)
    store.acting = "purge_s3_path"
    for object_key in store.list(bucket, key + "/"):
        store.delete(bucket, object_key)
    store.acting = "runner"


def read_directory(store: S3Store, uri: str, by: str) -> dict[str, bytes]:
    """A DataFrame or DynamicFrame read of a table location: a recursive listing, a GET of each data file (names
    starting with _ or . are not data, as Spark's file index skips them)."""
    bucket, key = split_uri(uri)
    store.acting = by
    out = {}
    for object_key in store.list(bucket, key + "/"):
        name = object_key.rsplit("/", 1)[-1]
        if not name.startswith(("_", ".")):
            out[object_key] = store.get(bucket, object_key)
    store.acting = "runner"
    return out


def hadoop_glob_regex(pattern: str) -> str:
    """Hadoop's glob syntax (GlobPattern): * ? [...] [^...] {a,b}, and a backslash escaping the next character."""
    out, i = [], 0
    while i < len(pattern):
        ch = pattern[i]
        if ch == "\\":
            out.append(re.escape(pattern[i + 1]))
            i += 1
        elif ch == "*":
            out.append("[^/]*")
        elif ch == "?":
            out.append("[^/]")
        elif ch == "[":
            end = pattern.index("]", i + 2)
            body = pattern[i + 1 : end]
            out.append("[" + ("^" + re.escape(body[1:]) if body.startswith("^") else re.escape(body)) + "]")
            i = end
        elif ch == "{":
            end = pattern.index("}", i)
            out.append("(?:" + "|".join(re.escape(alt) for alt in pattern[i + 1 : end].split(",")) + ")")
            i = end
        else:
            out.append(re.escape(ch))
        i += 1
    return "".join(out)


def has_glob_pattern(key: str) -> bool:
    """Whether Hadoop's Globber matches a path as a pattern: an unescaped * ? [ or {."""
    return re.search(r"(?<!\\)(?:\\\\)*[*?\[{]", key) is not None


def read_files(store: S3Store, uris: Iterable[str], by: str) -> dict[str, bytes]:
    """spark.read.text(paths): Spark expands each path with Hadoop's globStatus (DataSource.checkAndGlobPathIfNecessary).
    A path with a pattern (* ? [ ] { }) is a LIST of its directory, every key it matches read; a plain path,
    its backslash escapes removed, is read as it is. Then a GET of each file (a missing one: NotFound). Keyed by
    each file's URI."""
    store.acting = by
    out = {}
    for uri in uris:
        bucket, key = split_uri(uri)
        if has_glob_pattern(key):
            regex = re.compile(hadoop_glob_regex(key))
            matched = [k for k in store.list(bucket, parent(key) + "/") if regex.fullmatch(k)]
            if not matched:
                raise NotFound(uri)
        else:
            matched = [re.sub(r"\\(.)", r"\1", key)]
        for match in matched:
            out[f"s3://{bucket}/{match}"] = store.get(bucket, match)
    store.acting = "runner"
    return out
