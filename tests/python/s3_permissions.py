"""The IAM permission each recorded S3 request needs, and whether a policy's Allow statements grant it.

Each S3 request the moto server recorded (glue_local.moto_server --record) is mapped to the action and resource
S3 authorizes it with (Amazon S3 User Guide, "Required permissions for Amazon S3 API operations":
https://docs.aws.amazon.com/AmazonS3/latest/userguide/using-with-s3-policy-actions.html): a HEAD or GET of an
object needs s3:GetObject; a PUT, a multipart upload's create, parts and complete need s3:PutObject; a copy
(CopyObject, UploadPartCopy) also needs s3:GetObject on its source; an abort needs s3:AbortMultipartUpload; a
DELETE and each key of a DeleteObjects need s3:DeleteObject; a listing or a HEAD of the bucket needs
s3:ListBucket, a listing of multipart uploads s3:ListBucketMultipartUploads.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from urllib.parse import parse_qs


@dataclass(frozen=True)
class Need:
    action: str
    resource: str
    request: str  # the request, for messages: "PUT /bucket/key?uploadId=..."


def needs_of(entry: dict) -> list[Need]:
    method, path, query = entry["method"], entry["path"], entry["query"]
    bucket, _, key = path.lstrip("/").partition("/")
    params = parse_qs(query, keep_blank_values=True)
    shown = f"{method} {path}{'?' + query if query else ''}"
    bucket_arn = f"arn:aws:s3:::{bucket}"
    object_arn = f"{bucket_arn}/{key}"

    def need(action: str, resource: str) -> Need:
        return Need(action, resource, shown)

    if not key:
        if method == "POST" and "delete" in params:
            return [need("s3:DeleteObject", f"{bucket_arn}/{k}") for k in entry.get("keys", [])]
        if method == "GET" and "uploads" in params:
            return [need("s3:ListBucketMultipartUploads", bucket_arn)]
        if method == "GET" and "location" in params:
            return [need("s3:GetBucketLocation", bucket_arn)]
        if method in ("GET", "HEAD"):
            return [need("s3:ListBucket", bucket_arn)]
        raise AssertionError(f"an S3 bucket request the mapping does not know: {shown}")
    copy = [need("s3:GetObject", "arn:aws:s3:::" + entry["copy_source"].lstrip("/").split("?")[0])] if entry.get("copy_source") else []
    if method in ("GET", "HEAD"):
        if "uploadId" in params:
            return [need("s3:ListMultipartUploadParts", object_arn)]
        return [need("s3:GetObject", object_arn)]
    if method in ("PUT", "POST"):  # PutObject, CopyObject, CreateMultipartUpload, UploadPart(Copy), Complete
        return [need("s3:PutObject", object_arn), *copy]
    if method == "DELETE":
        return [need("s3:AbortMultipartUpload" if "uploadId" in params else "s3:DeleteObject", object_arn)]
    raise AssertionError(f"an S3 object request the mapping does not know: {shown}")


def _pattern(resource: str) -> re.Pattern:
    """An IAM resource pattern: * any run of characters, ? any one character, everything else literal."""
    return re.compile("".join(".*" if c == "*" else "." if c == "?" else re.escape(c) for c in resource) + r"\Z", re.DOTALL)


def allowing_statements(need: Need, statements: list[dict]) -> list[str]:
    """The Sids of the Allow statements (without conditions) that grant the need."""
    sids = []
    for statement in statements:
        if statement.get("Effect") != "Allow" or statement.get("Condition"):
            continue
        actions = statement["Action"] if isinstance(statement["Action"], list) else [statement["Action"]]
        resources = statement["Resource"] if isinstance(statement["Resource"], list) else [statement["Resource"]]
        if any(_pattern(a).match(need.action) for a in actions) and any(_pattern(r).match(need.resource) for r in resources):
            sids.append(statement.get("Sid", "?"))
    return sids
