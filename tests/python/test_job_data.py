"""The Glue runner's build log and data metrics, against the fakes of test_run_sql_job.py.

Each job replaces its table's record in checks/table_builds/ (what the data checks read through Athena)
and publishes rows in, rows out and quarantined lines to CloudWatch.
"""

from __future__ import annotations

import json
import logging
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))

import fake_s3  # noqa: E402
from test_run_sql_job import (  # noqa: E402
    ASSETS_BUCKET,
    BUCKET,
    JOBS,
    MIXED,
    ROOT,
    FakeGlue,
    FakeGlueContext,
    FakeS3,
    FakeSpark,
    FakeSsm,
    job_arguments,
    runner,
    sql_objects,
)

UNITS = {"Count", "Seconds", "Bytes", "Percent", "None"}  # a few of PutMetricData's units


class FakeCloudWatch:
    """boto3's CloudWatch client, put_metric_data only, with the limits its API reference gives: at most
    1000 MetricData items, 30 dimensions each, a Name and a Value in each dimension, a known Unit."""

    def __init__(self, fail=None):
        self.calls = []
        self.fail = fail

    def put_metric_data(self, Namespace, MetricData):  # noqa: N803 - boto3's names
        if self.fail:
            raise self.fail
        assert 1 <= len(MetricData) <= 1000
        for datum in MetricData:
            assert len(datum["Dimensions"]) <= 30
            assert all(set(d) == {"Name", "Value"} and d["Value"] for d in datum["Dimensions"])
            assert isinstance(datum["Value"], float) and datum["Unit"] in UNITS
        self.calls.append((Namespace, MetricData))


def run_on(s3, job, cloudwatch=None, rows=1, **overrides):
    partitions = JOBS[job]["target"][2]
    spark = FakeSpark(s3, ["a", "b", *partitions], [("x", i, *["2022-06-18"] * len(partitions)) for i in range(rows)])
    glue_context = FakeGlueContext(spark)
    return runner.run_job(
        job_arguments(job, **overrides),
        spark,
        glue_context,
        s3,
        FakeGlue(),
        FakeSsm(),
        cloudwatch=cloudwatch,
    )


def new_lake(objects=None):
    return FakeS3(objects or {}, {ASSETS_BUCKET: sql_objects()})


def build_record(s3, table):
    return json.loads(s3.objects[f"checks/table_builds/{table}.json"])


def test_each_build_records_the_rows_before_and_after_the_run_and_the_runs_consent_policy():
    s3 = new_lake()
    run_on(s3, "accelerometer_landing_to_trusted", rows=3, run_id="exec-1", consent_policy="since-consent")
    first = build_record(s3, "accelerometer_trusted")
    # What the checks read of the record; what the next run decides from (built_from and the rest) is
    # tested in test_incremental_builds.py.
    assert {k: first[k] for k in ("table_name", "run_id", "rows_before", "rows_after", "consent_policy", "empty_inputs", "diagnostics")} == {
        "table_name": "accelerometer_trusted",
        "run_id": "exec-1",
        "rows_before": None,
        "rows_after": 3,
        "consent_policy": "since-consent",
        # The inputs that held no rows (tables_not_emptied passes a table emptied by one): this fake lake's
        # landing prefix has no files, its SQL result is made up.
        "empty_inputs": "accelerometer_landing",
        # No --diagnostic_keys here: none counted (tests/python/test_glue_jobs_on_spark.py runs the real ones).
        "diagnostics": {},
    }
    # A first build: built whole, for want of a record, from both its inputs, and committed as a snapshot.
    assert (first["action"], first["reason"], first["rows_added"]) == ("built", "no build record with its inputs", None)
    assert sorted(first["built_from"]) == ["accelerometer_landing", "customer_trusted"]
    assert first["snapshot_id"] is not None
    assert first["built_at"].endswith("Z")
    run_on(s3, "accelerometer_landing_to_trusted", rows=0, run_id="exec-2", consent_policy="since-consent")
    assert build_record(s3, "accelerometer_trusted")["rows_before"] == 3
    assert build_record(s3, "accelerometer_trusted")["rows_after"] == 0

    # Every build records its run's policy, customer_curated's too (its SQL does not read it, its rows depend on
    # it); a run under another policy than its inputs' is refused (test_run_sql_job.py).
    run_on(s3, "customer_trusted_to_curated", rows=2, consent_policy="since-consent")
    assert build_record(s3, "customer_curated")["consent_policy"] == "since-consent"


def test_the_build_record_is_written_after_the_table_and_read_before_the_purge():
    s3 = new_lake()
    run_on(s3, "customer_trusted_to_curated")
    key = "checks/table_builds/customer_curated.json"
    ops = [(c.op, c.key) for c in s3.store.calls if c.key == key or (c.op == "DELETE" and "curated/" in c.key)]
    assert ops[0] == ("GET", key)  # the record of the version about to be replaced, before anything goes
    assert ops[-1] == ("PUT", key)
    missing = [c for c in s3.store.calls if c.op == "GET" and c.key == key]
    assert missing[0].found is False  # a 404, which S3 gives only to a caller that may list the bucket


def test_a_build_log_that_cannot_be_read_fails_the_job_before_its_table_is_touched():
    s3 = new_lake()

    def denied(Bucket, Key):  # noqa: N803
        if Key.startswith("checks/"):
            raise fake_s3.ClientError("AccessDenied", "GetObject", "Access Denied")
        return fake_s3.Boto3S3.get_object(s3, Bucket=Bucket, Key=Key)

    s3.get_object = denied
    with pytest.raises(fake_s3.ClientError, match="AccessDenied"):
        run_on(s3, "customer_trusted_to_curated")
    assert not [c for c in s3.store.calls if c.op in ("DELETE", "PUT")]


def test_a_catalog_input_counts_its_rows_from_its_build_record():
    s3 = new_lake()
    run_on(s3, "customer_trusted_to_curated", rows=4)
    summary = run_on(s3, "step_trainer_landing_to_trusted")
    assert summary["rows_in"]["customer_curated"] == 4


def test_the_run_publishes_rows_in_rows_out_and_quarantined_lines_per_job_and_table_or_dataset():
    s3 = new_lake({"accelerometer/landing/mixed.json": MIXED})
    run_on(s3, "customer_landing_to_trusted", rows=2)
    cloudwatch = FakeCloudWatch()
    summary = run_on(s3, "accelerometer_landing_to_trusted", cloudwatch=cloudwatch, rows=5)
    job = "stedi-lakehouse-test-accelerometer_landing_to_trusted"
    [(namespace, data)] = cloudwatch.calls
    assert namespace == "StediLakehouse"
    published = {(d["MetricName"], tuple((x["Name"], x["Value"]) for x in d["Dimensions"])): d["Value"] for d in data}
    assert published == {
        ("RowsIn", (("Job", job), ("Table", "accelerometer_landing"))): 2.0,
        ("RowsIn", (("Job", job), ("Table", "customer_trusted"))): 2.0,
        ("RowsOut", (("Job", job), ("Table", "accelerometer_trusted"))): 5.0,
        ("QuarantinedLines", (("Job", job), ("Dataset", "accelerometer"))): 7.0,
        ("NewQuarantinedLines", (("Job", job), ("Dataset", "accelerometer"))): 7.0,
    }
    assert summary["quarantined"] == {"accelerometer": 7}
    assert all(d["Unit"] == "Count" for d in data)


def test_a_job_that_writes_no_rows_publishes_rows_out_zero_for_the_empty_table_alarm():
    cloudwatch = FakeCloudWatch()
    run_on(new_lake(), "machine_learning_curated", cloudwatch=cloudwatch, rows=0)
    [(_, data)] = cloudwatch.calls
    out = [d for d in data if d["MetricName"] == "RowsOut"]
    assert [(d["Value"], d["Dimensions"][1]) for d in out] == [(0.0, {"Name": "Table", "Value": "machine_learning_curated"})]


def test_metrics_that_cannot_be_published_are_logged_and_the_job_still_succeeds(caplog):
    caplog.set_level(logging.INFO)
    s3 = new_lake()
    summary = run_on(s3, "customer_trusted_to_curated", cloudwatch=FakeCloudWatch(fail=RuntimeError("Throttling")))
    assert summary["rows_out"] == 1
    assert "metrics not published" in caplog.text and "Throttling" in caplog.text
    assert build_record(s3, "customer_curated")["rows_after"] == 1


def test_the_runner_agrees_with_the_layout_and_the_deploy_on_the_log_prefix_and_the_namespace():
    layout = (ROOT / "src" / "definition" / "layout.ts").read_text()
    assert f"TABLE_BUILDS_PREFIX = '{runner.TABLE_BUILDS_PREFIX}'" in layout
    deploy = (ROOT / "deploy" / "operate-resources.js").read_text()
    assert f"const METRICS_NAMESPACE = '{runner.METRICS_NAMESPACE}';" in deploy


def quarantine_metrics(cloudwatch):
    [(_, data)] = cloudwatch.calls
    return {d["MetricName"]: d["Value"] for d in data if "Quarantined" in d["MetricName"]}


def test_the_alarms_metric_counts_only_the_lines_rejected_in_the_files_this_run_checked_and_the_total_stays_its_own():
    # The issue this answers: an old bad line made QuarantinedLines > 0 on every later run, so the alarm said
    # nothing new. NewQuarantinedLines counts the rejected lines of the files the run checked (new or changed).
    s3 = new_lake({"accelerometer/landing/mixed.json": MIXED})
    run_on(s3, "customer_landing_to_trusted", rows=2)
    first = FakeCloudWatch()
    run_on(s3, "accelerometer_landing_to_trusted", cloudwatch=first, run_id="run-1")
    assert quarantine_metrics(first) == {"QuarantinedLines": 7.0, "NewQuarantinedLines": 7.0}

    # The next run, the bad file unchanged: nothing new to report, the total as before.
    again = FakeCloudWatch()
    summary = run_on(s3, "accelerometer_landing_to_trusted", cloudwatch=again, run_id="run-2")
    assert quarantine_metrics(again) == {"QuarantinedLines": 7.0, "NewQuarantinedLines": 0.0}
    assert summary["newly_quarantined"] == {"accelerometer": 0} and summary["quarantined"] == {"accelerometer": 7}

    # A new file with bad lines: only its lines are news; the total counts both files.
    s3.objects["accelerometer/landing/more.json"] = b'{"user": "x@t.com"}\nnot json\n'
    more = FakeCloudWatch()
    run_on(s3, "accelerometer_landing_to_trusted", cloudwatch=more, run_id="run-3")
    assert quarantine_metrics(more) == {"QuarantinedLines": 9.0, "NewQuarantinedLines": 2.0}

    # The bad file replaced by a clean one: it is checked again, with nothing rejected; the total drops.
    s3.objects["accelerometer/landing/mixed.json"] = b'{"user": "a@t.com", "timestamp": 1655564000000, "x": 1.0, "y": 0.0, "z": -1.0}\n'
    fixed = FakeCloudWatch()
    run_on(s3, "accelerometer_landing_to_trusted", cloudwatch=fixed, run_id="run-4")
    assert quarantine_metrics(fixed) == {"QuarantinedLines": 2.0, "NewQuarantinedLines": 0.0}


def test_each_diagnostic_count_is_published_as_a_metric_of_its_name():
    summary = {"target": "accelerometer_trusted", "rows_in": {}, "rows_out": 3, "quarantined": {}, "diagnostics": {"email_case_mismatches": 2}}
    data = runner.job_metrics("stedi-accelerometer", summary)
    assert [d for d in data if d["MetricName"] == "DiagnosticCount"] == [
        {
            "MetricName": "DiagnosticCount",
            "Dimensions": [{"Name": "Job", "Value": "stedi-accelerometer"}, {"Name": "Diagnostic", "Value": "email_case_mismatches"}],
            "Value": 2.0,
            "Unit": "Count",
        }
    ]
