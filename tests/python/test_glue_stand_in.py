"""The Glue stand-in's behaviours (tools/glue-local/awsglue, glue_local), each as AWS's documentation states it
(docs/glue-engine.md has the links), on local Spark with S3A against the moto server."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.spark

BUCKET = "stand-in-bucket"
DATABASE = "stand_in"


@pytest.fixture(scope="module")
def aws(glue_engine):
    glue_engine.aws["s3"].create_bucket(Bucket=BUCKET)
    glue_engine.aws["glue"].create_database(DatabaseInput={"Name": DATABASE})
    return glue_engine.aws


def glue_context(glue_engine):
    from awsglue.context import GlueContext

    return GlueContext(glue_engine.spark.sparkContext)


def keys(aws, prefix):
    return sorted(o["Key"] for o in aws["s3"].list_objects_v2(Bucket=BUCKET, Prefix=prefix).get("Contents", []))


def parquet_table(name, columns, partition_keys, location):
    return {
        "Name": name,
        "TableType": "EXTERNAL_TABLE",
        "Parameters": {"classification": "parquet"},
        "PartitionKeys": [{"Name": k, "Type": "string"} for k in partition_keys],
        "StorageDescriptor": {
            "Columns": [{"Name": n, "Type": t} for n, t in columns],
            "Location": location,
            "InputFormat": "org.apache.hadoop.hive.ql.io.parquet.MapredParquetInputFormat",
            "OutputFormat": "org.apache.hadoop.hive.ql.io.parquet.MapredParquetOutputFormat",
            "SerdeInfo": {"SerializationLibrary": "org.apache.hadoop.hive.ql.io.parquet.serde.ParquetHiveSerDe"},
        },
    }


def test_purge_s3_path_keeps_files_newer_than_the_retention_period_168_hours_by_default(glue_engine, aws):
    for key in ("purge/a/1.json", "purge/a/deep/2.json", "purge/ab.json"):
        aws["s3"].put_object(Bucket=BUCKET, Key=key, Body=b"{}")
    context = glue_context(glue_engine)
    context.purge_s3_path(f"s3://{BUCKET}/purge/a/")
    assert keys(aws, "purge/") == ["purge/a/1.json", "purge/a/deep/2.json", "purge/ab.json"]
    context.purge_s3_path(f"s3://{BUCKET}/purge/a/", options={"retentionPeriod": 0})
    assert keys(aws, "purge/") == ["purge/ab.json"]  # recursive under the prefix, nothing beside it


def test_purge_s3_path_skips_the_excluded_storage_classes(glue_engine, aws):
    aws["s3"].put_object(Bucket=BUCKET, Key="cold/a.json", Body=b"{}", StorageClass="GLACIER")
    aws["s3"].put_object(Bucket=BUCKET, Key="cold/b.json", Body=b"{}")
    glue_context(glue_engine).purge_s3_path(f"s3://{BUCKET}/cold/", options={"retentionPeriod": 0, "excludeStorageClasses": ["GLACIER"]})
    assert keys(aws, "cold/") == ["cold/a.json"]


def sink_write(glue_engine, rows, table, partition_keys, update_behavior="UPDATE_IN_DATABASE"):
    from awsglue.dynamicframe import DynamicFrame

    context = glue_context(glue_engine)
    frame = glue_engine.spark.createDataFrame(rows, "id bigint, name string, day string")
    sink = context.getSink(
        connection_type="s3",
        path=f"s3://{BUCKET}/{table}/",
        enableUpdateCatalog=True,
        updateBehavior=update_behavior,
        partitionKeys=partition_keys,
    )
    sink.setFormat("glueparquet")
    sink.setCatalogInfo(catalogDatabase=DATABASE, catalogTableName=table)
    sink.writeFrame(DynamicFrame.fromDF(frame, context, table))


def test_the_s3_sink_adds_files_and_the_new_partitions_and_updates_a_partitioned_tables_columns(glue_engine, aws):
    aws["glue"].create_table(DatabaseName=DATABASE, TableInput=parquet_table("events", [("id", "bigint")], ["day"], f"s3://{BUCKET}/events/"))
    sink_write(glue_engine, [(1, "a", "2022-06-18")], "events", ["day"])
    sink_write(glue_engine, [(2, "b", "2022-06-18"), (3, "c", "2022-06-19")], "events", ["day"])
    files = keys(aws, "events/")
    assert {k.split("/")[1] for k in files} == {"day=2022-06-18", "day=2022-06-19"}
    assert len([k for k in files if k.startswith("events/day=2022-06-18/")]) >= 2  # the first write's file is kept
    partitions = aws["glue"].get_partitions(DatabaseName=DATABASE, TableName="events")["Partitions"]
    assert sorted((p["Values"], p["StorageDescriptor"]["Location"]) for p in partitions) == [
        (["2022-06-18"], f"s3://{BUCKET}/events/day=2022-06-18/"),
        (["2022-06-19"], f"s3://{BUCKET}/events/day=2022-06-19/"),
    ]
    columns = aws["glue"].get_table(DatabaseName=DATABASE, Name="events")["Table"]["StorageDescriptor"]["Columns"]
    assert [(c["Name"], c["Type"]) for c in columns] == [("id", "bigint"), ("name", "string")]


def test_update_behavior_log_adds_partitions_but_leaves_the_columns(glue_engine, aws):
    aws["glue"].create_table(DatabaseName=DATABASE, TableInput=parquet_table("logged", [("id", "bigint")], ["day"], f"s3://{BUCKET}/logged/"))
    sink_write(glue_engine, [(1, "a", "2022-06-18")], "logged", ["day"], update_behavior="LOG")
    table = aws["glue"].get_table(DatabaseName=DATABASE, Name="logged")["Table"]
    assert [c["Name"] for c in table["StorageDescriptor"]["Columns"]] == ["id"]
    assert len(aws["glue"].get_partitions(DatabaseName=DATABASE, TableName="logged")["Partitions"]) == 1


def test_partition_keys_that_differ_from_the_catalog_tables_fail_before_anything_is_written(glue_engine, aws):
    aws["glue"].create_table(DatabaseName=DATABASE, TableInput=parquet_table("flat", [("id", "bigint")], [], f"s3://{BUCKET}/flat/"))
    with pytest.raises(ValueError, match="partition keys"):
        sink_write(glue_engine, [(1, "a", "2022-06-18")], "flat", ["day"])
    assert keys(aws, "flat/") == []


def test_spark_table_reads_what_the_catalog_defines_its_partitions_only(glue_engine, aws):
    from glue_local.data_catalog import mirror_data_catalog

    aws["glue"].create_table(DatabaseName=DATABASE, TableInput=parquet_table("readings", [("id", "bigint"), ("name", "string")], ["day"], f"s3://{BUCKET}/readings/"))
    sink_write(glue_engine, [(1, "a", "2022-06-18")], "readings", ["day"])
    # A folder the Catalog does not list is not part of the table, as with a metastore's partitions.
    glue_engine.spark.createDataFrame([(9, "z")], "id bigint, name string").write.parquet(f"s3://{BUCKET}/readings/day=2099-01-01/")
    mirror_data_catalog(glue_engine.spark, aws["glue"])
    rows = glue_engine.spark.table(f"{DATABASE}.readings").collect()
    assert [tuple(r) for r in rows] == [(1, "a", "2022-06-18")]
    mirror_data_catalog(glue_engine.spark, aws["glue"])  # replacing the mirror deletes no data
    assert any(k.startswith("readings/day=2099-01-01/") for k in keys(aws, "readings/"))


def test_the_worker_answers_one_json_line_per_request_and_nothing_else_on_stdout(glue_engine, tmp_path):
    env = dict(os.environ, PYTHONPATH=str(ROOT / "tools" / "glue-local"))
    requests = "\n".join(
        [
            "not json",
            json.dumps({"id": "no-args", "argv": ["--JOB_NAME", "x"]}),
        ]
    )
    run = subprocess.run([sys.executable, "-m", "glue_local.worker"], input=requests + "\n", capture_output=True, text=True, env=env, cwd=tmp_path, timeout=600)
    lines = [json.loads(line) for line in run.stdout.splitlines()]
    assert run.returncode == 0, run.stderr[-2000:]
    assert lines[0] == {"ready": True}
    assert lines[1]["ok"] is False and lines[1]["error"]["name"] == "BadRequest"
    # getResolvedOptions: every name the runner asks for is required (awsglue's argparse error, not an exit).
    assert lines[2]["id"] == "no-args" and lines[2]["ok"] is False
    assert lines[2]["error"]["name"] == "GlueArgumentError" and "required" in lines[2]["error"]["message"]
    assert len(lines) == 3


def test_the_worker_says_what_is_missing_when_the_jars_are_not_there(tmp_path):
    env = dict(os.environ, PYTHONPATH=str(ROOT / "tools" / "glue-local"), GLUE_LOCAL_JARS=str(tmp_path), AWS_ENDPOINT_URL="http://127.0.0.1:9")
    run = subprocess.run([sys.executable, "-m", "glue_local.worker"], input="", capture_output=True, text=True, env=env, timeout=120)
    reply = json.loads(run.stdout.splitlines()[0])
    assert run.returncode == 1 and reply["ready"] is False
    assert "npm run setup:glue" in reply["error"]["message"]


def test_job_commit_needs_init_and_enabled_bookmarks_are_refused(glue_engine):
    from awsglue.job import Job

    job = Job(glue_context(glue_engine))
    with pytest.raises(RuntimeError):
        job.commit()
    with pytest.raises(NotImplementedError):
        job.init("x", {"job_bookmark_option": "job-bookmark-enable"})
    job.init("x", {"JOB_NAME": "x"})
    job.commit()
    assert job.committed
