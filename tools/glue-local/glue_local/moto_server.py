"""python -m glue_local.moto_server -p PORT [--record FILE]: the moto server (moto.server's own application) with
one correction of its S3 answers, optionally recording each S3 request it answers.

- The correction: moto 5.2.1 answers CompleteMultipartUpload with a <CompleteMultipartUploadResponse> document;
  S3 answers with <CompleteMultipartUploadResult> (Amazon S3 API Reference, CompleteMultipartUpload, "Response
  Syntax": https://docs.aws.amazon.com/AmazonS3/latest/API/API_CompleteMultipartUpload.html). The AWS SDK for
  Java v1 that S3A uses finds no result in moto's answer and fails with a NullPointerException, so every file S3A
  uploads in parts (64 MB and more by default) would fail. The root element is renamed; nothing else changes.
- --record FILE: each S3 request as one JSON line: method, path, query, the copy source of a copy, the keys of
  a multi-object delete, and the status. The S3 requests a job really sends, S3A's and the runner's, are read
  from this record and checked against the Glue role's policy (tests/python/test_glue_s3_policy.py).
- --record-glue FILE: each Glue API request as one JSON line: its action (the X-Amz-Target header,
  "AWSGlue.GetTable"), the names it acts on (CatalogId, DatabaseName, Name or TableName, TableInput.Name,
  DatabaseInput.Name) and the status; checked against the Glue role's Data Catalog statements
  (tests/python/test_glue_catalog_permissions.py).

Use it wherever S3A talks to moto (the tests, `stedi run --engine glue`) instead of `python -m moto.server`."""

from __future__ import annotations

import argparse
import io
import json
import re
import threading
from typing import Any, Callable
from urllib.parse import unquote
from xml.etree import ElementTree

SERVICE_OF_AUTHORIZATION = re.compile(r"Credential=[^/]+/\d{8}/[^/]+/([^/]+)/aws4_request")


def signed_service(environ: dict) -> str:
    match = SERVICE_OF_AUTHORIZATION.search(environ.get("HTTP_AUTHORIZATION", ""))
    return match.group(1) if match else ""


def deleted_keys(body: bytes) -> list[str]:
    """The keys of a DeleteObjects request body."""
    root = ElementTree.fromstring(body)
    return [el.text or "" for el in root.iter() if el.tag.rsplit("}", 1)[-1] == "Key"]


WRONG_ROOT = b"CompleteMultipartUploadResponse"
RIGHT_ROOT = b"CompleteMultipartUploadResult"


def is_complete_multipart_upload(environ: dict) -> bool:
    query = environ.get("QUERY_STRING", "")
    return environ["REQUEST_METHOD"] == "POST" and re.search(r"(^|&)uploadId=", query) is not None


def corrected_complete_multipart_upload(app: Callable, environ: dict, start_response: Callable) -> list[bytes]:
    captured: dict[str, Any] = {}

    def capture(status: str, headers: list, exc_info: Any = None) -> Callable:
        captured.update(status=status, headers=headers)
        return lambda data: None

    body = b"".join(app(environ, capture)).replace(WRONG_ROOT, RIGHT_ROOT)
    headers = [(k, str(len(body)) if k.lower() == "content-length" else v) for k, v in captured["headers"]]
    start_response(captured["status"], headers)
    return [body]


GLUE_NAME_FIELDS = ("CatalogId", "DatabaseName", "Name", "TableName")


def glue_request_names(body: bytes) -> dict[str, str]:
    """The names a Glue JSON request acts on (the fields its resource ARNs are made of)."""
    try:
        request = json.loads(body or b"{}")
    except ValueError:
        return {}
    names = {k: request[k] for k in GLUE_NAME_FIELDS if isinstance(request.get(k), str)}
    for nested in ("TableInput", "DatabaseInput"):
        if isinstance(request.get(nested), dict) and isinstance(request[nested].get("Name"), str):
            names[nested] = request[nested]["Name"]
    return names


class MotoWithCorrections:
    def __init__(self, app: Callable, record: str | None, record_glue: str | None = None) -> None:
        self.app = app
        self.file = open(record, "a", encoding="utf-8", buffering=1) if record else None
        self.glue_file = open(record_glue, "a", encoding="utf-8", buffering=1) if record_glue else None
        self.lock = threading.Lock()

    def record_glue(self, environ: dict, start_response: Callable) -> Any:
        length = int(environ.get("CONTENT_LENGTH") or 0)
        body = environ["wsgi.input"].read(length)
        environ["wsgi.input"] = io.BytesIO(body)
        entry: dict[str, Any] = {"target": environ.get("HTTP_X_AMZ_TARGET", ""), **glue_request_names(body)}

        def recording_start_response(status: str, headers: list, exc_info: Any = None) -> Any:
            entry["status"] = int(status.split()[0])
            with self.lock:
                self.glue_file.write(json.dumps(entry) + "\n")
            return start_response(status, headers, exc_info) if exc_info else start_response(status, headers)

        return self.serve(environ, recording_start_response)

    def serve(self, environ: dict, start_response: Callable) -> Any:
        if is_complete_multipart_upload(environ):
            return corrected_complete_multipart_upload(self.app, environ, start_response)
        return self.app(environ, start_response)

    def __call__(self, environ: dict, start_response: Callable) -> Any:
        if self.glue_file is not None and signed_service(environ) == "glue":
            return self.record_glue(environ, start_response)
        if self.file is None or signed_service(environ) != "s3":
            return self.serve(environ, start_response)
        query = environ.get("QUERY_STRING", "")
        entry: dict[str, Any] = {
            "method": environ["REQUEST_METHOD"],
            "path": unquote(environ.get("PATH_INFO", "")),
            "query": query,
        }
        if environ.get("HTTP_X_AMZ_COPY_SOURCE"):
            entry["copy_source"] = unquote(environ["HTTP_X_AMZ_COPY_SOURCE"])
        if entry["method"] == "POST" and re.search(r"(^|&)delete(=|&|$)", query):
            length = int(environ.get("CONTENT_LENGTH") or 0)
            body = environ["wsgi.input"].read(length)
            environ["wsgi.input"] = io.BytesIO(body)
            entry["keys"] = deleted_keys(body)

        def recording_start_response(status: str, headers: list, exc_info: Any = None) -> Any:
            entry["status"] = int(status.split()[0])
            if entry["method"] == "GET":  # the bytes a read fetched (docs/cost.md measures them)
                entry["bytes"] = int(next((v for k, v in headers if k.lower() == "content-length"), 0) or 0)
            with self.lock:
                self.file.write(json.dumps(entry) + "\n")
            return start_response(status, headers, exc_info) if exc_info else start_response(status, headers)

        return self.serve(environ, recording_start_response)


def main() -> None:
    from moto.moto_server.werkzeug_app import DomainDispatcherApplication, create_backend_app
    from werkzeug.serving import run_simple

    parser = argparse.ArgumentParser(prog="python -m glue_local.moto_server", description=__doc__.split("\n\n")[0])
    parser.add_argument("-H", "--host", default="127.0.0.1")
    parser.add_argument("-p", "--port", type=int, required=True)
    parser.add_argument("--record", help="a JSON-lines file the S3 requests are appended to")
    parser.add_argument("--record-glue", help="a JSON-lines file the Glue API requests are appended to")
    args = parser.parse_args()
    app = DomainDispatcherApplication(create_backend_app)
    run_simple(args.host, args.port, MotoWithCorrections(app, args.record, args.record_glue), threaded=True)


if __name__ == "__main__":
    main()
