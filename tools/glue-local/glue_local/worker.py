"""python -m glue_local.worker: runs Glue job requests, one JSON line each on stdin, in one shared SparkContext.

Protocol (tools/glue-local/README.md): first line out {"ready": true} (or {"ready": false, "error": ...} and
exit 1); then for each request {"id", "argv"} one line {"id", "ok": true} or {"id", "ok": false, "error":
{"name", "message"}}. A request {"id", "export": {"table", "dir", "partition_keys", "branch"?}} writes the current
snapshot of an Iceberg table ("database.table"), or its branch's head, as Parquet into a local folder (the Glue
engine's copy-out).
Everything else, the runner's log and Spark's, goes to stderr. Exits when stdin closes.
"""

from __future__ import annotations

import json
import os
import sys
from typing import IO, Any


def take_stdout() -> IO[str]:
    """The protocol's own copy of stdout; fd 1 and sys.stdout become stderr, so nothing else (the runner's
    logging.basicConfig(stream=sys.stdout), the JVM, Spark's Python workers) can write a protocol line."""
    protocol = os.fdopen(os.dup(1), "w", buffering=1, encoding="utf-8")
    sys.stdout.flush()
    os.dup2(2, 1)
    sys.stdout = sys.stderr
    return protocol


def reply(out: IO[str], message: dict[str, Any]) -> None:
    out.write(json.dumps(message) + "\n")
    out.flush()


def main() -> int:
    out = take_stdout()
    from glue_local.harness import Harness, error_of

    try:
        harness = Harness()
    except Exception as error:  # SetupError, or Spark failing to start
        reply(out, {"ready": False, "error": error_of(error)})
        return 1
    reply(out, {"ready": True})
    for line in sys.stdin:
        if not line.strip():
            continue
        request_id = None
        try:
            request = json.loads(line)
            request_id = request.get("id")
            export = request.get("export")
            argv = None if export is not None else request["argv"]
        except (ValueError, KeyError, AttributeError) as error:
            reply(out, {"id": request_id, "ok": False, "error": {"name": "BadRequest", "message": f"not a request {{id, argv}}: {error}"}})
            continue
        try:
            if export is not None:
                harness.export_table(export["table"], export["dir"], export.get("partition_keys", []), export.get("branch"))
            else:
                harness.run(argv)
        except BaseException as error:  # SystemExit from argparse, Py4JJavaError...: the run failed, not the worker
            if isinstance(error, KeyboardInterrupt):
                raise
            reply(out, {"id": request_id, "ok": False, "error": error_of(error)})
        else:
            reply(out, {"id": request_id, "ok": True})
    return 0


if __name__ == "__main__":
    sys.exit(main())
