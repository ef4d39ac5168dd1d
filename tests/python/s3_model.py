"""An S3 bucket that records every request, and the S3 requests of the writers and readers a Glue job uses.

The Glue runner's fakes (test_run_sql_job.py) go through this module, so every S3 request the real writers
would make is recorded per key, and `needed_permissions` turns the requests into the IAM actions they need.
What each request needs (Amazon S3 API reference, "Permissions" of each operation):

- HEAD and GET of an object: s3:GetObject on its key (a HEAD without it is 403, not 404: HeadObject); a
  HEAD or GET of a missing key answers 404 (GET: NoSuchKey) only with s3:ListBucket on the bucket, else 403
  (HeadObject, GetObject), and neither has an s3:prefix, so a ListBucket grant limited by s3:prefix does not
  count for them;
- PUT, and the create / upload part / complete steps of a multipart upload: s3:PutObject on the key;
- a copy: s3:GetObject on the source key and s3:PutObject on the destination (CopyObject);
- DELETE (alone or in a DeleteObjects batch): s3:DeleteObject on each key;
- aborting a multipart upload: s3:AbortMultipartUpload on the key;
- LIST (ListObjectsV2): s3:ListBucket on the bucket, the prefix being the s3:prefix condition key;
- the bucket's region (GetBucketLocation): s3:GetBucketLocation on the bucket.

What the writers do, each documented where it is modelled:

- `Emrfs`: Glue reads and writes s3:// paths through EMRFS, Hadoop's FileSystem over S3. S3 has no
  directories, so a directory is a prefix, or an empty "<dir>_$folder$" object that EMRFS writes when it
  creates one (AWS Knowledge Center, "emr-s3-empty-files"). As Hadoop's FileSystem contract says,
  getFileStatus tells a file from a directory (HEAD the key, HEAD its marker, LIST the prefix), mkdirs
  creates every missing parent and fails on a parent that is a file, rename of a file is copy + delete
  (an object store has no rename), delete of a directory deletes everything under it. A file system asks
  for a bucket's region once (GetBucketLocation, which AWS's managed AWSGlueServiceRole policy allows).
- Committers, run by Spark's writers and by Glue's S3 sink: Hadoop's FileOutputCommitter (algorithm 1 and 2:
  tasks write under <out>/_temporary/, commits rename into <out>, job commit deletes _temporary), and the
  EMRFS S3-optimized committer (Amazon EMR guide: task output goes to its final key as a multipart upload,
  completed at task commit, aborted when the task aborts; no rename). Which one a Glue 5 job uses for which
  format is not documented exactly, so the permission test runs the runner under each.
- `purge_s3_path`: GlueContext.purge_s3_path (AWS Glue guide, "GlueContext class") deletes every object under
  the path, recursively, older than retentionPeriod (0 here: all): a LIST of the prefix, then deletes.
"""

from __future__ import annotations

import hashlib
import io
import re
import uuid
from dataclasses import dataclass, field
from typing import Iterable

FOLDER_SUFFIX = "_$folder$"


@dataclass(frozen=True)
class S3Call:
    """One S3 request: op is HEAD, GET, PUT, COPY, DELETE, LIST, MPU_CREATE, MPU_PART, MPU_COMPLETE, MPU_ABORT
    or GET_BUCKET_LOCATION."""

    op: str
    bucket: str
    key: str  # the object key; for LIST the prefix; for COPY the destination
    by: str  # which writer or reader made it
    source: str | None = None  # COPY: the source key (same bucket)
    found: bool = True  # HEAD: whether the key exists


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
        self.uploads: dict[str, tuple[str, str, bytes]] = {}

    def bucket(self, name: str) -> dict[str, bytes]:
        return self.buckets.setdefault(name, {})

    def _record(self, op: str, bucket: str, key: str, source: str | None = None, found: bool = True) -> None:
        self.calls.append(S3Call(op, bucket, key, self.acting, source, found))

    def head(self, bucket: str, key: str) -> bool:
        found = key in self.bucket(bucket)
        self._record("HEAD", bucket, key, found=found)
        return found

    def bucket_location(self, bucket: str) -> str:
        self._record("GET_BUCKET_LOCATION", bucket, "")
        return "us-east-1"

    def get(self, bucket: str, key: str) -> bytes:
        found = key in self.bucket(bucket)
        self._record("GET", bucket, key, found=found)
        if not found:
            raise NoSuchKey(f"s3://{bucket}/{key}")
        return self.bucket(bucket)[key]

    def put(self, bucket: str, key: str, data: bytes) -> None:
        self._record("PUT", bucket, key)
        self.bucket(bucket)[key] = data

    def copy(self, bucket: str, source: str, key: str) -> None:
        self._record("COPY", bucket, key, source)
        self.bucket(bucket)[key] = self.bucket(bucket)[source]

    def delete(self, bucket: str, key: str) -> None:
        self._record("DELETE", bucket, key)
        self.bucket(bucket).pop(key, None)

    def list(self, bucket: str, prefix: str) -> list[str]:
        self._record("LIST", bucket, prefix)
        return sorted(k for k in self.bucket(bucket) if k.startswith(prefix))

    def multipart_upload(self, bucket: str, key: str, data: bytes) -> str:
        """CreateMultipartUpload and one UploadPart; the object appears only when completed."""
        self._record("MPU_CREATE", bucket, key)
        self._record("MPU_PART", bucket, key)
        upload_id = uuid.uuid4().hex
        self.uploads[upload_id] = (bucket, key, data)
        return upload_id

    def complete_upload(self, upload_id: str) -> None:
        bucket, key, data = self.uploads.pop(upload_id)
        self._record("MPU_COMPLETE", bucket, key)
        self.bucket(bucket)[key] = data

    def abort_upload(self, upload_id: str) -> None:
        bucket, key, _ = self.uploads.pop(upload_id)
        self._record("MPU_ABORT", bucket, key)

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

    def put_object(self, Bucket, Key, Body, ContentType=None):  # noqa: N803
        self.store.put(Bucket, Key, Body if isinstance(Body, bytes) else Body.encode("utf-8"))
        return {"ETag": '"0"'}

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


FILE, DIRECTORY = "file", "directory"


class Emrfs:
    """Hadoop's FileSystem over s3:// as EMRFS implements it on S3 (see the module docstring)."""

    def __init__(self, store: S3Store):
        self.store = store
        self.regions: dict[str, str] = {}

    def status(self, bucket: str, key: str) -> str:
        """getFileStatus: a file (HEAD finds the key), a directory (its marker, or objects under it), or NotFound."""
        if bucket not in self.regions:
            self.regions[bucket] = self.store.bucket_location(bucket)
        if key == "":
            return DIRECTORY
        if self.store.head(bucket, key):
            return FILE
        if self.store.head(bucket, key + FOLDER_SUFFIX):
            return DIRECTORY
        if self.store.list(bucket, key + "/"):
            return DIRECTORY
        raise NotFound(f"s3://{bucket}/{key}")

    def exists(self, bucket: str, key: str) -> bool:
        try:
            self.status(bucket, key)
            return True
        except NotFound:
            return False

    def mkdirs(self, bucket: str, key: str) -> None:
        """Creates the directory and its missing parents, a "<dir>_$folder$" marker each."""
        missing = []
        while key:
            try:
                if self.status(bucket, key) == FILE:
                    raise FileExistsError(f"s3://{bucket}/{key} is a file")
                break
            except NotFound:
                missing.append(key)
                key = parent(key)
        for directory in reversed(missing):
            self.store.put(bucket, directory + FOLDER_SUFFIX, b"")

    def create(self, bucket: str, key: str, data: bytes) -> None:
        """create(path, overwrite): refuses a directory; the parents are implicit in the key."""
        try:
            if self.status(bucket, key) == DIRECTORY:
                raise IsADirectoryError(f"s3://{bucket}/{key}")
        except NotFound:
            pass
        self.store.put(bucket, key, data)

    def read(self, bucket: str, key: str) -> bytes:
        self.status(bucket, key)
        return self.store.get(bucket, key)

    def files(self, bucket: str, key: str) -> list[str]:
        """Every object under a directory, markers excluded (a recursive listing)."""
        return [k for k in self.store.list(bucket, key + "/") if not k.endswith(FOLDER_SUFFIX)]

    def rename(self, bucket: str, source: str, destination: str) -> None:
        """rename: an object store has none, so each object is copied, then deleted."""
        kind = self.status(bucket, source)
        try:
            if self.status(bucket, destination) == DIRECTORY:
                destination = f"{destination}/{source.rsplit('/', 1)[-1]}"
        except NotFound:
            pass
        if not self.exists(bucket, parent(destination)):
            self.mkdirs(bucket, parent(destination))
        if kind == FILE:
            self.store.copy(bucket, source, destination)
            self.store.delete(bucket, source)
            return
        for key in self.store.list(bucket, source + "/"):
            self.store.copy(bucket, key, destination + key[len(source) :])
            self.store.delete(bucket, key)
        self.store.delete(bucket, source + FOLDER_SUFFIX)

    def delete(self, bucket: str, key: str) -> None:
        """delete(path, recursive=True); the parent stays a directory (its marker is written if it empties)."""
        try:
            kind = self.status(bucket, key)
        except NotFound:
            return
        if kind == FILE:
            self.store.delete(bucket, key)
        else:
            for child in self.store.list(bucket, key + "/"):
                self.store.delete(bucket, child)
            self.store.delete(bucket, key + FOLDER_SUFFIX)
        up = parent(key)
        if up and not self.store.list(bucket, up + "/"):
            self.store.put(bucket, up + FOLDER_SUFFIX, b"")


# --- Committers: how a job's output files reach <out> -----------------------------------------------------


@dataclass
class OutputFile:
    path: str  # relative to <out>, e.g. reading_date=2022-06-18/part-00000-<uuid>.c000.snappy.parquet
    data: bytes


@dataclass
class Committer:
    """Runs the commit protocol of one write job; `failed_attempts` task attempts fail first and are retried
    (Spark retries a failed task, spark.task.maxFailures), so the abort path is recorded too."""

    name: str
    failed_attempts: int = 1
    write_success_marker: bool = False  # mapreduce.fileoutputcommitter.marksuccessfuljobs (the runner: false)
    jobs: int = field(default=0)

    def write(self, fs: Emrfs, bucket: str, out: str, tasks: list[list[OutputFile]]) -> None:
        self.jobs += 1
        job_id = f"20260101000000_{self.jobs:04d}"
        temporary = f"{out}/_temporary/0"
        fs.mkdirs(bucket, temporary)  # setupJob
        for task, files in enumerate(tasks):
            for attempt in range(self.failed_attempts + 1):
                attempt_dir = f"{temporary}/_temporary/attempt_{job_id}_m_{task:06d}_{attempt}"
                if self.name == "emrfs-s3-optimized":
                    uploads = [fs.store.multipart_upload(bucket, f"{out}/{f.path}", f.data) for f in files]
                    if attempt < self.failed_attempts:  # abortTask: the pending uploads are aborted
                        for upload in uploads:
                            fs.store.abort_upload(upload)
                        continue
                    for upload in uploads:  # commitTask: the uploads are completed
                        fs.store.complete_upload(upload)
                    continue
                for f in files:
                    fs.create(bucket, f"{attempt_dir}/{f.path}", f.data)
                if attempt < self.failed_attempts:  # abortTask: the attempt's directory is deleted
                    fs.delete(bucket, attempt_dir)
                    continue
                if not fs.exists(bucket, attempt_dir):  # needsTaskCommit: a task that wrote nothing commits nothing
                    continue
                if self.name == "file-output-committer-v1":  # commitTask: the attempt becomes the task's output
                    fs.rename(bucket, attempt_dir, f"{temporary}/task_{job_id}_m_{task:06d}")
                else:  # v2: commitTask merges the attempt into <out>
                    self._merge(fs, bucket, attempt_dir, out)
                    fs.delete(bucket, attempt_dir)
        if self.name == "file-output-committer-v1":  # commitJob merges every task's output into <out>
            for key in fs.files(bucket, temporary):
                if "/task_" in key:
                    task_dir = key[: key.index("/", key.index("/task_") + 1)]
                    fs.rename(bucket, key, f"{out}/{key[len(task_dir) + 1 :]}")
        fs.delete(bucket, f"{out}/_temporary")  # cleanupJob
        if self.write_success_marker:
            fs.create(bucket, f"{out}/_SUCCESS", b"")

    @staticmethod
    def _merge(fs: Emrfs, bucket: str, source_dir: str, out: str) -> None:
        for key in fs.files(bucket, source_dir):
            fs.rename(bucket, key, f"{out}/{key[len(source_dir) + 1 :]}")


COMMITTERS = ("file-output-committer-v1", "file-output-committer-v2", "emrfs-s3-optimized")


def part_file(index: int, suffix: str) -> str:
    return f"part-{index:05d}-{uuid.uuid4()}.c000{suffix}"


def spark_write(store: S3Store, committer: Committer, uri: str, tasks: list[list[OutputFile]], by: str) -> None:
    """DataFrameWriter.save (InsertIntoHadoopFsRelationCommand): the save mode asks whether <out> exists, then
    the committer writes the tasks' files."""
    bucket, out = split_uri(uri)
    store.acting = by
    fs = Emrfs(store)
    fs.exists(bucket, out)
    committer.write(fs, bucket, out, tasks)
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
    """A DataFrame or DynamicFrame read of a table location: its status, a recursive listing, a GET of each data
    file (names starting with _ or . and markers are not data, as Spark's file index skips them)."""
    bucket, key = split_uri(uri)
    store.acting = by
    fs = Emrfs(store)
    out = {}
    if fs.exists(bucket, key):
        for object_key in fs.files(bucket, key):
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
    its backslash escapes removed, is its getFileStatus. Then a GET of each file. Keyed by each file's URI."""
    store.acting = by
    fs = Emrfs(store)
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
            out[f"s3://{bucket}/{match}"] = fs.read(bucket, match)
    store.acting = "runner"
    return out


# --- From requests to IAM -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Permission:
    action: str
    resource: str  # arn:aws:s3:::bucket/key, or arn:aws:s3:::bucket for s3:ListBucket
    prefix: str | None  # s3:ListBucket: the listed prefix (the s3:prefix condition key)
    by: str


def needed_permissions(calls: Iterable[S3Call]) -> set[Permission]:
    """The IAM actions each recorded request needs, on the key (or bucket and prefix) it names."""
    needed = set()
    for call in calls:
        arn = f"arn:aws:s3:::{call.bucket}/{call.key}"
        if call.op in ("HEAD", "GET"):
            needed.add(Permission("s3:GetObject", arn, None, call.by))
            if not call.found:  # a 404, not a 403, needs ListBucket (no s3:prefix)
                needed.add(Permission("s3:ListBucket", f"arn:aws:s3:::{call.bucket}", None, call.by))
        elif call.op in ("PUT", "MPU_CREATE", "MPU_PART", "MPU_COMPLETE"):
            needed.add(Permission("s3:PutObject", arn, None, call.by))
        elif call.op == "COPY":
            needed.add(Permission("s3:GetObject", f"arn:aws:s3:::{call.bucket}/{call.source}", None, call.by))
            needed.add(Permission("s3:PutObject", arn, None, call.by))
        elif call.op == "DELETE":
            needed.add(Permission("s3:DeleteObject", arn, None, call.by))
        elif call.op == "MPU_ABORT":
            needed.add(Permission("s3:AbortMultipartUpload", arn, None, call.by))
        elif call.op == "GET_BUCKET_LOCATION":
            needed.add(Permission("s3:GetBucketLocation", f"arn:aws:s3:::{call.bucket}", None, call.by))
        elif call.op == "LIST":
            needed.add(Permission("s3:ListBucket", f"arn:aws:s3:::{call.bucket}", call.key, call.by))
        else:
            raise AssertionError(f"unknown S3 request {call.op}")
    return needed
