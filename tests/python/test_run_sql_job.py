"""glue/run_sql_job.py against a fake SparkSession, GlueContext and boto3 clients (no pyspark, no AWS).

The fakes record what the runner asks for; the real SQL files of glue/jobs/ and the real DDL of
glue/tables/ are used, so a change there that the runner does not follow fails here.
"""

from __future__ import annotations

import argparse
import ast
import base64
import hashlib
import io
import json
import logging
import re
import shutil
import subprocess
import sys
from pathlib import Path
from urllib.parse import quote

import pytest

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "glue"))
sys.path.insert(0, str(ROOT / "tools" / "glue-local"))

from awsglue import utils as awsglue  # noqa: E402 - the stand-in (tools/glue-local)
import run_sql_job as runner  # noqa: E402
import fake_s3  # noqa: E402

BUCKET = "stedi-lakehouse-test-data"
DATABASE = "stedi_lakehouse_test"
SALT_PARAMETER = "/stedi-lakehouse/test/pii-salt"
SALT = "s3cr3t-salt-for-tests-0123456789"
ASSETS_BUCKET = "stedi-lakehouse-test-serverlessdeploymentbucket-1a2b3c"

# Each job's expected reads (from its SQL) and target (src/definition/pipeline.ts).
JOBS = {
    "customer_landing_to_trusted": {
        "landing": ["customer_landing"],
        "catalog": [],
        "target": ("customer_trusted", "customer/trusted/", []),
    },
    "accelerometer_landing_to_trusted": {
        "landing": ["accelerometer_landing"],
        "catalog": ["customer_trusted"],
        "target": ("accelerometer_trusted", "accelerometer/trusted/", ["reading_date"]),
    },
    "customer_trusted_to_curated": {
        "landing": [],
        "catalog": ["customer_trusted", "accelerometer_trusted"],
        "target": ("customer_curated", "customer/curated/", []),
    },
    "step_trainer_landing_to_trusted": {
        "landing": ["step_trainer_landing"],
        "catalog": ["customer_curated", "customer_trusted"],
        "target": ("step_trainer_trusted", "step_trainer/trusted/", ["reading_date"]),
    },
    "machine_learning_curated": {
        "landing": [],
        "catalog": ["step_trainer_trusted", "accelerometer_trusted", "customer_curated", "customer_trusted"],
        "target": ("machine_learning_curated", "machine_learning/curated/", ["reading_date"]),
    },
}


# --- Fakes ---------------------------------------------------------------------------------------------


def schema_columns(ddl: str) -> list[str]:
    return [re.match(r"\s*`?([A-Za-z_][A-Za-z0-9_]*)`?", part).group(1) for part in ddl.split(",")]


class FakeRDD:
    def __init__(self, rows):
        self.rows = list(rows)

    def flatMap(self, fn):  # noqa: N802 - Spark's name
        return FakeRDD(out for row in self.rows for out in fn(row))


class FakeWriter:
    def __init__(self, frame):
        self.frame = frame
        self.write_mode = None

    def mode(self, mode):
        self.write_mode = mode
        return self

    def json(self, path):
        spark = self.frame.spark
        spark.calls.append(("write.json", path, self.write_mode))
        rows = [dict(zip(self.frame.columns, row)) for row in self.frame.rows]
        spark.json_writes[path] = rows
        data = "".join(json.dumps(row) + "\n" for row in rows).encode("utf-8")
        tasks = [[fake_s3.OutputFile(fake_s3.part_file(0, ".json"), data)]]  # coalesce(1): one task, one file
        fake_s3.spark_write(spark.s3.store, path, tasks, by="spark json writer")

    def parquet(self, path):
        """DataFrameWriter.parquet: a part file per task (here two tasks, one for an empty frame). The fake's
        "Parquet" is JSON of the columns and rows, so a later run's reader gets them back from the store."""
        spark = self.frame.spark
        spark.calls.append(("write.parquet", path, self.write_mode))
        spark.parquet_writes[path] = list(self.frame.rows)
        halves = [self.frame.rows[: len(self.frame.rows) // 2], self.frame.rows[len(self.frame.rows) // 2 :]]
        tasks = [
            [fake_s3.OutputFile(fake_s3.part_file(i, ".snappy.parquet"), json.dumps({"columns": self.frame.columns, "rows": rows}).encode())]
            for i, rows in enumerate(halves)
            if rows or i == 0
        ]
        fake_s3.spark_write(spark.s3.store, path, tasks, by="spark parquet writer")


class FakeDataFrame:
    def __init__(self, spark, columns, rows=()):
        self.spark = spark
        self.columns = list(columns)
        self.rows = [tuple(r) for r in rows]
        self.persisted = False

    @property
    def rdd(self):
        return FakeRDD(self.rows)

    @property
    def write(self):
        return FakeWriter(self)

    def writeTo(self, name):  # noqa: N802 - pyspark's DataFrameWriterV2
        return FakeWriterV2(self, name)

    def persist(self):
        self.persisted = True
        return self

    def unpersist(self):
        self.persisted = False
        return self

    def count(self):
        return len(self.rows)

    def first(self):
        return self.rows[0]

    def _index(self, name):
        return self.columns.index(name)

    def selectExpr(self, *exprs):  # noqa: N802
        if exprs == ("input_file_name() as path", "cast(value as binary) as content"):
            # A BinaryType column reaches Python as a bytearray.
            return FakeDataFrame(self.spark, ["path", "content"], [(path, bytearray(value)) for path, value in self.rows])
        if exprs == ("count(1) - count(reason) as valid", "count(reason) as rejected"):
            rejected = sum(1 for r in self.rows if r[self._index("reason")] is not None)
            return FakeDataFrame(self.spark, ["valid", "rejected"], [(len(self.rows) - rejected, rejected)])
        if exprs == ("count(1) as n", "cast(coalesce(sum(cast(xxhash64(*) as decimal(38,0))), 0) as string) as h"):
            # Spark's xxhash64 of a row; any stable hash models the runner's order-free content sum.
            digest = sum(int(hashlib.sha256(repr(r).encode()).hexdigest()[:15], 16) for r in self.rows)
            return FakeDataFrame(self.spark, ["n", "h"], [(len(self.rows), str(digest))])
        raise AssertionError(f"unexpected selectExpr {exprs}")

    def where(self, condition):
        m = re.fullmatch(r"(\w+) is (not )?null", condition)
        assert m, f"unexpected condition {condition}"
        i, keep_null = self._index(m.group(1)), m.group(2) is None
        return FakeDataFrame(self.spark, self.columns, [r for r in self.rows if (r[i] is None) == keep_null])

    def select(self, *names):
        idx = [self._index(n) for n in names]
        return FakeDataFrame(self.spark, names, [tuple(r[i] for i in idx) for r in self.rows])

    def coalesce(self, _n):
        return self

    def sortWithinPartitions(self, *names):  # noqa: N802
        idx = [self._index(n) for n in names]
        return FakeDataFrame(self.spark, self.columns, sorted(self.rows, key=lambda r: tuple(r[i] for i in idx)))

    def createOrReplaceTempView(self, name):  # noqa: N802
        self.spark.views[name] = self

    def union(self, other):
        assert other.columns == self.columns, (other.columns, self.columns)
        return FakeDataFrame(self.spark, self.columns, self.rows + other.rows)

    def join(self, other, on, how):
        assert how == "left_semi" and isinstance(on, str), (on, how)
        keys = {r[other._index(on)] for r in other.rows}
        return FakeDataFrame(self.spark, self.columns, [r for r in self.rows if r[self._index(on)] in keys])

    def groupBy(self, name):  # noqa: N802
        return FakeGroupedData(self, name)

    def collect(self):
        return list(self.rows)


class FakeGroupedData:
    def __init__(self, frame, name):
        self.frame = frame
        self.name = name

    def count(self):
        counts = {}
        for row in self.frame.rows:
            key = row[self.frame._index(self.name)]
            counts[key] = counts.get(key, 0) + 1
        return FakeDataFrame(self.frame.spark, [self.name, "count"], sorted(counts.items()))


class FakeReader:
    """spark.read.text as Spark runs it: each path is a Hadoop glob (DataSource.checkAndGlobPathIfNecessary),
    input_file_name() gives the file's URI, percent-encoded, and the value column holds the file's bytes
    unchecked (TextFileFormat.readToUnsafeMem writes the Text's bytes into the row as they are), which a cast
    to binary gives back: here the value is those bytes."""

    def __init__(self, spark):
        self.spark = spark

    def text(self, paths, wholetext=False):
        if not wholetext:  # quarantine batches, read line by line (run_sql_job.read_quarantine)
            lines = []
            for path in paths:
                assert "/quarantine/" in path, "landing files are read whole, for their line numbers"
                for data in fake_s3.read_directory(self.spark.s3.store, path, by="spark.read.text").values():
                    lines += [(line,) for line in data.decode("utf-8").split("\n")]
            return FakeDataFrame(self.spark, ["value"], lines)
        contents = fake_s3.read_files(self.spark.s3.store, paths, by="spark.read.text")
        self.spark.text_reads.append(sorted(contents))
        return FakeDataFrame(self.spark, ["path", "value"], [(quote(uri, safe="/:"), bytes(data)) for uri, data in contents.items()])

    def parquet(self, *paths):
        """DataFrameReader.parquet over folders: each read as a table location (fake_s3.read_directory); a folder
        that does not exist fails, as Spark's "Path does not exist"."""
        columns, rows = None, []
        for path in paths:
            files = fake_s3.read_directory(self.spark.s3.store, path, by="spark.read.parquet")
            if not files:
                raise fake_s3.NotFound(f"Path does not exist: {path}")
            for data in files.values():
                part = json.loads(data)
                columns = columns or part["columns"]
                assert part["columns"] == columns
                rows += [tuple(r) for r in part["rows"]]
        return FakeDataFrame(self.spark, columns, rows)

    def schema(self, ddl):
        return FakeJsonReader(self.spark, schema_columns(ddl))


class FakeJsonReader:
    def __init__(self, spark, columns):
        self.spark = spark
        self.columns = columns

    def parquet(self, *paths):
        frame = FakeReader(self.spark).parquet(*paths)
        assert frame.columns == self.columns, (frame.columns, self.columns)
        return frame

    def json(self, paths):
        rows = []
        for path in paths:
            for data in fake_s3.read_directory(self.spark.s3.store, path, by="spark.read.json").values():
                rows += [tuple(json.loads(line).get(c) for c in self.columns) for line in data.decode("utf-8").splitlines() if line]
        return FakeDataFrame(self.spark, self.columns, rows)


class FakeConf:
    def __init__(self):
        self.values = {}

    def set(self, key, value):
        self.values[key] = value


class FakeAnalysisException(Exception):
    """pyspark.errors.AnalysisException, as Spark raises it for a table its metastore does not have."""


def declared_tables() -> dict[str, list[str]]:
    """The derived tables' columns as the stack defines them in the Data Catalog (glue/tables/derived_tables.json;
    deploy/glue-resources.js), partition keys last."""
    declared = json.loads((ROOT / "glue" / "tables" / "derived_tables.json").read_text())
    return {table: [c["name"] for c in columns] for table, columns in declared.items()}


def sink_rows(data: bytes) -> list[tuple]:
    """The rows in a data file FakeSink wrote (their repr); none in a file written otherwise."""
    try:
        rows = ast.literal_eval(data.decode())
    except (ValueError, SyntaxError, UnicodeDecodeError):
        return []
    return [tuple(r) for r in rows] if isinstance(rows, list) else []


class FakeCatalog:
    """The Glue Data Catalog as Spark's metastore (--enable-glue-datacatalog; AWS Glue guide, "AWS Glue Data
    Catalog support for Spark SQL jobs"): the tables the stack defines, with their columns and locations.

    spark.table() of one of them gives the Catalog's columns whatever its location holds, and no rows when it
    holds no data files: the schema is the metastore's, not the data's (unlike a DynamicFrame's, which Glue
    computes from the records, so a table without files gives a DynamicFrame without columns). spark.table() of a
    table the Catalog lacks raises AnalysisException [TABLE_OR_VIEW_NOT_FOUND]."""

    def __init__(self, locations=None, missing=()):
        locations = locations or {t: f"s3://{BUCKET}/{p}" for t, p, _ in (j["target"] for j in JOBS.values())}
        self.tables = {name: (columns, locations[name]) for name, columns in declared_tables().items() if name not in missing}


class FakeSpark:
    def __init__(self, s3, result_columns, result_rows=(), catalog=None):
        self.s3 = s3
        self.conf = FakeConf()
        self.read = FakeReader(self)
        self.catalog = catalog or FakeCatalog()
        self.tables_read = []
        self.views = {}
        self.sql_run = []
        self.json_writes = {}
        self.parquet_writes = {}
        self.text_reads = []
        self.calls = []
        self.result = FakeDataFrame(self, result_columns, result_rows)
        self.snapshots = {}  # table -> [(snapshot id, parent id, operation)], oldest first

    def table(self, name):
        database, table = re.fullmatch(r"glue_catalog\.`(\w+)`\.`(\w+)`", name).groups()
        assert database == DATABASE
        self.tables_read.append((database, table))
        if table not in self.catalog.tables:
            raise FakeAnalysisException(f"[TABLE_OR_VIEW_NOT_FOUND] The table or view `{database}`.`{table}` cannot be found.")
        columns, location = self.catalog.tables[table]
        files = fake_s3.read_directory(self.s3.store, location, by="spark.table")
        return FakeDataFrame(self, columns, [row for data in files.values() for row in sink_rows(data)])

    def createDataFrame(self, rows, schema):  # noqa: N802
        rows = rows.rows if isinstance(rows, FakeRDD) else rows
        return FakeDataFrame(self, schema_columns(schema), rows)

    def sql(self, text):
        # Iceberg's metadata tables refs (name, type, snapshot_id: one row per branch or tag) and snapshots
        # ("Spark Queries", "Inspecting tables"), as the runner asks them. The fake's tables have one branch,
        # main, once they have a snapshot (test_write_audit_publish.py runs branches on Spark).
        meta = re.fullmatch(r"SELECT (.+) FROM glue_catalog\.`\w+`\.`(\w+)`\.(refs WHERE type = 'BRANCH'|snapshots)", text)
        if meta:
            history = self.snapshots.get(meta.group(2), [])
            if meta.group(3) != "snapshots":
                return FakeDataFrame(self, ["name", "snapshot_id"], [("main", history[-1][0])] if history else [])
            return FakeDataFrame(self, ["snapshot_id", "parent_id", "operation"], history)
        self.sql_run.append(text)
        return self.result

    def commit(self, table, operation):
        """A new snapshot of the table, child of its current one (Iceberg's snapshot lineage)."""
        history = self.snapshots.setdefault(table, [])
        history.append((1000 + sum(len(h) for h in self.snapshots.values()), history[-1][0] if history else None, operation))


class FakeSink:
    def __init__(self, glue_context, options):
        self.glue_context = glue_context
        self.calls = glue_context.calls
        self.options = options
        self.calls.append(("getSink", options))

    def setFormat(self, fmt):  # noqa: N802
        self.calls.append(("setFormat", fmt))

    def setCatalogInfo(self, **info):  # noqa: N802
        self.calls.append(("setCatalogInfo", info))

    def writeFrame(self, frame):  # noqa: N802
        self.calls.append(("writeFrame", frame))
        # Glue's S3 sink writes a file per partition value of each task, under <path>/<key>=<value>/.
        df = frame[1]
        keys = self.options["partitionKeys"]
        files = {}
        for row in df.rows:
            values = dict(zip(df.columns, row))
            directory = "".join(f"{k}={values[k]}/" for k in keys)
            files.setdefault(directory, []).append(row)
        tasks = [[fake_s3.OutputFile(d + fake_s3.part_file(0, ".snappy.parquet"), repr(rows).encode()) for d, rows in files.items()]]
        spark = self.glue_context.spark
        fake_s3.spark_write(spark.s3.store, self.options["path"], tasks, by="glueparquet sink")


# pyspark's lit(True) needs a running SparkContext: the fakes' whole-table overwrite condition is this marker.
ALL_ROWS = "all rows"
runner.all_rows = lambda: ALL_ROWS


class FakeWriterV2:
    """DataFrameWriterV2 on an Iceberg table of the catalog glue_catalog: overwrite() replaces the table's rows in
    one commit (here: its files, written as FakeSink wrote them, key=value folders per partition key)."""

    def __init__(self, frame, name):
        self.frame = frame
        self.spark = frame.spark
        self.name = name
        self.options = {}

    def option(self, key, value):
        self.options[key] = value
        return self

    def append(self):
        """Adds the rows in one commit (Iceberg's AppendFiles): the table's files stay, new ones are added."""
        self.spark.calls.append(("append", self.name, dict(self.options)))
        self._write(replace=False)

    def overwrite(self, condition):
        self.spark.calls.append(("overwrite", self.name, dict(self.options), condition))
        self._write(replace=True)

    def _write(self, replace):
        database, table = re.fullmatch(r"glue_catalog\.`(\w+)`\.`(\w+)`", self.name).groups()
        self.spark.commit(table, "overwrite" if replace else "append")
        _, location = self.spark.catalog.tables[table]
        keys = next(j["target"][2] for j in JOBS.values() if j["target"][0] == table)
        files = {}
        for row in self.frame.rows:
            values = dict(zip(self.frame.columns, row))
            files.setdefault("".join(f"{k}={values[k]}/" for k in keys), []).append(row)
        # A fake of the commit's outcome: the table's files are the new rows only. (Iceberg keeps the old data
        # files for older snapshots; the fake's readers list the location, so it drops them.)
        store = self.spark.s3.store
        bucket, prefix = fake_s3.split_uri(location)
        store.acting = "iceberg overwrite"
        for key in store.list(bucket, prefix.rstrip("/") + "/") if replace else []:
            store.delete(bucket, key)
        store.acting = "runner"
        part = len(self.spark.snapshots[table])  # a new name per commit: an append keeps the files before it
        tasks = [[fake_s3.OutputFile(d + fake_s3.part_file(part, ".snappy.parquet"), repr(rows).encode()) for d, rows in files.items()]]
        fake_s3.spark_write(self.spark.s3.store, location, tasks, by="iceberg overwrite" if replace else "iceberg append")


class FakeGlueContext:
    def __init__(self, spark):
        self.spark = spark
        self.calls = spark.calls

    def purge_s3_path(self, path, options=None):
        self.calls.append(("purge", path, options))
        fake_s3.purge_s3_path(self.spark.s3.store, path, options["retentionPeriod"])

    def getSink(self, **options):  # noqa: N802
        return FakeSink(self, options)


class FakeS3(fake_s3.Boto3S3):
    """boto3's S3 client on a recording S3 store (tests/python/fake_s3.py); `objects` are the data bucket's."""

    def __init__(self, objects, other_buckets=None):
        super().__init__(fake_s3.S3Store({BUCKET: objects, **(other_buckets or {})}))

    @property
    def objects(self):
        return self.store.bucket(BUCKET)


def read_ddl(table: str) -> dict:
    """The Catalog's view of a landing table, as CloudFormation creates it from glue/tables/<table>.sql."""
    text = re.sub(r"--[^\n]*", "", (ROOT / "glue" / "tables" / f"{table}.sql").read_text())
    body = text[text.index("(") + 1 : text.index("\n)")]
    columns = []
    for m in re.finditer(r"^\s*(\w+)\s+(\w+)(?:\s+comment\s+'([^']*)')?", body, re.MULTILINE):
        columns.append({"Name": m.group(1), "Type": m.group(2), "Comment": m.group(3) or ""})
    location = re.search(r"location\s+'([^']*)'", text).group(1).replace("${bucket}", BUCKET)
    return {"Table": {"Name": table, "StorageDescriptor": {"Columns": columns, "Location": location}}}


class FakeGlue:
    def __init__(self):
        self.tables_described = []

    def get_table(self, DatabaseName, Name):  # noqa: N803
        assert DatabaseName == DATABASE
        self.tables_described.append(Name)
        return read_ddl(Name)


class FakeSsm:
    def __init__(self, value=SALT):
        self.value = value
        self.calls = []

    def get_parameter(self, **kwargs):
        self.calls.append(kwargs)
        return {"Parameter": {"Name": kwargs["Name"], "Type": "SecureString", "Value": self.value}}


def job_arguments(job: str, **overrides) -> runner.JobArguments:
    table, prefix, partitions = JOBS[job]["target"]
    values = dict(
        job_name=f"stedi-lakehouse-test-{job}",
        sql_bucket=ASSETS_BUCKET,
        sql_key=f"glue-assets/{'0' * 64}/{job}.sql",
        database=DATABASE,
        bucket=BUCKET,
        target_table=table,
        target_prefix=prefix,
        pii_salt_parameter=SALT_PARAMETER,
        consent_policy="any",
        run_id="exec-1",
        input_tables=JOBS[job]["landing"] + JOBS[job]["catalog"],
        partition_keys=list(partitions),
    )
    values.update(overrides)
    return runner.JobArguments(**values)


def sql_objects() -> dict:
    """The jobs' SQL files where job_arguments says they are, in the assets bucket."""
    return {f"glue-assets/{'0' * 64}/{job}.sql": (ROOT / "glue" / "jobs" / f"{job}.sql").read_text() for job in JOBS}


def run(job, objects=None, ssm=None, result_columns=None, **overrides):
    s3 = FakeS3(objects or {}, {ASSETS_BUCKET: sql_objects()})
    partitions = JOBS[job]["target"][2]
    spark = FakeSpark(s3, result_columns or ["a", "b", *partitions], [("x", 1, *["2022-06-18"] * len(partitions))])
    glue_context = FakeGlueContext(spark)
    glue = FakeGlue()
    ssm = ssm or FakeSsm()
    summary = runner.run_job(
        job_arguments(job, **overrides), spark, glue_context, s3, glue, ssm
    )
    return summary, spark, glue_context, glue, ssm


# --- The job -------------------------------------------------------------------------------------------


@pytest.mark.parametrize("job", list(JOBS))
def test_each_job_reads_its_tables_from_the_catalog_and_runs_its_sql(job):
    summary, spark, glue_context, glue, _ = run(job)

    assert spark.tables_read == [(DATABASE, t) for t in JOBS[job]["catalog"]]
    assert glue.tables_described == JOBS[job]["landing"]
    assert spark.sql_run == [(ROOT / "glue" / "jobs" / f"{job}.sql").read_text()]
    assert ("GET", ASSETS_BUCKET, f"glue-assets/{'0' * 64}/{job}.sql") in [(c.op, c.bucket, c.key) for c in spark.s3.store.calls]
    for table in JOBS[job]["landing"] + JOBS[job]["catalog"] + ["job_parameters"]:
        assert table in spark.views
    assert spark.conf.values["spark.sql.session.timeZone"] == "UTC"
    assert summary["rows_out"] == 1


@pytest.mark.parametrize("job", list(JOBS))
def test_the_target_is_replaced_by_one_iceberg_overwrite_of_every_row_recording_the_run_id(job):
    # One commit replaces the table (DataFrameWriterV2.overwrite of every row; no purge before it), and the
    # snapshot's summary records the run (Iceberg write option snapshot-property.<key>).
    _, spark, glue_context, _, _ = run(job)
    table = JOBS[job]["target"][0]
    writes = [c for c in spark.calls if c[0] == "overwrite"]
    assert writes == [("overwrite", f"glue_catalog.`{DATABASE}`.`{table}`", {"snapshot-property.stedi.run-id": "exec-1"}, ALL_ROWS)]
    assert not [c for c in glue_context.calls if c[0] in ("purge", "getSink")]
    assert spark.result.persisted is False  # counted while cached, released after the write


def run_with(job, s3, catalog, rows):
    partitions = JOBS[job]["target"][2]
    spark = FakeSpark(s3, ["a", "b", *partitions], [("x", i, *["2022-06-18"] * len(partitions)) for i in range(rows)], catalog=catalog)
    glue_context = FakeGlueContext(spark)
    runner.run_job(job_arguments(job), spark, glue_context, s3, FakeGlue(), FakeSsm())
    return spark, glue_context


def test_a_table_with_no_rows_yet_is_read_with_its_catalog_columns_through_sparks_metastore():
    # The Data Catalog as Spark's metastore: spark.table() has the Catalog's columns whatever the data holds
    # (AWS Glue guide, "AWS Glue Data Catalog support for Spark SQL jobs"). from_catalog would not do: a
    # DynamicFrame computes its schema from the records (AWS Glue guide, "DynamicFrame class"), so an empty
    # table gives it no columns and the SQL fails on a.user.
    s3 = FakeS3({}, {ASSETS_BUCKET: sql_objects()})
    spark, _ = run_with("customer_trusted_to_curated", s3, FakeCatalog(), rows=0)
    for table in ("customer_trusted", "accelerometer_trusted"):
        assert spark.views[table].columns == declared_tables()[table]
        assert spark.views[table].rows == []


def test_a_first_batch_of_customer_files_only_runs_all_five_jobs_each_reading_its_inputs_columns():
    s3 = FakeS3({"customer/landing/c.json": json.dumps({"email": "a@b.c", "shareWithResearchAsOfDate": 1}) + "\n"}, {ASSETS_BUCKET: sql_objects()})
    catalog = FakeCatalog()
    for job in JOBS:
        spark, glue_context = run_with(job, s3, catalog, rows=1 if job == "customer_landing_to_trusted" else 0)
        for table in JOBS[job]["catalog"]:
            assert spark.views[table].columns == declared_tables()[table]
    written = [sink_rows(v) for k, v in s3.objects.items() if k.startswith("customer/trusted/")]
    assert written == [[("x", 0)]]
    assert not [k for k in s3.objects if k.startswith(("accelerometer/trusted/", "customer/curated/", "machine_learning/"))]


def test_a_table_missing_from_the_catalog_fails_the_job_naming_it_before_anything_is_written():
    s3 = FakeS3({"accelerometer/landing/a.json": good("Ann.Lee@test.com", 1655564000001) + "\n"}, {ASSETS_BUCKET: sql_objects()})
    with pytest.raises(runner.JobConfigurationError, match=re.escape(f"{DATABASE}.customer_trusted")):
        run_with("accelerometer_landing_to_trusted", s3, FakeCatalog(missing=["customer_trusted"]), rows=1)
    assert not [c for c in s3.store.calls if c.op in ("PUT", "DELETE")]


def test_an_input_built_under_another_consent_policy_fails_the_job_naming_both_before_anything_is_written():
    # Issue 18: step_trainer_trusted was built from a customer_curated of the other policy.
    build = {"table_name": "customer_curated", "run_id": "exec-0", "rows_before": None, "rows_after": 3, "consent_policy": "since-consent", "built_at": "2026-12-01T00:00:00.000Z"}
    s3 = FakeS3(
        {"checks/table_builds/customer_curated.json": json.dumps(build) + "\n", "step_trainer/landing/s.json": ""},
        {ASSETS_BUCKET: sql_objects()},
    )
    with pytest.raises(runner.JobConfigurationError, match="customer_curated was built with consent policy since-consent .*but this run uses any"):
        run_with("step_trainer_landing_to_trusted", s3, FakeCatalog(), rows=1)
    assert not [c for c in s3.store.calls if c.op in ("PUT", "DELETE")]
    # The same policy, or a record from before the log recorded it, is read as before.
    s3 = FakeS3({"checks/table_builds/customer_curated.json": json.dumps({**build, "consent_policy": "any"}) + "\n"}, {ASSETS_BUCKET: sql_objects()})
    run_with("step_trainer_landing_to_trusted", s3, FakeCatalog(), rows=1)


def test_an_empty_result_replaces_the_table_with_no_rows_in_one_overwrite():
    s3 = FakeS3({"machine_learning/curated/reading_date=2022-06-17/old.parquet": "old"}, {ASSETS_BUCKET: sql_objects()})
    spark, glue_context = run_with("machine_learning_curated", s3, FakeCatalog(), rows=0)
    assert [c[0] for c in spark.calls if c[0] == "overwrite"] == ["overwrite"]
    assert [k for k in s3.objects if k.startswith("machine_learning/")] == []
    assert json.loads(s3.objects["checks/table_builds/machine_learning_curated.json"])["rows_after"] == 0


def test_a_job_whose_partition_keys_are_not_the_last_columns_fails_before_writing():
    with pytest.raises(runner.JobConfigurationError, match="partition keys"):
        run("accelerometer_landing_to_trusted", result_columns=["reading_date", "user"])


def test_the_salt_comes_from_ssm_by_name_decrypted_and_is_never_printed(caplog, capsys):
    caplog.set_level(logging.DEBUG)
    summary, spark, _, _, ssm = run("customer_trusted_to_curated")

    assert ssm.calls == [{"Name": SALT_PARAMETER, "WithDecryption": True}]
    parameters = spark.views["job_parameters"]
    assert parameters.columns == ["pii_salt", "consent_policy", "run_id"]
    assert parameters.rows == [(SALT, "any", "exec-1")]
    captured = capsys.readouterr()
    assert SALT not in caplog.text + captured.out + captured.err
    assert SALT not in json.dumps(summary)
    assert "job finished" in caplog.text


def test_a_short_or_unreadable_salt_fails_without_showing_it_before_anything_is_written():
    s3 = FakeS3({"customer/landing/c.json": "not json\n"}, {ASSETS_BUCKET: sql_objects()})
    spark = FakeSpark(s3, ["a"])
    glue_context = FakeGlueContext(spark)
    with pytest.raises(runner.SaltError) as short:
        runner.run_job(
            job_arguments("customer_landing_to_trusted"), spark, glue_context, s3, FakeGlue(), FakeSsm("tooshort")
        )
    assert "tooshort" not in str(short.value)
    assert spark.calls == []  # no quarantine, no table write

    class DeniedSsm(FakeSsm):
        def get_parameter(self, **kwargs):
            raise PermissionError("AccessDenied")

    with pytest.raises(runner.SaltError, match=re.escape(SALT_PARAMETER)):
        run("customer_trusted_to_curated", ssm=DeniedSsm())


# --- Landing records and quarantine --------------------------------------------------------------------


def good(user, timestamp):
    return json.dumps({"user": user, "timestamp": timestamp, "x": 1.0, "y": 0.0, "z": -1.0})


MIXED = "\n".join(
    [
        good("Ann.Lee@test.com", 1655564000001),
        '{"user": "Ann.Lee@test.com", "timestamp": 16555',
        "[1, 2, 3]",
        json.dumps({"user": "Ann.Lee@test.com", "timestamp": 1655564000002, "x": 1, "y": 1}),
        json.dumps({"user": "Ann.Lee@test.com", "timestamp": "soon", "x": 1, "y": 1, "z": 1}),
        "",
        json.dumps({"user": "Ann.Lee@test.com", "timestamp": 1655564000003, "x": 1, "y": 1, "z": None}),
        json.dumps({"user": 42, "timestamp": 1655564000004, "x": 1, "y": 1, "z": 1}),
        json.dumps({"user": "Ann.Lee@test.com", "timestamp": 1655564000005.5, "x": 1, "y": 1, "z": 1}),
        good("Ann.Lee@test.com", 1655564000006),
    ]
) + "\n"


def quarantine_writes(spark, dataset):
    """The rejected lines the run wrote into its batch folder of <dataset>/quarantine/, or None."""
    prefix = f"s3://{BUCKET}/{dataset}/quarantine/batch-"
    writes = [rows for path, rows in spark.json_writes.items() if path.startswith(prefix)]
    assert len(writes) <= 1
    return writes[0] if writes else None


def test_bad_landing_lines_go_to_the_quarantine_with_file_line_and_reason():
    objects = {
        "accelerometer/landing/mixed.json": MIXED,
        "accelerometer/landing/bom-crlf.json": f"\ufeff{good('Ann.Lee@test.com', 1655564000007)}\r\n{good('Ann.Lee@test.com', 1655564000008)}\r\n",
        "accelerometer/landing/empty.json": "",
        "accelerometer/landing/notes.txt": "not a landing file",
        "accelerometer/landing/archive/old.json": "[]",
    }
    summary, spark, glue_context, _, _ = run("accelerometer_landing_to_trusted", objects=objects)
    quarantine = f"s3://{BUCKET}/accelerometer/quarantine/"

    assert summary["quarantined"] == {"accelerometer": 7}
    assert summary["rows_in"] == {"accelerometer_landing": 4}
    assert summary["landing_files"] == {"accelerometer": {"checked": 3, "reused": 0, "removed": 0}}
    rejected = quarantine_writes(spark, "accelerometer")
    assert [(r["source_file"], r["line_number"], r["reason"]) for r in rejected] == [
        ("accelerometer/landing/mixed.json", 2, "not valid JSON"),
        ("accelerometer/landing/mixed.json", 3, "not a JSON object: found an array"),
        ("accelerometer/landing/mixed.json", 4, 'missing required field "z"'),
        ("accelerometer/landing/mixed.json", 5, 'field "timestamp" must be bigint, found a string'),
        ("accelerometer/landing/mixed.json", 7, 'missing required field "z"'),
        ("accelerometer/landing/mixed.json", 8, 'field "user" must be string, found an integer'),
        ("accelerometer/landing/mixed.json", 9, 'field "timestamp" must be bigint, found a number with a fraction'),
    ]
    assert rejected[0]["line"] == '{"user": "Ann.Lee@test.com", "timestamp": 16555'
    assert list(rejected[0]) == ["source_file", "line_number", "reason", "line", "line_encoding"]
    assert {r["line_encoding"] for r in rejected} == {"text"}
    view = spark.views["accelerometer_landing"]
    assert view.columns == ["user", "timestamp", "x", "y", "z"]
    assert sorted(r[1] for r in view.rows) == [1655564000001, 1655564000006, 1655564000007, 1655564000008]
    assert all(isinstance(r[2], float) for r in view.rows)
    # The run's batch: the records as Parquet, the rejected lines as JSON, each written once, then the manifest.
    writes = [(c[0], c[1].split("/")[4], c[2]) for c in spark.calls if c[0].startswith("write.")]
    assert writes == [("write.parquet", "validated", "overwrite"), ("write.json", "quarantine", "overwrite")]
    assert not [c for c in spark.calls if c[0] == "purge" and quarantine in c[1]]
    manifest = json.loads(spark.s3.objects["accelerometer/validated/_manifest.json"])
    assert sorted(manifest["files"]) == ["accelerometer/landing/bom-crlf.json", "accelerometer/landing/empty.json", "accelerometer/landing/mixed.json"]
    assert manifest["files"]["accelerometer/landing/mixed.json"]["records"] == 2
    assert manifest["files"]["accelerometer/landing/mixed.json"]["rejected"] == 7


def test_a_line_that_is_not_utf8_is_quarantined_byte_for_byte_as_base64():
    latin1 = b'{"user": "Ann.Lee\xe9@test.com", "timestamp": 1655564000002, "x": 1.0, "y": 0.0, "z": -1.0}'  # E9: not UTF-8
    objects = {"accelerometer/landing/latin1.json": good("Ann.Lee@test.com", 1655564000001).encode() + b"\n" + latin1 + b"\n"}
    summary, spark, _, _, _ = run("accelerometer_landing_to_trusted", objects=objects)

    assert summary["quarantined"] == {"accelerometer": 1}
    [rejected] = quarantine_writes(spark, "accelerometer")
    assert rejected == {
        "source_file": "accelerometer/landing/latin1.json",
        "line_number": 2,
        "reason": "not valid UTF-8 text",
        "line": base64.b64encode(latin1).decode("ascii"),
        "line_encoding": "base64",
    }
    assert base64.b64decode(rejected["line"]) == latin1
    assert [r[0] for r in spark.views["accelerometer_landing"].rows] == ["Ann.Lee@test.com"]


def test_landing_keys_are_read_as_names_never_as_hadoop_globs():
    names = ["acc*.json", "a?.json", "[x].json", "{a,b}.json", "back\\slash.json", "it's \"q\" %41+ü.json"]
    decoys = ["accX.json", "ab.json", "x.json", "a.json", "b.json"]
    objects = {}
    for i, name in enumerate(names + decoys):
        objects[f"accelerometer/landing/{name}"] = good("Ann.Lee@test.com", 1655564000000 + i) + "\n{bad\n"
    summary, spark, _, _, _ = run("accelerometer_landing_to_trusted", objects=objects)
    assert summary["rows_in"] == {"accelerometer_landing": len(names) + len(decoys)}
    rejected = quarantine_writes(spark, "accelerometer")
    assert sorted(r["source_file"] for r in rejected) == sorted(f"accelerometer/landing/{n}" for n in names + decoys)


def test_out_of_range_and_wrong_typed_step_trainer_values_are_rejected():
    lines = [
        '{"sensorReadingTime":1655564000002,"serialNumber":"S-1","distanceFromObject":250}',
        '{"sensorReadingTime":1655564000003,"serialNumber":"S-1","distanceFromObject":"far"}',
        '{"sensorReadingTime":1655564000004,"serialNumber":"S-1","distanceFromObject":3000000000}',
        '{"sensorReadingTime":1655564000005,"SERIALNUMBER":"S-1","distanceFromObject":true}',
        '{"sensorReadingTime":NaN,"serialNumber":"S-1","distanceFromObject":1}',
        '"just a string"',
    ]
    summary, spark, _, _, _ = run("step_trainer_landing_to_trusted", objects={"step_trainer/landing/typed.json": "\n".join(lines)})

    rejected = quarantine_writes(spark, "step_trainer")
    assert [(r["line_number"], r["reason"]) for r in rejected] == [
        (2, 'field "distanceFromObject" must be int, found a string'),
        (3, 'field "distanceFromObject" is out of range for int: 3000000000'),
        (4, 'field "distanceFromObject" must be int, found a boolean'),
        (5, 'field "sensorReadingTime" must be bigint, found a number with a fraction'),
        (6, "not a JSON object: found a string"),
    ]
    assert summary["rows_in"] == {"step_trainer_landing": 1}


# As the Catalog defines them (from glue/tables/accelerometer_landing.sql, comments included).
ACCELEROMETER_COLUMNS = runner.landing_table_from_catalog(FakeGlue(), DATABASE, "accelerometer_landing").columns
LANDING_CASE_FILE = json.loads((ROOT / "tests/fixtures/landing-cases/accelerometer.json").read_text())


def case_bytes(case: dict) -> bytes:
    """The case's line as bytes: a "long" case is one line too long to keep in the file; a "base64" case is a
    line that is not UTF-8, which JSON text cannot hold."""
    if "long" in case:
        long = case["long"]
        return (long["prefix"] + long["fill"] * long["bytes"] + long["suffix"]).encode("utf-8")
    if "base64" in case:
        return base64.b64decode(case["base64"])
    return case["line"].encode("utf-8")


LANDING_CASES = [{**case, "bytes": case_bytes(case)} for case in LANDING_CASE_FILE["cases"]]


def test_blank_landing_lines_are_no_records_and_no_rejects():
    good = LANDING_CASES[0]["line"]
    content = "\n".join([good, *LANDING_CASE_FILE["blank"], good]) + "\n"
    rows = list(runner.parse_landing_file("accelerometer/landing/a.json", content, ACCELEROMETER_COLUMNS))
    assert [row[0] for row in rows] == [None, None]


@pytest.mark.parametrize("case", LANDING_CASES, ids=[str(i + 1) for i in range(len(LANDING_CASES))])
def test_each_landing_case_gets_the_reason_the_local_engine_gives(case):
    # The same file drives tests/integration/landing-cases.test.ts against the local engine.
    rows = list(runner.parse_landing_file("accelerometer/landing/case.json", case["bytes"] + b"\n", ACCELEROMETER_COLUMNS))
    assert len(rows) == 1
    reason, source_file, line_number, line, line_encoding, *values = rows[0]
    assert reason == case["reason"]
    if reason is None:
        record = case.get("record") or json.loads(case["bytes"].decode("utf-8").replace("NaN", "null"))
        assert tuple(values) == (record["user"], record["timestamp"], float(record["x"]), float(record["y"]), float(record["z"]))
        assert all(type(v) is float for v in values[2:])
    else:
        # Kept byte for byte, as locally: the text, or the bytes in base64 for a line that is not UTF-8.
        kept = (case["base64"], "base64") if "base64" in case else (case["bytes"].decode("utf-8"), "text")
        assert (source_file, line_number, (line, line_encoding)) == ("accelerometer/landing/case.json", 1, kept)


def test_the_plausible_epoch_ms_range_and_longest_line_are_the_local_engines():
    rules = (ROOT / "src/sql/landing-rules.ts").read_text()
    assert "EPOCH_MS_RANGE = { min: 0, end: Date.UTC(2100, 0, 1) }" in rules
    assert (runner.EPOCH_MS_MIN, runner.EPOCH_MS_END) == (0, 4102444800000)  # Date.UTC(2100, 0, 1)
    assert f"EPOCH_MS_RANGE_TEXT = '{runner.EPOCH_MS_RANGE_TEXT}'" in rules
    assert "MAX_LINE_BYTES = 16 * 1024 * 1024" in rules and runner.MAX_LINE_BYTES == 16 * 1024 * 1024
    columns = {t: runner.landing_table_from_catalog(FakeGlue(), DATABASE, t).columns for t in ("customer_landing", "accelerometer_landing", "step_trainer_landing")}
    assert [c.name for t in columns.values() for c in t if c.epoch_millis] == [
        "registrationDate",
        "lastUpdateDate",
        "shareWithResearchAsOfDate",
        "shareWithPublicAsOfDate",
        "shareWithFriendsAsOfDate",
        "timestamp",
        "sensorReadingTime",
    ]


def test_without_bad_lines_no_quarantine_is_written_and_an_earlier_one_is_deleted_after_the_manifest():
    earlier = "customer/quarantine/part-00000-0b7e.c000.json"  # as the runner wrote it before the validated copy
    _, spark, _, _, _ = run("customer_landing_to_trusted", objects={earlier: "{}\n"})
    assert quarantine_writes(spark, "customer") is None
    assert earlier not in spark.s3.objects
    ops = [(c.op, c.key) for c in spark.s3.store.calls if c.by == "runner"]
    assert ops.index(("PUT", "customer/validated/_manifest.json")) < ops.index(("DELETE", earlier))
    assert spark.views["customer_landing"].rows == []


def test_required_comes_from_the_catalog_column_comments():
    table = runner.landing_table_from_catalog(FakeGlue(), DATABASE, "customer_landing")
    assert table.dataset == "customer"
    assert table.location == f"s3://{BUCKET}/customer/landing/"
    assert [c.name for c in table.columns if c.required] == ["email", "serialNumber", "lastUpdateDate"]


# --- Arguments: as AWS Glue passes them, read by a getResolvedOptions that behaves as awsglue's ------


def pascal(name: str) -> str:
    return "".join(word[0].upper() + word[1:] for word in name.split("_"))


GLUE_JOB_ID = "j_" + "3f" * 32
GLUE_JOB_RUN_ID = "jr_" + "9a" * 32
EXECUTION_NAME = "s3-0123456789abcdef"
TEMP_DIR = "s3://aws-glue-assets-123456789012-us-east-1/temporary/"
# What the template's references and substitutions stand for in these tests.
TEMPLATE_VALUES = {
    "GlueDatabase": DATABASE,
    "DataBucket": BUCKET,
    "PiiSaltParameterName": SALT_PARAMETER,
    "ConsentPolicy": "since-consent",
    "AWS::StackName": "stedi-lakehouse-test",
    "ServerlessDeploymentBucket": ASSETS_BUCKET,
}


def glue_argv(job_name: str, default_arguments: dict, run_arguments: dict) -> list[str]:
    """sys.argv of a Glue 5 job run: the script, the ids Glue adds to every run, the job's DefaultArguments
    overridden by the run's Arguments (the Glue guide, "Using job parameters": job run Arguments override
    DefaultArguments), then --JOB_NAME, which Glue sets itself, and a --TempDir as a console-made job has."""
    merged = {**default_arguments, **run_arguments}
    argv = ["/tmp/run_sql_job.py", "--JOB_ID", GLUE_JOB_ID, "--JOB_RUN_ID", GLUE_JOB_RUN_ID]
    for key, value in merged.items():
        argv += [key, value]
    return argv + ["--JOB_NAME", job_name, "--TempDir", TEMP_DIR]


def resolve_template_value(value):
    """A DefaultArguments value of the generated template, its Ref or Fn::Sub resolved with TEMPLATE_VALUES."""
    if isinstance(value, str):
        return value
    if "Ref" in value:
        return TEMPLATE_VALUES[value["Ref"]]
    if "Fn::Sub" in value:
        return re.sub(r"\$\{([^}]+)\}", lambda m: TEMPLATE_VALUES[m.group(1)], value["Fn::Sub"])
    raise AssertionError(f"unexpected template value {value}")


def deployed_job_arguments() -> dict:
    """{job: (Name, DefaultArguments, the state machine task's Arguments)} as the stack deploys them."""
    if shutil.which("node") is None or not (ROOT / "dist" / "src" / "definition" / "pipeline.js").exists():
        pytest.skip("node or dist/ missing: run npm run build")
    script = "console.log(JSON.stringify(require(process.argv[1]).resources().Resources))"
    out = subprocess.run(["node", "-e", script, str(ROOT / "deploy" / "glue-resources.js")], check=True, capture_output=True, text=True)
    resources = json.loads(out.stdout)
    definition = json.loads((ROOT / "statemachines" / "pipeline.asl.json").read_text())
    tasks = {}

    def walk(node):  # every state, however nested (Parallel branches, Map processors)
        if isinstance(node, dict):
            parameters = node.get("Parameters")
            is_publish = isinstance(parameters, dict) and "--publish_tables" in parameters.get("Arguments", {})
            if isinstance(parameters, dict) and str(parameters.get("JobName", "")).startswith("${") and not is_publish:
                tasks[parameters["JobName"]] = parameters.get("Arguments", {})
            for child in node.values():
                walk(child)
        elif isinstance(node, list):
            for child in node:
                walk(child)

    walk(definition)
    jobs = {}
    for job in JOBS:
        properties = resources[f"{pascal(job)}Job"]["Properties"]
        defaults = {k: resolve_template_value(v) for k, v in properties["DefaultArguments"].items()}
        run_arguments = {}
        for key, value in tasks["${" + pascal(job) + "JobName}"].items():
            if key == "--wap_branch.$":
                assert value == "$.branch", f"{job}: unexpected path {key}: {value}"
                run_arguments[key[:-2]] = f"run_{EXECUTION_NAME}"  # MergeInput's branch: States.Format('run_{}', name)
            elif key.endswith(".$"):
                assert value == "$$.Execution.Name", f"{job}: unexpected path {key}: {value}"
                run_arguments[key[:-2]] = EXECUTION_NAME
            else:
                run_arguments[key] = re.sub(r"\$\{([^}]+)\}", lambda m: TEMPLATE_VALUES[m.group(1)], value)
        jobs[job] = (resolve_template_value(properties["Name"]), defaults, run_arguments)
    return jobs


@pytest.mark.parametrize("job", list(JOBS))
def test_each_deployed_job_reads_the_arguments_glue_passes_it(job):
    name, defaults, run_arguments = deployed_job_arguments()[job]
    argv = glue_argv(name, defaults, run_arguments)

    args = runner.resolve_arguments(awsglue.getResolvedOptions, argv)

    table, prefix, partitions = JOBS[job]["target"]
    assert (args.job_name, args.target_table, args.target_prefix, args.partition_keys) == (name, table, prefix, partitions)
    assert (args.database, args.bucket, args.pii_salt_parameter) == (DATABASE, BUCKET, SALT_PARAMETER)
    assert args.sql_key == defaults["--sql_key"] and args.sql_key.endswith(f"{job}.sql")
    assert args.sql_bucket == ASSETS_BUCKET
    # The inputs its SQL declares (src/definition/pipeline.ts, from the "-- Reads:" header), in the declared order.
    assert sorted(args.input_tables) == sorted(JOBS[job]["landing"] + JOBS[job]["catalog"])
    # The queries its "-- Diagnostics:" header names, under their content-addressed keys.
    diagnostics = ["email_case_mismatches.sql"] if job == "accelerometer_landing_to_trusted" else []
    assert [key.rsplit("/", 1)[-1] for key in args.diagnostic_keys] == diagnostics
    assert all(key.startswith("glue-assets/") for key in args.diagnostic_keys)
    # The state machine's arguments win over the job's defaults.
    assert (args.run_id, args.consent_policy) == (EXECUTION_NAME, "since-consent")
    # Each job writes its table on the run's Iceberg branch (write, audit, publish).
    assert (args.wap_branch, args.publish_tables) == (f"run_{EXECUTION_NAME}", [])


def test_the_deployed_publish_task_publishes_every_derived_table_of_the_run_in_the_pipeline_order():
    definition = json.loads((ROOT / "statemachines" / "pipeline.asl.json").read_text())
    task = definition["States"]["PublishRun"]["Parameters"]
    last_job = list(JOBS)[-1]
    assert task["JobName"] == "${" + pascal(last_job) + "JobName}"
    name, defaults, _ = deployed_job_arguments()[last_job]
    run_arguments = {k: v for k, v in task["Arguments"].items() if not k.endswith(".$")}
    run_arguments = {**run_arguments, "--consent_policy": "since-consent", "--run_id": EXECUTION_NAME, "--wap_branch": f"run_{EXECUTION_NAME}"}
    assert set(task["Arguments"]) == {"--run_id.$", "--consent_policy", "--wap_branch.$", "--publish_tables"}

    args = runner.resolve_arguments(awsglue.getResolvedOptions, glue_argv(name, defaults, run_arguments))

    assert args.publish_tables == [spec["target"][0] for spec in JOBS.values()]
    assert args.wap_branch == f"run_{EXECUTION_NAME}"


STATIC_DEFAULTS = {
    "--job-language": "python",
    "--enable-metrics": "true",
    "--enable-glue-datacatalog": "true",
    "--job-bookmark-option": "job-bookmark-disable",
    "--sql_bucket": ASSETS_BUCKET,
    "--sql_key": f"glue-assets/{'0' * 64}/accelerometer_landing_to_trusted.sql",
    "--database": DATABASE,
    "--bucket": BUCKET,
    "--target_table": "accelerometer_trusted",
    "--target_prefix": "accelerometer/trusted/",
    "--input_tables": "accelerometer_landing,customer_trusted",
    "--pii_salt_parameter": SALT_PARAMETER,
    "--consent_policy": "any",
    "--partition_keys": "reading_date",
}
JOB_NAME = "stedi-lakehouse-test-accelerometer_landing_to_trusted"


def test_a_run_started_by_hand_has_no_run_id_and_takes_the_glue_job_run_id():
    argv = glue_argv(JOB_NAME, STATIC_DEFAULTS, {})
    args = runner.resolve_arguments(awsglue.getResolvedOptions, argv)
    assert (args.run_id, args.consent_policy, args.partition_keys) == (GLUE_JOB_RUN_ID, "any", ["reading_date"])
    assert args.target_path == f"s3://{BUCKET}/accelerometer/trusted/"

    unpartitioned = {k: v for k, v in STATIC_DEFAULTS.items() if k != "--partition_keys"}
    assert runner.resolve_arguments(awsglue.getResolvedOptions, glue_argv(JOB_NAME, unpartitioned, {})).partition_keys == []


@pytest.mark.parametrize("name", runner.GLUE_RESERVED_ARGS)
def test_getresolvedoptions_refuses_a_name_it_reserves_so_the_runner_never_asks_for_one(name):
    # Modelled on awsglue.utils.getResolvedOptions (glue-5.1): a reserved name in options fails before the job
    # does anything, with argparse's conflict ("conflicting option string") or "Using reserved arguments".
    argv = glue_argv(JOB_NAME, STATIC_DEFAULTS, {"--run_id": EXECUTION_NAME})
    with pytest.raises((argparse.ArgumentError, RuntimeError), match="conflicting option string|Using reserved arguments"):
        awsglue.getResolvedOptions(argv, ["JOB_NAME", name])
    assert name not in runner.REQUIRED_ARGS + runner.OPTIONAL_ARGS


def test_getresolvedoptions_requires_every_name_asked_for_and_ignores_the_rest():
    # Modelled on awsglue.utils.getResolvedOptions: every name in options is required; arguments nobody asked
    # for (Glue's own --enable-metrics, --job-language...) are ignored; the reserved ones come back anyway.
    argv = glue_argv(JOB_NAME, STATIC_DEFAULTS, {})
    resolved = awsglue.getResolvedOptions(argv, ["JOB_NAME", "sql_key"])
    assert (resolved["JOB_NAME"], resolved["JOB_RUN_ID"], resolved["job_bookmark_option"]) == (JOB_NAME, GLUE_JOB_RUN_ID, "job-bookmark-disable")
    assert "enable_metrics" not in resolved and "database" not in resolved
    with pytest.raises(awsglue.GlueArgumentError, match="required: --run_id"):
        awsglue.getResolvedOptions(argv, ["JOB_NAME", "run_id"])
    without_sql_key = [a for i, a in enumerate(argv) if a != "--sql_key" and argv[i - 1] != "--sql_key"]
    with pytest.raises(awsglue.GlueArgumentError, match="--sql_key"):
        runner.resolve_arguments(awsglue.getResolvedOptions, without_sql_key)


@pytest.mark.parametrize("value", ["", " , ", "accelerometer_landing,job_parameters"])
def test_input_tables_must_name_catalog_tables(value):
    argv = glue_argv(JOB_NAME, {**STATIC_DEFAULTS, "--input_tables": value}, {})
    with pytest.raises(runner.JobConfigurationError, match="--input_tables"):
        runner.resolve_arguments(awsglue.getResolvedOptions, argv)


def test_an_unknown_consent_policy_is_refused():
    argv = glue_argv(JOB_NAME, STATIC_DEFAULTS, {"--consent_policy": "always"})
    with pytest.raises(runner.JobConfigurationError, match="consent_policy"):
        runner.resolve_arguments(awsglue.getResolvedOptions, argv)


# --- The fakes' S3 requests (fake_s3.py); the real ones are checked on Spark (test_glue_jobs_on_spark.py) ----


def test_purge_s3_path_lists_the_prefix_and_deletes_everything_under_it_only():
    # GlueContext.purge_s3_path: deletes every object under the path, recursively (retentionPeriod 0: all).
    store = fake_s3.S3Store({BUCKET: {"customer/trusted/a": "", "customer/trusted/d/b": "", "customer/trusted2/c": ""}})
    fake_s3.purge_s3_path(store, f"s3://{BUCKET}/customer/trusted/", 0)
    assert [(c.op, c.key) for c in store.calls] == [
        ("LIST", "customer/trusted/"),
        ("DELETE", "customer/trusted/a"),
        ("DELETE", "customer/trusted/d/b"),
    ]
    assert sorted(store.bucket(BUCKET)) == ["customer/trusted2/c"]


def test_a_job_records_the_s3_requests_of_each_of_its_writers_and_readers():
    objects = {"accelerometer/landing/mixed.json": MIXED, "accelerometer/trusted/reading_date=2022-06-17/old.parquet": "old"}
    _, spark, _, _, _ = run("accelerometer_landing_to_trusted", objects=objects)
    by = {}
    for call in spark.s3.store.calls:
        by.setdefault(call.by, set()).add((call.op, call.key.split("/")[1] if "/" in call.key else call.key))
    assert ("GET", "landing") in by["spark.read.text"]
    assert "purge_s3_path" not in by
    assert {("GET", "validated"), ("PUT", "validated"), ("LIST", "validated"), ("LIST", "quarantine")} <= by["runner"]
    assert ("PUT", "quarantine") in by["spark json writer"]
    assert ("PUT", "validated") in by["spark parquet writer"]
    assert ("PUT", "trusted") in by["iceberg overwrite"]
    catalog_reads = {(c.op, c.key) for c in spark.s3.store.calls if c.by == "spark.table"}
    assert ("LIST", "customer/trusted/") in catalog_reads  # customer_trusted
    assert "accelerometer/trusted/reading_date=2022-06-17/old.parquet" not in spark.s3.objects
