"""Readers never see a half-written table (issue 20): on the Glue engine a job replaces its Iceberg table in one
commit, the Glue UpdateTable that moves the Catalog entry to the new metadata file (Apache Iceberg, "AWS
Integrations", "Glue Catalog": "Iceberg uses Glue's optimistic locking ... a commit updates the table's
metadata_location"). The job runs as its own process (python -m glue_local.run_job, as a Glue job run is its
own Spark application) whose AWS calls go through a relay (http_relay.py) that holds or drops that commit call;
the reader is this process's Spark reading the table through the same Iceberg Glue catalog."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
from pathlib import Path

import pytest
from glue_engine import customer_lines
from glue_local.stack import job_argv
from http_relay import Relay

pytestmark = pytest.mark.spark

ROOT = Path(__file__).resolve().parents[2]
JOB = "customer_landing_to_trusted"
TABLE = "customer_trusted"
DATA = "customer/trusted/data/"
WAIT = 600  # seconds: a bound on waiting for an event, never a pause


@pytest.fixture()
def lake(glue_engine, request):
    """A lake whose customer_trusted holds 3 rows (run "first"), with 4 more customers landed since."""
    lake = glue_engine.create_lake(request.node.name.replace("_", "-")[:40].strip("-"))
    lake.put("customer/landing/a.json", customer_lines(0, 3))
    lake.run(JOB, "first", "any")
    lake.put("customer/landing/b.json", customer_lines(3, 4))
    return lake


def start_job(lake, run_id: str, endpoint: str, log: Path) -> subprocess.Popen:
    """The job as its own process (its own Spark), its AWS calls sent to `endpoint`; a process group of its own,
    so that killing it kills its JVM too."""
    argv = job_argv(lake.jobs[JOB], run_id, {"--consent_policy": "any"})
    env = {**os.environ, "AWS_ENDPOINT_URL": endpoint, "PYTHONPATH": str(ROOT / "tools" / "glue-local")}
    with log.open("wb") as out:
        return subprocess.Popen([sys.executable, "-m", "glue_local.run_job", *argv], env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)


def count(lake) -> int:
    return lake.table(TABLE).count()


def current_run_id(lake) -> str:
    spark = lake.engine.spark
    rows = spark.sql(
        f"SELECT s.summary['stedi.run-id'] AS run_id FROM glue_catalog.`{lake.database}`.`{TABLE}`.snapshots s "
        f"JOIN glue_catalog.`{lake.database}`.`{TABLE}`.history h ON s.snapshot_id = h.snapshot_id "
        "WHERE h.is_current_ancestor ORDER BY h.made_current_at DESC LIMIT 1"
    ).collect()
    return rows[0]["run_id"]


def data_files(lake) -> set[str]:
    return {k for k in lake.keys(DATA) if k.endswith(".parquet")}


def test_a_reader_during_a_jobs_write_sees_the_previous_snapshot_or_the_new_one_never_a_part(lake, tmp_path):
    before = data_files(lake)
    at_commit = threading.Event()
    release = threading.Event()

    def hold(_body: bytes) -> bool:
        at_commit.set()
        return release.wait(WAIT)

    seen: list[int] = []
    with Relay(lake.engine.url, hold) as relay:
        job = start_job(lake, "second", relay.url, tmp_path / "job.log")
        try:
            # The reader loops for as long as the job runs.
            def read_in_a_loop() -> None:
                while job.poll() is None:
                    seen.append(count(lake))

            reader = threading.Thread(target=read_in_a_loop)
            reader.start()
            assert at_commit.wait(WAIT), (tmp_path / "job.log").read_text()[-3000:]
            # The job has written its data files and its new metadata file; its commit is held.
            written = data_files(lake) - before
            assert written, "the job wrote no data file before its commit"
            held = count(lake)
            release.set()
            assert job.wait(WAIT) == 0, (tmp_path / "job.log").read_text()[-3000:]
            reader.join(WAIT)
        finally:
            release.set()
            if job.poll() is None:
                os.killpg(job.pid, signal.SIGKILL)
                job.wait()

    assert held == 3  # with the new files in the bucket, the table is still the previous snapshot
    assert set(seen) <= {3, 7}, seen
    assert count(lake) == 7
    assert current_run_id(lake) == "second"


def test_a_job_killed_before_its_commit_leaves_the_previous_snapshot_which_the_next_run_completes(lake, tmp_path):
    before = data_files(lake)
    job: subprocess.Popen | None = None
    killed = threading.Event()

    def kill(_body: bytes) -> bool:
        # The job dies the moment it asks the Catalog to move to its new snapshot: its data and metadata
        # files are written, the commit never arrives.
        os.killpg(job.pid, signal.SIGKILL)
        killed.set()
        return False

    with Relay(lake.engine.url, kill) as relay:
        job = start_job(lake, "killed", relay.url, tmp_path / "job.log")
        try:
            job.wait(WAIT)
        finally:
            if job.poll() is None:
                os.killpg(job.pid, signal.SIGKILL)
                job.wait()

    assert killed.is_set(), (tmp_path / "job.log").read_text()[-3000:]
    assert job.returncode == -signal.SIGKILL
    assert data_files(lake) - before, "the job was killed before it wrote its data files"
    assert count(lake) == 3
    assert current_run_id(lake) == "first"

    lake.run(JOB, "rerun", "any")
    assert count(lake) == 7
    assert current_run_id(lake) == "rerun"
