"""The Glue runner's incremental builds (glue/run_sql_job.py "Incremental builds"): the decision rules of
docs/incremental-builds.md (skip, append, build whole), over the fakes of test_run_sql_job.py. On real Spark
and Iceberg: tests/python/test_glue_appends_on_spark.py."""

from __future__ import annotations

import json

import pytest

from test_run_sql_job import (
    ASSETS_BUCKET,
    BUCKET,
    DATABASE,
    FakeGlue,
    FakeGlueContext,
    FakeS3,
    FakeSpark,
    FakeSsm,
    good,
    job_arguments,
    runner,
    sql_objects,
)

ACCELEROMETER = "accelerometer_landing_to_trusted"
ACC_SQL = sql_objects()[f"glue-assets/{'0' * 64}/{ACCELEROMETER}.sql"]


def test_the_row_wise_inputs_are_read_from_the_jobs_header_as_src_pipeline_ts_reads_them():
    assert runner.row_wise_inputs(ACC_SQL) == ["accelerometer_landing"]
    ml = sql_objects()[f"glue-assets/{'0' * 64}/machine_learning_curated.sql"]
    assert runner.row_wise_inputs(ml) == ["step_trainer_trusted", "accelerometer_trusted"]
    curated = sql_objects()[f"glue-assets/{'0' * 64}/customer_trusted_to_curated.sql"]
    assert runner.row_wise_inputs(curated) == []


def test_a_landing_input_grew_only_when_every_recorded_file_is_there_with_its_etag_and_size():
    recorded = {"rules": "r1", "files": {"a.json": ["e1", 10]}}
    assert runner.landing_change(recorded, {"rules": "r1", "files": {"a.json": ["e1", 10]}}) == (runner.SAME, [])
    grew = {"rules": "r1", "files": {"a.json": ["e1", 10], "b.json": ["e2", 5]}}
    assert runner.landing_change(recorded, grew) == (runner.GREW, ["b.json"])
    replaced = {"rules": "r1", "files": {"a.json": ["e9", 10], "b.json": ["e2", 5]}}
    assert runner.landing_change(recorded, replaced)[0] == runner.CHANGED
    assert runner.landing_change(recorded, {"rules": "r1", "files": {"b.json": ["e2", 5]}})[0] == runner.CHANGED
    assert runner.landing_change(recorded, {"rules": "r2", "files": grew["files"]})[0] == runner.CHANGED


def test_a_derived_input_grew_only_through_appends_after_the_recorded_snapshot():
    # Iceberg's incremental read returns appended data only ("Spark Queries", "Incremental read").
    snapshots = {1: (None, "overwrite"), 2: (1, "append"), 3: (2, "append"), 4: (3, "overwrite"), 5: (1, "append")}
    assert runner.snapshot_change(1, 1, snapshots) == runner.SAME
    assert runner.snapshot_change(1, 3, snapshots) == runner.GREW
    assert runner.snapshot_change(1, 4, snapshots) == runner.CHANGED  # an overwrite on the way
    assert runner.snapshot_change(2, 5, snapshots) == runner.CHANGED  # not an ancestor (rolled back, or expired)
    assert runner.snapshot_change(None, 3, snapshots) == runner.CHANGED


def record(**changes):
    base = {"base": "b", "snapshot_id": 7, "built_from": {"x_landing": {}, "t": {}}}
    return {**base, **changes}


@pytest.mark.parametrize(
    "previous, changes, expected",
    [
        (None, {"x_landing": "same", "t": "same"}, ("build", None)),
        (record(), {"x_landing": "same", "t": "same"}, ("skip", None)),
        (record(), {"x_landing": "grew", "t": "same"}, ("append", "x_landing")),
        (record(), {"x_landing": "same", "t": "grew"}, ("build", None)),  # t is not row-wise
        (record(), {"x_landing": "grew", "t": "changed"}, ("build", None)),  # two inputs changed
        (record(), {"x_landing": "changed", "t": "same"}, ("build", None)),
        (record(base="other sql"), {"x_landing": "grew", "t": "same"}, ("build", None)),
        (record(snapshot_id=8), {"x_landing": "grew", "t": "same"}, ("build", None)),  # someone else wrote the table
        (record(built_from={"x_landing": {}}), {"x_landing": "grew", "t": "same"}, ("build", None)),
    ],
)
def test_skip_append_or_build_whole_as_the_local_engine_decides(previous, changes, expected):
    plan = runner.plan_build(previous, "b", changes, ["x_landing"], 7)
    assert (plan.action, plan.input) == expected


@pytest.mark.parametrize(
    "recorded_branch, run_branch, expected",
    [
        ("run_a", None, "build"),  # run a's build was never published: main does not hold it
        ("run_a", "run_b", "build"),  # nor does run b's branch, made from main
        ("run_a", "run_a", "skip"),  # run a again (a retry): its own branch holds it
        (None, "run_b", "skip"),  # a published build is main's, which run b's branch starts from
    ],
)
def test_a_build_on_a_run_branch_never_published_is_no_base_for_another_run(recorded_branch, run_branch, expected):
    plan = runner.plan_build(record(branch=recorded_branch), "b", {"x_landing": "same", "t": "same"}, ["x_landing"], 7, run_branch)
    assert plan.action == expected


class Lake:
    """One fake lake across runs: the S3 objects and the Iceberg snapshots persist from run to run."""

    def __init__(self):
        self.s3 = FakeS3({}, {ASSETS_BUCKET: sql_objects()})
        self.spark = FakeSpark(self.s3, ["user", "timestamp", "x", "y", "z", "reading_date"])

    def run(self, job, result_rows, run_id):
        self.spark.result.rows = [tuple(r) for r in result_rows]
        self.spark.calls.clear()
        summary = runner.run_job(job_arguments(job, run_id=run_id), self.spark, FakeGlueContext(self.spark), self.s3, FakeGlue(), FakeSsm())
        build = json.loads(self.s3.get_object(Bucket=BUCKET, Key=f"checks/table_builds/{summary['target']}.json")["Body"].read())
        return summary, build


def commits(lake):
    """The run's writes to its Iceberg table (the validated copy's Parquet writes left out)."""
    return [c[0] for c in lake.spark.calls if c[0] in ("overwrite", "append")]


def row(user, ts):
    return (user, ts, 0.0, 0.0, 1.0, "2022-06-18")


def prepared_lake():
    lake = Lake()
    lake.spark.commit("customer_trusted", "overwrite")  # customer_trusted as its job left it
    lake.s3.put_object(Bucket=BUCKET, Key="accelerometer/landing/a.json", Body=good("Ann.Lee@test.com", 1655564000001) + "\n")
    return lake


def test_a_new_landing_file_binds_the_row_wise_input_to_its_rows_alone_and_appends_in_one_commit():
    lake = prepared_lake()
    first, build = lake.run(ACCELEROMETER, [row("Ann.Lee@test.com", 1)], "run-1")
    assert (first["action"], build["action"], build["rows_after"]) == ("built", "built", 1)
    assert commits(lake) == ["overwrite"]

    lake.s3.put_object(Bucket=BUCKET, Key="accelerometer/landing/b.json", Body=good("Ann.Lee@test.com", 1655564000002) + "\n")
    second, build = lake.run(ACCELEROMETER, [row("Ann.Lee@test.com", 2)], "run-2")
    assert [c for c in lake.spark.calls if c[0] == "append"] == [("append", f"glue_catalog.`{DATABASE}`.`accelerometer_trusted`", {"snapshot-property.stedi.run-id": "run-2"})]
    # The view the SQL ran over held the new file's record alone.
    assert [r[0] for r in lake.spark.views["accelerometer_landing"].rows] == ["Ann.Lee@test.com"]
    assert len(lake.spark.views["accelerometer_landing"].rows) == 1
    assert second["appended"] == 1 and second["rows_read"]["accelerometer_landing"] == 1
    assert (build["action"], build["rows_before"], build["rows_after"], build["rows_added"]) == ("appended", 1, 2, 1)
    assert set(build["built_from"]["accelerometer_landing"]["landing"]["files"]) == {"accelerometer/landing/a.json", "accelerometer/landing/b.json"}
    assert lake.spark.snapshots["accelerometer_trusted"][-1][2] == "append"


def test_a_run_with_nothing_new_skips_the_query_and_the_commit():
    lake = prepared_lake()
    lake.run(ACCELEROMETER, [row("Ann.Lee@test.com", 1)], "run-1")
    snapshots = len(lake.spark.snapshots["accelerometer_trusted"])
    lake.spark.sql_run.clear()
    summary, build = lake.run(ACCELEROMETER, [row("Ann.Lee@test.com", 1)], "run-2")
    assert (summary["action"], build["rows_after"], build["run_id"]) == ("skipped", 1, "run-2")
    assert lake.spark.sql_run == [] and commits(lake) == []
    assert len(lake.spark.snapshots["accelerometer_trusted"]) == snapshots


def test_a_replaced_landing_file_rebuilds_the_table_whole():
    lake = prepared_lake()
    lake.run(ACCELEROMETER, [row("Ann.Lee@test.com", 1)], "run-1")
    lake.s3.put_object(Bucket=BUCKET, Key="accelerometer/landing/a.json", Body=good("Ann.Lee@test.com", 1655564000009) + "\n")
    summary, build = lake.run(ACCELEROMETER, [row("Ann.Lee@test.com", 9)], "run-2")
    assert (summary["action"], build["reason"]) == ("built", "accelerometer_landing changed")
    assert commits(lake) == ["overwrite"]


def test_a_changed_non_row_wise_input_rebuilds_whole_and_a_rebuild_to_the_same_rows_commits_nothing():
    lake = prepared_lake()
    lake.run(ACCELEROMETER, [row("Ann.Lee@test.com", 1)], "run-1")
    lake.spark.commit("customer_trusted", "overwrite")  # customer_trusted rebuilt
    summary, build = lake.run(ACCELEROMETER, [row("Ann.Lee@test.com", 1)], "run-2")
    assert (summary["action"], build["reason"]) == ("unchanged", "customer_trusted changed")
    assert commits(lake) == []  # the same rows: no new snapshot, so the jobs after it see no change
    summary, build = lake.run(ACCELEROMETER, [row("Ann.Lee@test.com", 1)], "run-3")
    assert summary["action"] == "skipped"


def test_another_salt_or_consent_policy_rebuilds_whole():
    lake = prepared_lake()
    lake.run(ACCELEROMETER, [row("Ann.Lee@test.com", 1)], "run-1")
    lake.s3.put_object(Bucket=BUCKET, Key="accelerometer/landing/b.json", Body=good("Ann.Lee@test.com", 1655564000002) + "\n")
    lake.spark.result.rows = [row("Ann.Lee@test.com", 1), row("Ann.Lee@test.com", 2)]
    summary = runner.run_job(
        job_arguments(ACCELEROMETER, run_id="run-2"), lake.spark, FakeGlueContext(lake.spark), lake.s3, FakeGlue(), FakeSsm("another-salt-0123456789")
    )
    assert summary["action"] == "built"
