"""The Glue engine in a test module: the harness in this process (one SparkSession), the moto server's clients,
lakes created from the stack's definitions, and the five jobs run in the state machine's order."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from glue_local.harness import Harness
from glue_local.moto_lake import TEST_SALT, clients, create_lake
from glue_local.spark import RUNNER
from glue_local.stack import job_argv

# The pipeline's order (statemachines/pipeline.asl.json, src/definition/pipeline.ts).
JOB_ORDER = (
    "customer_landing_to_trusted",
    "accelerometer_landing_to_trusted",
    "customer_trusted_to_curated",
    "step_trainer_landing_to_trusted",
    "machine_learning_curated",
)


class GlueEngine:
    def __init__(self, url: str, request_log: Path) -> None:
        self.url = url
        self.request_log = request_log
        self.aws = clients(url)
        self.harness = Harness()
        self.spark = self.harness.spark
        self.runner = self.harness.runner
        self.salt = TEST_SALT
        # (lake, job, first, end): the lines of the request record each job run's main() added.
        self.job_windows: list[tuple["Lake", str, int, int]] = []
        # The same for the Glue API requests (glue_local.moto_server --record-glue), beside the S3 record.
        self.glue_log = request_log.with_name("glue-requests.jsonl")
        self.glue_windows: list[tuple["Lake", str, int, int]] = []

    def stop(self) -> None:
        self.harness.stop()

    def create_lake(self, name: str) -> "Lake":
        """A lake of its own on the server: buckets and database named after `name`."""
        values = {
            "AWS::StackName": f"stedi-{name}",
            "GlueDatabase": f"stedi_{name.replace('-', '_')}",
            "DataBucket": f"stedi-{name}-data",
            "ServerlessDeploymentBucket": f"stedi-{name}-deployment",
            "PiiSaltParameterName": f"/stedi-{name}/pii-salt",
        }
        return Lake(self, create_lake(self.url, values, salt=self.salt))

    def requests_since(self, mark: int) -> list[dict]:
        """The S3 requests the server recorded after line `mark` of its record (see recorded())."""
        return self.recorded()[mark:]

    def recorded(self) -> list[dict]:
        return read_record(self.request_log)

    def glue_recorded(self) -> list[dict]:
        return read_record(self.glue_log)


def customer_lines(first: int, count: int) -> str:
    """Landing lines of customers first .. first+count-1, each consenting to research."""
    return "".join(
        json.dumps(
            {
                "customerName": f"Customer {i}",
                "email": f"customer.{i}@test.com",
                "phone": "8015551212",
                "birthDay": "1990-01-01",
                "serialNumber": f"S-{i}",
                "registrationDate": 1655564300000,
                "lastUpdateDate": 1655564400000,
                "shareWithResearchAsOfDate": 1655564401000,
            }
        )
        + "\n"
        for i in range(first, first + count)
    )


def read_record(log: Path) -> list[dict]:
    if not log.exists():
        return []
    return [json.loads(line) for line in log.read_text().splitlines() if line.strip()]


class Lake:
    def __init__(self, engine: GlueEngine, stack: dict) -> None:
        self.engine = engine
        self.stack = stack
        self.bucket = stack["bucket"]
        self.database = stack["database"]
        self.jobs = {job["job"]: job for job in stack["jobs"]}

    @property
    def s3(self) -> Any:
        return self.engine.aws["s3"]

    def put(self, key: str, body: str | bytes) -> None:
        self.s3.put_object(Bucket=self.bucket, Key=key, Body=body.encode("utf-8") if isinstance(body, str) else body)

    def delete(self, key: str) -> None:
        self.s3.delete_object(Bucket=self.bucket, Key=key)

    def drop_folder(self, folder: Path) -> None:
        """Each <dataset>/<file> of the folder into <dataset>/landing/<file>."""
        for path in sorted(folder.glob("*/*.json")):
            self.put(f"{path.parent.name}/landing/{path.name}", path.read_bytes())

    def run(self, job: str, run_id: str, consent_policy: str | None = None, arguments: dict[str, str] | None = None) -> None:
        """One Glue run of the job; `arguments` are the run's further arguments (as a state machine task gives them)."""
        overrides = {"--consent_policy": consent_policy} if consent_policy else {}
        overrides.update(arguments or {})
        argv = job_argv(self.jobs[job], run_id, overrides)
        harness = self.engine.harness
        harness.prepare(argv)  # the Catalog mirror is the stand-in's, not the job's: its requests are left out
        first, glue_first = len(self.engine.recorded()), len(self.engine.glue_recorded())
        try:
            harness.runner.main([str(RUNNER), *argv])
        finally:
            self.engine.job_windows.append((self, job, first, len(self.engine.recorded())))
            self.engine.glue_windows.append((self, job, glue_first, len(self.engine.glue_recorded())))

    def run_pipeline(self, run_id: str, consent_policy: str, jobs: tuple[str, ...] = JOB_ORDER) -> None:
        for job in jobs:
            self.run(job, run_id, consent_policy)

    def table(self, name: str) -> Any:
        """A derived table as the next job reads it: its current Iceberg snapshot, through the jobs' Glue catalog."""
        return self.engine.spark.table(f"{self.engine.runner.ICEBERG_CATALOG}.`{self.database}`.`{name}`")

    def rows(self, name: str, order_by: str, columns: str = "*") -> list[dict]:
        frame = self.table(name).selectExpr(*[c.strip() for c in columns.split(",")]) if columns != "*" else self.table(name)
        return [row.asDict() for row in frame.orderBy(*[c.strip() for c in order_by.split(",")]).collect()]

    def quarantine(self, dataset: str) -> list[dict]:
        """The quarantined lines of the dataset's validated copy, as its manifest names them."""
        runner = self.engine.runner
        manifest = runner.read_manifest(self.s3, self.bucket, dataset)
        batches = sorted({e["batch"] for e in (manifest or {"files": {}})["files"].values() if e["rejected"] > 0})
        if not batches:
            return []
        paths = [runner.batch_uri(self.bucket, runner.quarantine_prefix(dataset), b) for b in batches]
        frame = runner.read_quarantine(self.engine.spark, paths)
        return [row.asDict() for row in frame.orderBy("source_file", "line_number").collect()]

    def validated(self, dataset: str) -> list[dict]:
        """The valid records of the dataset's validated copy (source_file and the landing columns)."""
        runner = self.engine.runner
        manifest = runner.read_manifest(self.s3, self.bucket, dataset)
        table = runner.landing_table_from_catalog(self.engine.aws["glue"], self.database, f"{dataset}_landing")
        return [row.asDict() for row in runner.validated_records(self.engine.spark, self.bucket, table, manifest).collect()]

    def keys(self, prefix: str = "") -> list[str]:
        keys = []
        for page in self.s3.get_paginator("list_objects_v2").paginate(Bucket=self.bucket, Prefix=prefix):
            keys += [o["Key"] for o in page.get("Contents", [])]
        return keys
