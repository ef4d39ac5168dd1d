"""Measures a one-file drop on the Glue engine (docs/cost.md): builds a lake from generated landing files but
one accelerometer file, runs the five jobs, drops that file, runs them again, and prints per job of the drop's
run what it did, the rows it read (its build record's rows_read) and the S3 GETs and bytes it fetched from the
moto server (its request record).

  .venv/bin/python bench/glue_drop_cost.py --customers 956 [--work DIR]

Needs `npm run build` and `npm run setup:glue`. Slow: local Spark on this machine."""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT / "tools" / "glue-local"), str(ROOT / "tests" / "python")]
TABLES = ("customer_trusted", "accelerometer_trusted", "customer_curated", "step_trainer_trusted", "machine_learning_curated")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--customers", type=int, default=956)
    parser.add_argument("--work", type=Path, default=None)
    args = parser.parse_args()
    work = args.work or Path(tempfile.mkdtemp(prefix="glue-drop-cost-"))
    data = work / "landing"
    if not data.exists():
        subprocess.run(["node", str(ROOT / "bin" / "stedi.js"), "generate", "--customers", str(args.customers), "--out", str(data)], check=True)
    files = sorted(p for p in data.glob("*/*.json"))
    drop = sorted(p for p in files if p.parent.name == "accelerometer")[-1]

    import os

    from glue_engine import JOB_ORDER, GlueEngine
    from glue_local.moto_lake import moto_server

    log = work / "requests.jsonl"
    with moto_server(record=log) as url:
        os.environ.update(AWS_ENDPOINT_URL=url, AWS_ACCESS_KEY_ID="testing", AWS_SECRET_ACCESS_KEY="testing", AWS_DEFAULT_REGION="us-east-1")
        engine = GlueEngine(url, log)
        try:
            lake = engine.create_lake(f"cost-{args.customers}")
            for path in files:
                if path != drop:
                    lake.put(f"{path.parent.name}/landing/{path.name}", path.read_bytes())
            lines = sum(1 for p in files for line in p.read_bytes().split(b"\n") if line.strip())
            drop_lines = sum(1 for line in drop.read_bytes().split(b"\n") if line.strip())
            print(json.dumps({"customers": args.customers, "landing_files": len(files), "landing_lines": lines, "drop": drop.name, "drop_bytes": drop.stat().st_size, "drop_lines": drop_lines}))
            for run_id in ("full", "drop"):
                if run_id == "drop":
                    lake.put(f"accelerometer/landing/{drop.name}", drop.read_bytes())
                for job in JOB_ORDER:
                    started = time.monotonic()
                    lake.run(job, run_id, "any")
                    seconds = time.monotonic() - started
                    _, _, first, end = engine.job_windows[-1]
                    gets = [r for r in engine.recorded()[first:end] if r["method"] == "GET" and r["path"].startswith(f"/{lake.bucket}/")]
                    table = TABLES[JOB_ORDER.index(job)]  # the same order
                    build = json.loads(lake.s3.get_object(Bucket=lake.bucket, Key=f"checks/table_builds/{table}.json")["Body"].read())
                    print(json.dumps({
                        "run": run_id, "job": job, "action": build.get("action"), "rows_read": build.get("rows_read"),
                        "rows_after": build["rows_after"], "rows_added": build.get("rows_added"),
                        "s3_gets": len(gets), "s3_get_bytes": sum(r.get("bytes", 0) for r in gets), "seconds": round(seconds, 1),
                    }), flush=True)
        finally:
            engine.stop()


if __name__ == "__main__":
    main()
