"""A drop costs what it brings on the Glue engine (issue 20, item 3): after one new landing file, the row-wise
jobs read only that file's rows (or, downstream, the rows their input's append added, by Iceberg's incremental
read) and append them in one Iceberg commit; the others skip, or rebuild to the same rows without a commit.
The tables then equal a fresh lake's, built once from the same files, row for row."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from glue_engine import JOB_ORDER

ROOT = Path(__file__).resolve().parents[2]
SEMANTICS = ROOT / "tests" / "fixtures" / "semantics"
T = 1655564403000  # 2022-06-18T15:00:03Z: after every consent of the fixture
TABLES = ("customer_trusted", "accelerometer_trusted", "customer_curated", "step_trainer_trusted", "machine_learning_curated")
NEW_ACCELEROMETER = "\n".join(
    json.dumps({"user": "Alice.Ames@test.com", "timestamp": ts, "x": 0.5, "y": 0.5, "z": 0.0}) for ts in (T, T + 1000)
) + "\n"
NEW_STEP_TRAINER = json.dumps({"sensorReadingTime": T, "serialNumber": "S-A", "distanceFromObject": 205}) + "\n"

pytestmark = pytest.mark.spark


def builds(lake) -> dict[str, dict]:
    return {t: json.loads(lake.s3.get_object(Bucket=lake.bucket, Key=f"checks/table_builds/{t}.json")["Body"].read()) for t in TABLES}


def last_snapshot(lake, table: str) -> tuple[str, str]:
    row = lake.engine.spark.sql(
        f"SELECT operation, summary['stedi.run-id'] FROM glue_catalog.`{lake.database}`.`{table}`.snapshots ORDER BY committed_at DESC LIMIT 1"
    ).collect()[0]
    return row[0], row[1]


def all_rows(lake, table: str) -> list[tuple]:
    return sorted(tuple(r) for r in lake.table(table).collect())


@pytest.fixture(scope="module")
def dropped(glue_engine):
    """A lake built from the fixture, then two one-file drops, each followed by a pipeline run."""
    lake = glue_engine.create_lake("appends")
    lake.drop_folder(SEMANTICS)
    lake.run_pipeline("r1", "any")
    lake.put("accelerometer/landing/accelerometer-2.json", NEW_ACCELEROMETER)
    lake.run_pipeline("r2", "any")
    after_accelerometer = builds(lake), {t: last_snapshot(lake, t) for t in TABLES}
    lake.put("step_trainer/landing/step_trainer-2.json", NEW_STEP_TRAINER)
    lake.run_pipeline("r3", "any")
    return lake, after_accelerometer, (builds(lake), {t: last_snapshot(lake, t) for t in TABLES})


def test_an_accelerometer_file_is_read_alone_and_appended_and_the_jobs_it_does_not_change_commit_nothing(dropped):
    _, (build, snapshots), _ = dropped
    assert {t: build[t]["action"] for t in TABLES} == {
        "customer_trusted": "skipped",
        "accelerometer_trusted": "appended",
        "customer_curated": "unchanged",  # rebuilt (not row-wise), to the same rows: no commit
        "step_trainer_trusted": "skipped",
        "machine_learning_curated": "appended",
    }
    assert build["accelerometer_trusted"]["rows_read"]["accelerometer_landing"] == 2
    assert build["accelerometer_trusted"]["rows_added"] == 2
    assert build["machine_learning_curated"]["rows_read"]["accelerometer_trusted"] == 2  # the rows appended upstream
    assert snapshots["accelerometer_trusted"] == ("append", "r2")
    assert snapshots["machine_learning_curated"] == ("append", "r2")
    assert snapshots["customer_curated"] == ("overwrite", "r1")


def test_a_step_trainer_file_is_read_alone_and_its_new_pair_appended_downstream(dropped):
    _, _, (build, snapshots) = dropped
    assert build["step_trainer_trusted"]["action"] == "appended"
    assert build["step_trainer_trusted"]["rows_read"]["step_trainer_landing"] == 1
    assert build["machine_learning_curated"]["action"] == "appended"
    assert build["machine_learning_curated"]["rows_read"]["step_trainer_trusted"] == 1
    assert build["machine_learning_curated"]["rows_added"] == 1  # Alice's step reading at T pairs with her reading at T
    assert snapshots["step_trainer_trusted"] == ("append", "r3")
    assert snapshots["machine_learning_curated"] == ("append", "r3")
    assert {t: build[t]["action"] for t in ("customer_trusted", "accelerometer_trusted", "customer_curated")} == dict.fromkeys(
        ("customer_trusted", "accelerometer_trusted", "customer_curated"), "skipped"
    )


def test_the_appended_tables_equal_a_fresh_full_build_row_for_row(glue_engine, dropped):
    lake, _, _ = dropped
    fresh = glue_engine.create_lake("appends-fresh")
    fresh.drop_folder(SEMANTICS)
    fresh.put("accelerometer/landing/accelerometer-2.json", NEW_ACCELEROMETER)
    fresh.put("step_trainer/landing/step_trainer-2.json", NEW_STEP_TRAINER)
    fresh.run_pipeline("f1", "any")
    assert {t: builds(fresh)[t]["action"] for t in TABLES} == dict.fromkeys(TABLES, "built")
    for table in TABLES:
        assert all_rows(lake, table) == all_rows(fresh, table), table
    assert len(all_rows(lake, "machine_learning_curated")) > 0


def test_each_append_job_fetches_only_the_new_files_data_from_s3(glue_engine, dropped):
    # The moto server records each GET with its bytes: the append of run r3 reads no object of the lake's
    # first landing files' validated batches (the step trainer job reads the new batch alone).
    lake, _, _ = dropped
    windows = [(first, end) for owner, job, first, end in glue_engine.job_windows if owner is lake and job == "step_trainer_landing_to_trusted"]
    first, end = windows[-1]
    requests = glue_engine.recorded()[first:end]
    validated_gets = [r["path"] for r in requests if r["method"] == "GET" and "/step_trainer/validated/batch-" in r["path"]]
    assert validated_gets and all("batch-r3-" in path for path in validated_gets), validated_gets
