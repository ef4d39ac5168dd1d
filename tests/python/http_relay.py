"""An HTTP relay in front of the moto server for the Iceberg atomicity tests: it forwards every request as it is,
and hands each Glue UpdateTable request (the call with which Iceberg's GlueCatalog commits a snapshot: the new
metadata file is written, the Catalog entry not yet moved) to a hook first, which may hold it or drop it."""

from __future__ import annotations

import http.client
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Callable
from urllib.parse import urlparse

UPDATE_TABLE = "AWSGlue.UpdateTable"
HOP_BY_HOP = {"connection", "keep-alive", "transfer-encoding", "content-length"}


class Relay:
    """relay.url forwards to `target`; on_update_table(body) runs before an UpdateTable is forwarded and returns
    False to drop it (the connection closes unanswered, as when the caller's process dies at that moment)."""

    def __init__(self, target: str, on_update_table: Callable[[bytes], bool]) -> None:
        parsed = urlparse(target)
        relay = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: object) -> None:  # quiet
                pass

            def body(self) -> bytes:
                if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
                    data = b""
                    while True:
                        size = int(self.rfile.readline().split(b";")[0], 16)
                        if size == 0:
                            while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                                pass
                            return data
                        data += self.rfile.read(size)
                        self.rfile.readline()
                return self.rfile.read(int(self.headers.get("Content-Length") or 0))

            def relay(self) -> None:
                data = self.body()
                if self.headers.get("X-Amz-Target") == UPDATE_TABLE and not relay.on_update_table(data):
                    self.close_connection = True
                    return
                connection = http.client.HTTPConnection(parsed.hostname, parsed.port, timeout=120)
                try:
                    connection.putrequest(self.command, self.path, skip_host=True, skip_accept_encoding=True)
                    for key, value in self.headers.items():
                        if key.lower() not in HOP_BY_HOP:
                            connection.putheader(key, value)
                    connection.putheader("Content-Length", str(len(data)))
                    connection.endheaders(data)
                    answer = connection.getresponse()
                    payload = answer.read()
                finally:
                    connection.close()
                self.send_response_only(answer.status, answer.reason)
                for key, value in answer.getheaders():
                    if key.lower() not in HOP_BY_HOP:
                        self.send_header(key, value)
                # A HEAD answer has no body but the object's length (S3's HeadObject).
                length = answer.getheader("Content-Length", "0") if self.command == "HEAD" else str(len(payload))
                self.send_header("Content-Length", length)
                self.end_headers()
                if self.command != "HEAD":
                    self.wfile.write(payload)

            do_GET = do_PUT = do_POST = do_DELETE = do_HEAD = relay  # noqa: N815

        self.on_update_table = on_update_table
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> "Relay":
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()
