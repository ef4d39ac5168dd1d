"""Runs one pipeline job on AWS Glue: the job's Spark SQL file over the Catalog tables it reads.

Every Glue job of the stack runs this script with its own arguments (serverless.yml, deploy/glue-resources.js):

  --sql_bucket          the bucket of the job's SQL file (the framework's deployment bucket)
  --sql_key             its content-addressed key, e.g. glue-assets/<sha256>/customer_trusted_to_curated.sql
  --database            the Glue database of the lake
  --bucket              the data bucket
  --target_table        the table the job replaces, e.g. customer_curated
  --target_prefix       its key prefix, e.g. customer/curated/
  --input_tables        comma-separated Catalog tables the SQL reads, as its `-- Reads:` header declares them
                        (generated at deploy time from src/definition/pipeline.ts; job_parameters is the runner's own)
  --partition_keys      optional: comma-separated partition columns (the last columns of the select list)
  --pii_salt_parameter  the NAME of the SSM SecureString holding the salt (never the value)
  --consent_policy      any | since-consent
  --run_id              optional: the Step Functions execution name (default: the Glue job run id)
  --diagnostic_keys     optional: comma-separated keys, in the SQL's bucket, of the job's diagnostics, the queries
                        its `-- Diagnostics:` header names (glue/queries/<name>.sql): one count each

What a run does, in the same order as the local engine (src/build/):
  1. reads the SQL; its input tables come from --input_tables, the job's declared inputs (no SQL scanning);
  2. binds each input table as a temp view of that name. A landing table's location and columns come
     from the Catalog (its DDL is glue/tables/); it is read from its validated copy, <dataset>/validated/,
     first brought in line with the landing prefix: only the objects that are new or whose ETag or size
     changed are checked, line by line with the local rules (a column whose comment starts with "required"
     must be present and non-null; a value must have the column's type), their valid records written as
     Parquet and their rejected lines to <dataset>/quarantine/ as JSON lines {source_file, line_number,
     reason, line, line_encoding} (a line that is not UTF-8 kept as base64); the entries of objects gone are dropped (see "The validated copy" below). Other tables
     are read from the Catalog;
  3. creates the one-row job_parameters view (pii_salt from SSM, read before anything is written;
     consent_policy; run_id);
  3b. decides, from the target's build record, to skip, append or build whole (see "Incremental builds"); an
     append rebinds its row-wise input to the new rows alone and commits with an Iceberg append;
  4. runs the SQL, caches the result and counts it, runs the job's diagnostics over its inputs, and replaces the target Iceberg table's rows with it in
     one commit through Iceberg's Glue catalog (the job's --datalake-formats iceberg and --conf), the run id
     in the snapshot's summary (stedi.run-id): readers see the previous snapshot or the new one, never a part,
     and a failure before the commit leaves the previous snapshot;
  5. replaces the table's record in the build log, checks/table_builds/<table>.json (its rows before and
     after, the run, the consent policy, the diagnostics' counts), which the data checks of glue/checks/ read through Athena, and
     publishes rows in, rows out, quarantined lines (new in this run, and in all) and diagnostics as CloudWatch metrics (namespace StediLakehouse).

The core takes its SparkSession, GlueContext and boto3 clients as arguments, so tests run it against fakes
without awsglue or pyspark installed; only main() imports them.
"""

from __future__ import annotations

import base64
import hashlib
import inspect
import json
import logging
import math
import re
import sys
import uuid
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any, Callable, Iterable, Iterator
from urllib.parse import unquote

JOB_PARAMETERS_TABLE = "job_parameters"
# The Iceberg catalog of the derived tables, as the jobs' --conf names it (deploy/glue-resources.js
# ICEBERG_CATALOG), and the snapshot summary key that records the run of each commit (`stedi tables --history`).
ICEBERG_CATALOG = "glue_catalog"
RUN_ID_SNAPSHOT_PROPERTY = "stedi.run-id"
# The table build log (src/definition/layout.ts TABLE_BUILDS_PREFIX) and the data metrics' namespace
# (deploy/operate-resources.js METRICS_NAMESPACE, the alarms' and the Glue role's condition).
TABLE_BUILDS_PREFIX = "checks/table_builds/"
METRICS_NAMESPACE = "StediLakehouse"
LANDING_SUFFIX = "_landing"
CONSENT_POLICIES = ("any", "since-consent")
MIN_SALT_LENGTH = 16

REQUIRED_ARGS = (
    "JOB_NAME",
    "sql_bucket",
    "sql_key",
    "database",
    "bucket",
    "target_table",
    "target_prefix",
    "input_tables",
    "pii_salt_parameter",
    "consent_policy",
)
# awsglue's getResolvedOptions requires every name it is asked for: these are asked for only when the run
# has them (a run started by hand has no --run_id, an unpartitioned table no --partition_keys, a job with no
# "-- Diagnostics:" header no --diagnostic_keys).
OPTIONAL_ARGS = ("run_id", "partition_keys", "diagnostic_keys", "wap_branch", "publish_tables")
# getResolvedOptions (aws-glue-libs glue-5.1, awsglue/utils.py) registers these itself, as Glue passes them,
# and returns them: naming one in its options fails at start-up (argparse: "conflicting option string", or
# "Using reserved arguments"). The job run id is read from its result instead.
GLUE_RESERVED_ARGS = (
    "JOB_ID",
    "JOB_RUN_ID",
    "SECURITY_CONFIGURATION",
    "job-bookmark-option",
    "continuation-option",
    "job-bookmark-from",
    "job-bookmark-to",
    "encryption-type",
    "enable-data-lineage",
)

# The Catalog types a landing column may have (src/sql/ddl.ts COLUMN_TYPES) and their ranges.
INTEGER_RANGES = {"bigint": (-(2**63), 2**63 - 1), "int": (-(2**31), 2**31 - 1)}
# The plausible epoch milliseconds of a timestamp column (a bigint column whose comment says "epoch ms"):
# from 1970-01-01T00:00:00Z up to, not including, 2100-01-01T00:00:00Z. The same numbers as EPOCH_MS_RANGE
# in src/sql/landing-rules.ts; outside them a value is rejected with a reason of its own (and never reaches Spark's
# timestamp_millis, which overflows on 9223372036854775807).
EPOCH_MS_MIN = 0
EPOCH_MS_END = 4_102_444_800_000
EPOCH_MS_RANGE_TEXT = "from 1970-01-01 to 2100-01-01"
# The longest landing line read as a record, in bytes (MAX_LINE_BYTES in src/sql/landing-rules.ts: DuckDB's
# JSON reader's maximum object size). A longer line is rejected unparsed and kept whole in the quarantine.
MAX_LINE_BYTES = 16 * 1024 * 1024
# A line of only these is blank, no record (DuckDB's JSON reader skips such lines locally).
BLANK = " \t\r\f\v"
COLUMN_TYPES = ("string", "bigint", "int", "double")

logger = logging.getLogger("run_sql_job")


class JobConfigurationError(Exception):
    """The job's arguments, SQL or Catalog definitions do not fit together."""


class SaltError(Exception):
    """The PII salt parameter is missing or too short. The message never holds the value."""


def log_event(message: str, **fields: Any) -> None:
    """One structured log line: a short lowercase message, the data in keys."""
    logger.info(json.dumps({"message": message, **fields}, default=str, sort_keys=True))


# --- Landing records: the same checks and reasons as src/build/landing-sql.ts ---------------------------


@dataclass(frozen=True)
class LandingColumn:
    name: str
    type: str
    required: bool
    epoch_millis: bool = False


@dataclass(frozen=True)
class LandingTable:
    name: str
    dataset: str
    location: str
    columns: tuple[LandingColumn, ...]


def json_type_word(value: Any) -> str:
    """How a reason names a JSON value's type (the words of the local engine)."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int):
        return "an integer"
    if isinstance(value, float):
        return "a number with a fraction"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "an array"
    if isinstance(value, dict):
        return "an object"
    return type(value).__name__


class JsonFloat(float):
    """A JSON number with a fraction or an exponent (or NaN, Infinity), keeping its text for reasons."""

    text: str

    def __new__(cls, text: str) -> "JsonFloat":
        value = super().__new__(cls, text)
        value.text = text
        return value


def _first_of_each_key(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    record: dict[str, Any] = {}
    for key, value in pairs:
        record.setdefault(key, value)
    return record


# As DuckDB reads JSON locally: NaN and Infinity (not JSON) are numbers, rejected in a double column as
# out of range like 1e400 (Infinity once parsed); of a repeated key the first value counts.
def _json_loads(line: str) -> Any:
    return json.loads(line, parse_float=JsonFloat, parse_constant=JsonFloat, object_pairs_hook=_first_of_each_key)


def check_record(line: str, columns: Iterable[LandingColumn]) -> tuple[str | None, tuple[Any, ...]]:
    """(reason, ()) for a rejected line, (None, typed values in column order) for a valid one."""
    try:
        record = _json_loads(line)
    except ValueError:
        return "not valid JSON", ()
    if not isinstance(record, dict):
        return f"not a JSON object: found {json_type_word(record)}", ()
    values: list[Any] = []
    lowered: dict[str, Any] | None = None
    for column in columns:
        if column.name in record:
            value = record[column.name]
        else:
            # The Catalog may hold a column name lowercased; the JSON SerDe matches keys case-insensitively.
            if lowered is None:
                lowered = {key.lower(): v for key, v in record.items()}
            value = lowered.get(column.name.lower())
        if value is None:
            if column.required:
                return f'missing required field "{column.name}"', ()
            values.append(None)
            continue
        is_integer = isinstance(value, int) and not isinstance(value, bool)
        if column.type == "string":
            ok = isinstance(value, str)
        elif column.type in INTEGER_RANGES:
            ok = is_integer
        else:  # double: any JSON number
            ok = is_integer or isinstance(value, float)
        if not ok:
            return f'field "{column.name}" must be {column.type}, found {json_type_word(value)}', ()
        if column.type in INTEGER_RANGES:
            low, high = INTEGER_RANGES[column.type]
            if not low <= value <= high:
                return f'field "{column.name}" is out of range for {column.type}: {value}', ()
            if column.epoch_millis and not EPOCH_MS_MIN <= value < EPOCH_MS_END:
                return f'field "{column.name}" is not a plausible epoch-ms time ({EPOCH_MS_RANGE_TEXT}): {value}', ()
        elif column.type == "double":
            try:
                number = float(value)
            except OverflowError:  # an integer of 309 digits or more
                number = math.inf
            if not math.isfinite(number):
                text = value.text if isinstance(value, JsonFloat) else str(value)
                return f'field "{column.name}" is out of range for double: {text}', ()
            value = number
        values.append(value)
    return None, tuple(values)


NOT_UTF8_REASON = "not valid UTF-8 text"


def kept_line(raw: bytes) -> tuple[str, str]:
    """(line, line_encoding) of a rejected line, byte for byte as src/build/landing.ts keeps it: the text when
    it is UTF-8 ("text"), else its bytes in base64 ("base64"), which JSON text can hold."""
    try:
        return raw.decode("utf-8"), "text"
    except UnicodeDecodeError:
        return base64.b64encode(raw).decode("ascii"), "base64"


def parse_landing_file(source_file: str, content: bytes | str, columns: tuple[LandingColumn, ...]) -> Iterator[tuple]:
    """Rows (reason, source_file, line_number, line, line_encoding, *values) for every non-blank line of one file.

    As locally: a line longer than MAX_LINE_BYTES or not UTF-8 is rejected unparsed; a UTF-8 BOM at the start
    of the file and CR line ends are stripped before the check, the rejected line is kept exactly as it was
    (kept_line), blank lines are skipped but counted in line numbers.
    """
    data = content.encode("utf-8") if isinstance(content, str) else bytes(content)
    empty = (None,) * len(columns)
    for index, raw in enumerate(data.split(b"\n")):
        if len(raw) > MAX_LINE_BYTES:
            yield (f"line longer than {MAX_LINE_BYTES} bytes", source_file, index + 1, *kept_line(raw), *empty)
            continue
        try:
            raw_line = raw.decode("utf-8")
        except UnicodeDecodeError:
            yield (NOT_UTF8_REASON, source_file, index + 1, *kept_line(raw), *empty)
            continue
        line = raw_line.lstrip("\ufeff") if index == 0 else raw_line
        line = line.rstrip("\r")
        if line.strip(BLANK) == "":
            continue
        reason, values = check_record(line, columns)
        if reason is None:
            yield (None, source_file, None, None, None, *values)
        else:
            yield (reason, source_file, index + 1, raw_line, "text", *empty)


def landing_table_from_catalog(glue: Any, database: str, name: str) -> LandingTable:
    """A landing table's location and columns, with "required" read from the column comments."""
    table = glue.get_table(DatabaseName=database, Name=name)["Table"]
    descriptor = table["StorageDescriptor"]
    columns = []
    for column in descriptor["Columns"]:
        column_type = column["Type"].lower()
        if column_type not in COLUMN_TYPES:
            raise JobConfigurationError(f"{name}.{column['Name']} has type {column_type}; supported: {', '.join(COLUMN_TYPES)}")
        comment = column.get("Comment", "")
        required = re.match(r"required\b", comment, re.IGNORECASE) is not None
        epoch_millis = column_type == "bigint" and re.search(r"\bepoch ms\b", comment, re.IGNORECASE) is not None
        columns.append(LandingColumn(column["Name"], column_type, required, epoch_millis))
    return LandingTable(name, name[: -len(LANDING_SUFFIX)], descriptor["Location"], tuple(columns))


def split_s3_uri(uri: str) -> tuple[str, str]:
    m = re.match(r"s3a?://([^/]+)/?(.*)$", uri)
    if not m:
        raise JobConfigurationError(f"not an S3 location: {uri}")
    return m.group(1), m.group(2)


@dataclass(frozen=True)
class LandingObject:
    """A landing file as S3 lists it: its key and what identifies its content (ETag and size)."""

    key: str
    etag: str
    size: int


def landing_objects(s3: Any, location: str) -> list[LandingObject]:
    """The .json objects directly under a landing location (not in sub-folders), sorted by key."""
    bucket, prefix = split_s3_uri(location)
    if prefix and not prefix.endswith("/"):
        prefix += "/"
    found: list[LandingObject] = []
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
        for obj in page.get("Contents", []):
            rest = obj["Key"][len(prefix) :]
            if rest.endswith(".json") and "/" not in rest:
                found.append(LandingObject(obj["Key"], obj["ETag"], int(obj["Size"])))
    return sorted(found, key=lambda o: o.key)


# Spark's file readers expand every path with Hadoop's FileSystem.globStatus, where these characters are
# special and a backslash makes the next one literal: a landing key such as acc*.json must read one file.
HADOOP_GLOB_SPECIAL = frozenset("\\*?[]{}")


def hadoop_literal(path: str) -> str:
    """A path as Hadoop's glob matches it literally: each special character escaped with a backslash."""
    return "".join("\\" + ch if ch in HADOOP_GLOB_SPECIAL else ch for ch in path)


def landing_schema(table: LandingTable) -> str:
    columns = ", ".join(f"`{c.name}` {c.type}" for c in table.columns)
    return f"reason string, source_file string, line_number bigint, line string, line_encoding string, {columns}"


# A quarantine record (src/definition/support-tables.ts QUARANTINE_COLUMNS).
QUARANTINE_SCHEMA = "source_file string, line_number bigint, reason string, line string, line_encoding string"


def validated_schema(table: LandingTable) -> str:
    return "source_file string, " + ", ".join(f"`{c.name}` {c.type}" for c in table.columns)


# --- The validated copy: each landing file checked once (src/build/validated.ts on the local engine) ---
#
# <dataset>/validated/ keeps each landing file's valid records, typed as the Catalog's landing table says,
# as Parquet, and <dataset>/quarantine/ its rejected lines as JSON lines, both in batch folders (the files
# checked together by one run: <prefix><batch>/part-*). The manifest <dataset>/validated/_manifest.json
# names, per landing file, its ETag and size, its batch and counts, and the version of the checking rules.
# A run brings the copy in line with the landing prefix: it checks only the files that are new or whose
# ETag or size changed, drops the entries of files that are gone, and reuses the rest untouched. A batch
# holding an entry dropped is rewritten (from its Parquet and JSON, never from landing) without it, into
# the run's new batch. The manifest is the commit point: written after the new batch's objects, and the
# objects of batches it no longer names are deleted after it. A run that dies before it leaves the old
# manifest and some objects that the next run deletes; Athena, which reads the prefix without the
# manifest, may see a replaced file's records twice until then.

VALIDATED_MANIFEST = "_manifest.json"
# Bumped when what the runner writes in the validated copy changes shape: every copy is then made again.
VALIDATED_REVISION = 1


def validated_prefix(dataset: str) -> str:
    return f"{dataset}/validated/"


def quarantine_prefix(dataset: str) -> str:
    return f"{dataset}/quarantine/"


def rules_version(table: LandingTable) -> str:
    """A hash of the landing table's columns (the Catalog's, from the DDL), the rule numbers and the code that
    checks a line: a change to any of them makes every validated entry stale. Salt and consent play no part."""
    code = "".join(inspect.getsource(f) for f in (check_record, parse_landing_file, kept_line, _json_loads, _first_of_each_key, json_type_word))
    inputs = {
        "revision": VALIDATED_REVISION,
        "python": list(sys.version_info[:2]),
        "columns": [[c.name, c.type, c.required, c.epoch_millis] for c in table.columns],
        "rules": [EPOCH_MS_MIN, EPOCH_MS_END, MAX_LINE_BYTES, BLANK, sorted(INTEGER_RANGES.items())],
        "code": hashlib.sha256(code.encode("utf-8")).hexdigest(),
    }
    return hashlib.sha256(json.dumps(inputs, sort_keys=True).encode("utf-8")).hexdigest()[:16]


def error_code(error: Exception) -> str | None:
    """The S3 error code of a botocore ClientError (NoSuchKey...), None for anything else."""
    response = getattr(error, "response", None)
    return response.get("Error", {}).get("Code") if isinstance(response, dict) else None


def read_manifest(s3: Any, bucket: str, dataset: str) -> dict | None:
    """The committed manifest of a dataset's validated copy; None when there is none yet."""
    try:
        body = s3.get_object(Bucket=bucket, Key=validated_prefix(dataset) + VALIDATED_MANIFEST)["Body"].read()
    except Exception as error:  # botocore's ClientError, told by its code
        if error_code(error) in ("NoSuchKey", "404"):
            return None
        raise
    return json.loads(body)


@dataclass
class SyncPlan:
    reuse: list[str] = field(default_factory=list)  # landing keys whose entries are reused
    check: list[LandingObject] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)  # landing keys gone from landing
    dirty_batches: set[str] = field(default_factory=set)  # batches holding an entry not reused


def plan_sync(objects: list[LandingObject], manifest: dict | None, rules: str) -> SyncPlan:
    """Compares the landing objects with the manifest: an entry is reused when its object has the same ETag and
    size and the rules are the same; the other objects are checked; the entries of objects gone are dropped."""
    entries = manifest["files"] if manifest and manifest["rules"] == rules else {}
    plan = SyncPlan()
    present = {o.key for o in objects}
    for obj in objects:
        entry = entries.get(obj.key)
        if entry and entry["etag"] == obj.etag and entry["size"] == obj.size:
            plan.reuse.append(obj.key)
        else:
            plan.check.append(obj)
    reused = set(plan.reuse)
    for key, entry in (manifest or {}).get("files", {}).items():
        if key in reused:
            continue
        if key not in present:
            plan.removed.append(key)
        plan.dirty_batches.add(entry["batch"])
    return plan


@dataclass
class BoundLandingTable:
    valid: int
    rejected: int
    checked: int = 0
    reused: int = 0
    removed: int = 0
    # The rejected lines of the files this run checked (new or changed): news, where `rejected` is every file's.
    newly_rejected: int = 0
    # The committed manifest the view reads: the segments the build log records (incremental builds).
    manifest: dict | None = None
    table: LandingTable | None = None


def new_batch_name(run_id: str) -> str:
    safe = re.sub(r"[^A-Za-z0-9_.-]", "_", run_id)[:80]
    return f"batch-{safe}-{uuid.uuid4().hex[:8]}"


def bind_landing_table(
    spark: Any, glue_context: Any, s3: Any, glue: Any, bucket: str, database: str, name: str, run_id: str
) -> BoundLandingTable:
    """Brings the landing table's validated copy in line with its landing prefix, then binds the copy's records
    as a temp view of the table's name."""
    table = landing_table_from_catalog(glue, database, name)
    rules = rules_version(table)
    manifest = read_manifest(s3, bucket, table.dataset)
    plan = plan_sync(landing_objects(s3, table.location), manifest, rules)
    if manifest is None or manifest["rules"] != rules or plan.check or plan.removed:
        manifest = refresh_validated_copy(spark, glue_context, s3, bucket, table, rules, manifest, plan, run_id)
    # Every run, so what a run that died after its manifest left goes too (two LIST requests when there is none).
    live = {e["batch"] for e in manifest["files"].values()}
    for prefix in (validated_prefix(table.dataset), quarantine_prefix(table.dataset)):
        delete_unnamed_objects(s3, bucket, prefix, live)
    valid = sum(e["records"] for e in manifest["files"].values())
    rejected = sum(e["rejected"] for e in manifest["files"].values())
    validated_records(spark, bucket, table, manifest).select(*[c.name for c in table.columns]).createOrReplaceTempView(name)
    newly_rejected = sum(manifest["files"][o.key]["rejected"] for o in plan.check)
    bound = BoundLandingTable(valid, rejected, len(plan.check), len(plan.reuse), len(plan.removed), newly_rejected, manifest, table)
    log_event("landing table bound", table=name, files=len(manifest["files"]), checked=bound.checked, reused=bound.reused, removed=bound.removed, valid=valid, rejected=rejected)
    return bound


def batch_uri(bucket: str, prefix: str, batch: str) -> str:
    return f"s3://{bucket}/{prefix}{batch}/"


def validated_records(spark: Any, bucket: str, table: LandingTable, manifest: dict) -> Any:
    """The copy's records (source_file and the table's columns) from the Parquet of the batches the manifest names."""
    batches = sorted({e["batch"] for e in manifest["files"].values() if e["records"] > 0})
    if not batches:
        return spark.createDataFrame([], validated_schema(table))
    # The schema given, Spark reads no Parquet footer to infer it: binding the whole copy fetches nothing, so a
    # run that then binds only the new files' rows (an append) reads those alone.
    return spark.read.schema(validated_schema(table)).parquet(*[batch_uri(bucket, validated_prefix(table.dataset), b) for b in batches])


def refresh_validated_copy(
    spark: Any, glue_context: Any, s3: Any, bucket: str, table: LandingTable, rules: str, manifest: dict | None, plan: SyncPlan, run_id: str
) -> dict:
    """Writes the run's batch (the files checked, and the reused entries of batches to rewrite), then the new
    manifest (the caller then deletes the objects of the batches it no longer names). Returns the new manifest."""
    batch = new_batch_name(run_id)
    old = manifest if manifest and manifest["rules"] == rules else {"files": {}}
    kept = [key for key in plan.reuse if old["files"][key]["batch"] in plan.dirty_batches]
    parsed = parse_landing_objects(spark, bucket, table, plan.check).persist()
    carried, carried_rejects = carried_rows(spark, bucket, table, old, kept)
    records = parsed.where("reason is null").select("source_file", *[c.name for c in table.columns]).union(carried)
    rejects = parsed.where("reason is not null").select("source_file", "line_number", "reason", "line", "line_encoding").union(carried_rejects)
    counts = per_file_counts(parsed)
    # No batch without records: validated_records reads only batches with some.
    if sum(valid for valid, _ in counts.values()) + sum(old["files"][k]["records"] for k in kept) > 0:
        records.write.mode("overwrite").parquet(batch_uri(bucket, validated_prefix(table.dataset), batch))
    if any(rejected for _, rejected in counts.values()) or any(old["files"][k]["rejected"] for k in kept):
        rejects.coalesce(1).sortWithinPartitions("source_file", "line_number").write.mode("overwrite").json(
            batch_uri(bucket, quarantine_prefix(table.dataset), batch)
        )
    parsed.unpersist()
    files = {key: dict(old["files"][key]) for key in plan.reuse}
    for key in kept:
        files[key]["batch"] = batch
    for obj in plan.check:
        valid, rejected = counts.get(obj.key, (0, 0))
        files[obj.key] = {"etag": obj.etag, "size": obj.size, "records": valid, "rejected": rejected, "batch": batch}
    new_manifest = {"rules": rules, "files": files}
    s3.put_object(
        Bucket=bucket,
        Key=validated_prefix(table.dataset) + VALIDATED_MANIFEST,
        Body=json.dumps(new_manifest, sort_keys=True).encode("utf-8"),
        ContentType="application/json",
    )
    return new_manifest


def parse_landing_objects(spark: Any, bucket: str, table: LandingTable, objects: list[LandingObject]) -> Any:
    """Every line of the objects, parsed and checked: rows (reason, source_file, line_number, line, *values).

    Each file is read whole (wholetext) so that a rejected line is named by its file and line number as
    locally; a landing file must therefore fit in one executor's memory (G.1X: 16 GB), far above the
    files the STEDI app drops. Spark's line-oriented readers would lose the line numbers. The text source
    keeps a file's bytes unchecked (TextFileFormat.readToUnsafeMem writes the Text's bytes as they are) and
    the cast to binary hands them over as they are: a line that is not UTF-8 reaches parse_landing_file
    byte for byte, never with U+FFFD in place of its bytes as the string would.
    """
    columns = table.columns
    bucket_root = f"s3://{bucket}/"

    def parse(row: Any) -> Iterator[tuple]:
        path = unquote(row[0])
        source_file = path[len(bucket_root) :] if path.startswith(bucket_root) else path
        return parse_landing_file(source_file, row[1] or b"", columns)

    rows: Any = []
    if objects:
        texts = spark.read.text([hadoop_literal(f"{bucket_root}{o.key}") for o in objects], wholetext=True).selectExpr(
            "input_file_name() as path", "cast(value as binary) as content"
        )
        rows = texts.rdd.flatMap(parse)
    return spark.createDataFrame(rows, landing_schema(table))


def per_file_counts(parsed: Any) -> dict[str, tuple[int, int]]:
    """{landing key: (valid records, rejected lines)} of the files parsed."""
    counts: dict[str, list[int]] = {}
    for index, condition in ((0, "reason is null"), (1, "reason is not null")):
        for row in parsed.where(condition).groupBy("source_file").count().collect():
            counts.setdefault(row[0], [0, 0])[index] = int(row[1])
    return {key: (valid, rejected) for key, (valid, rejected) in counts.items()}


def carried_rows(spark: Any, bucket: str, table: LandingTable, manifest: dict, kept: list[str]) -> tuple[Any, Any]:
    """The records and rejected lines of reused entries whose batch is rewritten, read from that batch's Parquet
    and JSON (never from landing)."""
    columns = [c.name for c in table.columns]
    records = spark.createDataFrame([], validated_schema(table))
    rejects = spark.createDataFrame([], QUARANTINE_SCHEMA)
    if not kept:
        return records, rejects
    keys = spark.createDataFrame([(k,) for k in kept], "source_file string")
    batches = sorted({manifest["files"][k]["batch"] for k in kept})
    with_records = sorted({manifest["files"][k]["batch"] for k in kept if manifest["files"][k]["records"] > 0})
    with_rejects = sorted({manifest["files"][k]["batch"] for k in kept if manifest["files"][k]["rejected"] > 0})
    if with_records:
        paths = [batch_uri(bucket, validated_prefix(table.dataset), b) for b in with_records]
        records = spark.read.parquet(*paths).join(keys, "source_file", "left_semi").select("source_file", *columns)
    if with_rejects:
        paths = [batch_uri(bucket, quarantine_prefix(table.dataset), b) for b in with_rejects]
        rejects = (
            read_quarantine(spark, paths)
            .join(keys, "source_file", "left_semi")
            .select("source_file", "line_number", "reason", "line", "line_encoding")
        )
    log_event("validated batches rewritten", dataset=table.dataset, batches=batches, entries=len(kept))
    return records, rejects



def read_quarantine(spark: Any, paths: list[str]) -> Any:
    """The rejected lines of quarantine batches (JSON lines), parsed by Python's json, not Spark's JSON reader:
    Spark 3.5's Jackson refuses a string of more than 20,000,000 characters (StreamReadConstraints), and a
    rejected line is kept whole, up to and beyond 16 MiB (a 40 MB line read that way came back as nulls)."""

    def parse(row: Any) -> list[tuple]:
        if not row[0].strip():
            return []
        entry = json.loads(row[0])
        fields = ("source_file", "line_number", "reason", "line", "line_encoding")
        return [tuple(entry.get(name) for name in fields)]

    return spark.createDataFrame(spark.read.text(paths).rdd.flatMap(parse), QUARANTINE_SCHEMA)


def delete_unnamed_objects(s3: Any, bucket: str, prefix: str, live: set[str]) -> None:
    """Deletes every object under the prefix but the manifest and those of the live batches (their S3A directory
    markers, "<batch>/", included): what earlier runs replaced, and what a run that died before its manifest left."""
    garbage = []
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
        for obj in page.get("Contents", []):
            rest = obj["Key"][len(prefix) :]
            batch = rest.split("/", 1)[0]
            if rest != VALIDATED_MANIFEST and batch not in live:
                garbage.append(obj["Key"])
    for start in range(0, len(garbage), 1000):  # DeleteObjects takes at most 1,000 keys
        s3.delete_objects(Bucket=bucket, Delete={"Objects": [{"Key": k} for k in garbage[start : start + 1000]], "Quiet": True})


# --- The job ------------------------------------------------------------------------------------------


@dataclass
class JobArguments:
    job_name: str
    sql_bucket: str
    sql_key: str
    database: str
    bucket: str
    target_table: str
    target_prefix: str
    pii_salt_parameter: str
    consent_policy: str
    run_id: str
    input_tables: list[str] = field(default_factory=list)
    partition_keys: list[str] = field(default_factory=list)
    diagnostic_keys: list[str] = field(default_factory=list)
    # Write, audit, publish (see "Write, audit, publish" below): the run's Iceberg branch, and in a publish run
    # the tables whose main moves to it.
    wap_branch: str | None = None
    publish_tables: list[str] = field(default_factory=list)

    @property
    def target_path(self) -> str:
        prefix = self.target_prefix if self.target_prefix.endswith("/") else self.target_prefix + "/"
        return f"s3://{self.bucket}/{prefix}"


def comma_separated(value: str) -> list[str]:
    return [part.strip() for part in value.split(",") if part.strip()]


def arguments_passed(argv: list[str]) -> set[str]:
    """The names of the --name value (or --name=value) arguments in argv, script path excluded."""
    return {arg[2:].split("=", 1)[0] for arg in argv[1:] if arg.startswith("--")}


def resolve_arguments(get_resolved_options: Callable[[list[str], list[str]], dict], argv: list[str]) -> JobArguments:
    """The job's arguments; run_id and partition_keys may be left out (a run started from the console).

    The run id is the state machine's --run_id, else the JOB_RUN_ID that getResolvedOptions returns itself.
    """
    passed = arguments_passed(argv)
    names = list(REQUIRED_ARGS) + [n for n in OPTIONAL_ARGS if n in passed]
    args = get_resolved_options(argv, names)
    if args["consent_policy"] not in CONSENT_POLICIES:
        raise JobConfigurationError(f"--consent_policy must be one of {', '.join(CONSENT_POLICIES)}, got {args['consent_policy']}")
    partition_keys = comma_separated(args.get("partition_keys", ""))
    input_tables = comma_separated(args["input_tables"])
    if not input_tables or JOB_PARAMETERS_TABLE in input_tables:
        raise JobConfigurationError(
            f"--input_tables must name the Catalog tables the SQL reads ({JOB_PARAMETERS_TABLE} excluded), got {args['input_tables']!r}"
        )
    return JobArguments(
        job_name=args["JOB_NAME"],
        sql_bucket=args["sql_bucket"],
        sql_key=args["sql_key"],
        database=args["database"],
        bucket=args["bucket"],
        target_table=args["target_table"],
        target_prefix=args["target_prefix"],
        pii_salt_parameter=args["pii_salt_parameter"],
        consent_policy=args["consent_policy"],
        run_id=args.get("run_id") or args.get("JOB_RUN_ID") or "manual",  # JOB_RUN_ID: None outside Glue
        input_tables=input_tables,
        partition_keys=partition_keys,
        diagnostic_keys=comma_separated(args.get("diagnostic_keys", "")),
        wap_branch=checked_branch_name(args["wap_branch"]) if args.get("wap_branch") else None,
        publish_tables=publish_tables_argument(args),
    )


def fetch_salt(ssm: Any, parameter_name: str) -> str:
    """The PII salt from an SSM SecureString, decrypted. Never logged, never in an error message."""
    try:
        value = ssm.get_parameter(Name=parameter_name, WithDecryption=True)["Parameter"]["Value"]
    except Exception as error:  # boto3's ParameterNotFound and AccessDenied have no common import
        raise SaltError(f"cannot read the PII salt parameter {parameter_name}: {type(error).__name__}") from error
    if len(value) < MIN_SALT_LENGTH:
        raise SaltError(f"the PII salt in {parameter_name} must have at least {MIN_SALT_LENGTH} characters")
    return value


def read_sql(s3: Any, bucket: str, key: str) -> str:
    return s3.get_object(Bucket=bucket, Key=key)["Body"].read().decode("utf-8")


def iceberg_table(database: str, table: str) -> str:
    """A derived table's name in the Iceberg catalog the job's --conf configures."""
    return f"{ICEBERG_CATALOG}.`{database}`.`{table}`"


def all_rows() -> Any:
    """The condition of a whole-table overwrite (a Column: needs pyspark, imported only when writing)."""
    from pyspark.sql.functions import lit

    return lit(True)


def write_target(result: Any, args: JobArguments) -> None:
    """Replaces the target Iceberg table's rows with the result in ONE commit (DataFrameWriterV2 overwrite of
    every row: Iceberg's OverwriteFiles, Apache Iceberg "Spark Writes", "Overwriting data"): readers see the
    previous snapshot or the new one, never a part; a job failing before the commit leaves the previous one.
    The snapshot's summary records the run under RUN_ID_SNAPSHOT_PROPERTY (the write option
    snapshot-property.<key>, Iceberg "Spark Configuration", "Write options"). The table, its schema and
    partition spec are the stack's (deploy/glue-resources.js): the write matches columns by name."""
    columns = list(result.columns)
    if args.partition_keys and columns[-len(args.partition_keys) :] != args.partition_keys:
        raise JobConfigurationError(
            f"the partition keys {args.partition_keys} must be the last columns of {args.target_table}, got {columns}"
        )
    (
        result.writeTo(iceberg_table(args.database, args.target_table))
        .option(f"snapshot-property.{RUN_ID_SNAPSHOT_PROPERTY}", args.run_id)
        .overwrite(all_rows())
    )


# --- Incremental builds: a drop costs what it brings (docs/incremental-builds.md, docs/glue-engine.md) ----
#
# Each build record names what the table was built from (`built_from`): per landing input its validated
# copy's rules and entries (landing key -> [ETag, size]), per derived input the Iceberg snapshot it read,
# with the hash of the SQL and parameters (`base`), the table's own snapshot after the build and its content
# (row count, sum of row hashes). The next run then, as the local engine does:
#   skip    when the base, the inputs and the table are those recorded (no query, no commit);
#   append  when only one input changed, it is row-wise (`-- Row-wise in:`) and it only gained rows: the job
#           runs with that input bound to the new rows alone and appends them in one Iceberg commit;
#   build   otherwise (overwrite, as before). A rebuild that gives the recorded content makes no commit, so
#           the jobs after it see their input unchanged.

INCREMENTAL_REVISION = 1
SAME, GREW, CHANGED = "same", "grew", "changed"


@dataclass(frozen=True)
class BuildPlan:
    action: str  # "skip" | "append" | "build"
    input: str | None = None  # the row-wise input bound to its new rows (append)
    reason: str = ""


def row_wise_inputs(sql: str) -> list[str]:
    """The inputs the job's header declares row-wise: `-- Row-wise in: a, b.` (src/definition/pipeline.ts rowWiseInputs)."""
    header = re.search(r"^--\s*Row-wise in:([^.]*)\.", sql, re.IGNORECASE | re.MULTILINE)
    return comma_separated(header.group(1)) if header else []


def build_base(args: JobArguments, sql: str, salt: str) -> str:
    """A hash of what, besides its inputs, decides the job's rows: the SQL, the target and its partition keys,
    the consent policy and the salt's fingerprint (never the salt)."""
    inputs = {
        "revision": INCREMENTAL_REVISION,
        "sql": hashlib.sha256(sql.encode("utf-8")).hexdigest(),
        "target": args.target_table,
        "partition_keys": args.partition_keys,
        "consent_policy": args.consent_policy,
        "salt": hashlib.sha256(("stedi-salt-fingerprint:" + salt).encode("utf-8")).hexdigest(),
    }
    return hashlib.sha256(json.dumps(inputs, sort_keys=True).encode("utf-8")).hexdigest()


def landing_segments(manifest: dict) -> dict:
    return {"rules": manifest["rules"], "files": {key: [e["etag"], e["size"]] for key, e in sorted(manifest["files"].items())}}


def landing_change(recorded: dict, current: dict) -> tuple[str, list[str]]:
    """SAME, GREW (with the new landing keys) or CHANGED: GREW when every recorded entry is still there as it was."""
    if recorded.get("rules") != current["rules"]:
        return CHANGED, []
    old, now = recorded.get("files", {}), current["files"]
    if any(now.get(key) != value for key, value in old.items()):
        return CHANGED, []
    added = sorted(set(now) - set(old))
    return (GREW, added) if added else (SAME, [])


def snapshot_change(recorded_id: int | None, current_id: int | None, snapshots: dict[int, tuple[int | None, str]]) -> str:
    """SAME, GREW or CHANGED for a derived input: GREW when the recorded snapshot is an ancestor of the current
    one and every snapshot after it is an append (Iceberg's incremental read takes appends only: "Spark
    Queries", "Incremental read"). `snapshots`: id -> (parent id, operation)."""
    if recorded_id == current_id:
        return SAME
    if recorded_id is None:
        return CHANGED  # recorded empty and never written: an incremental read needs a start snapshot
    walked = current_id
    while walked is not None and walked != recorded_id:
        parent, operation = snapshots.get(walked, (None, None))
        if operation != "append":
            return CHANGED
        walked = parent
    return GREW if walked == recorded_id else CHANGED


def describes_what_is_read(record: dict | None, branch: str | None) -> bool:
    """Whether a build record describes the table as this run reads it: main's build (no branch), or a build on
    this run's own branch. Another run's branch that was never published (its checks failed) is not what main
    holds, and the build log has one record a table, outside Iceberg's branches."""
    return record is not None and record.get("branch") in (None, branch)


def plan_build(
    previous: dict | None, base: str, changes: dict[str, str], row_wise: list[str], target_snapshot: int | None, branch: str | None = None
) -> BuildPlan:
    """The decision, from the previous build record and each input's change since it."""
    if previous is None or "built_from" not in previous:
        return BuildPlan("build", reason="no build record with its inputs")
    # A build on another run's branch that was never published (its checks failed) is not what this run's
    # table holds: no base to skip or append from. A retry of the same run may reuse its own branch's build.
    if not describes_what_is_read(previous, branch):
        return BuildPlan("build", reason=f"the last build was on run branch {previous['branch']}, never published")
    if previous.get("base") != base:
        return BuildPlan("build", reason="the SQL or the parameters changed")
    if previous.get("snapshot_id") != target_snapshot:
        return BuildPlan("build", reason="the table changed since its last build")
    if set(previous["built_from"]) != set(changes):
        return BuildPlan("build", reason="the job's inputs changed")
    changed = sorted(name for name, change in changes.items() if change != SAME)
    if not changed:
        return BuildPlan("skip", reason="nothing changed")
    if len(changed) == 1 and changes[changed[0]] == GREW and changed[0] in row_wise:
        return BuildPlan("append", changed[0], "a row-wise input only gained rows")
    return BuildPlan("build", reason=f"{', '.join(changed)} changed")


def table_snapshots(spark: Any, database: str, table: str, branch: str | None = None) -> tuple[int | None, dict[int, tuple[int | None, str]]]:
    """The snapshot the job reads of the table (None: no snapshot yet): the head of the run's branch when it has
    one (--wap_branch: the run wrote the table there), else main's; and every snapshot's parent and operation,
    from Iceberg's metadata tables refs and snapshots ("Spark Queries", "Inspecting tables")."""
    name = iceberg_table(database, table)
    heads = branch_heads(spark, database, table)
    head = heads.get(branch) if branch and branch in heads else heads.get(MAIN_BRANCH)
    snapshots = {
        int(row[0]): (None if row[1] is None else int(row[1]), row[2])
        for row in spark.sql(f"SELECT snapshot_id, parent_id, operation FROM {name}.snapshots").collect()
    }
    return (None if head is None else int(head)), snapshots


def bind_new_landing_rows(spark: Any, bound_table: LandingTable, bucket: str, manifest: dict, new_keys: list[str]) -> Any:
    """Binds the landing view to the valid records of the new landing files alone (their validated entries)."""
    only = {"rules": manifest["rules"], "files": {key: manifest["files"][key] for key in new_keys}}
    records = validated_records(spark, bucket, bound_table, only)
    if any(e["records"] > 0 for e in only["files"].values()):
        keys = spark.createDataFrame([(k,) for k in new_keys], "source_file string")
        records = records.join(keys, "source_file", "left_semi")
    return records.select(*[c.name for c in bound_table.columns])


def bind_new_table_rows(spark: Any, database: str, table: str, start: int, end: int) -> Any:
    """The rows appended to a derived table after snapshot `start` up to `end` (Iceberg incremental read;
    start exclusive, end inclusive)."""
    return (
        spark.read.format("iceberg")
        .option("start-snapshot-id", str(start))
        .option("end-snapshot-id", str(end))
        .load(f"{ICEBERG_CATALOG}.{database}.{table}")
    )


def content_of(frame: Any) -> list:
    """[rows, sum of the rows' 64-bit hashes]: order-free, and additive, so an append's is the sum of two."""
    row = frame.selectExpr("count(1) as n", "cast(coalesce(sum(cast(xxhash64(*) as decimal(38,0))), 0) as string) as h").collect()[0]
    return [int(row[0]), str(row[1])]


def add_contents(a: list, b: list) -> list:
    return [a[0] + b[0], str(int(a[1]) + int(b[1]))]


def append_target(result: Any, args: JobArguments) -> None:
    """Adds the result's rows to the target Iceberg table in ONE commit (DataFrameWriterV2 append: Iceberg's
    AppendFiles, "Spark Writes", "Appending data"), the run in the snapshot summary as write_target records it."""
    columns = list(result.columns)
    if args.partition_keys and columns[-len(args.partition_keys) :] != args.partition_keys:
        raise JobConfigurationError(
            f"the partition keys {args.partition_keys} must be the last columns of {args.target_table}, got {columns}"
        )
    result.writeTo(iceberg_table(args.database, args.target_table)).option(f"snapshot-property.{RUN_ID_SNAPSHOT_PROPERTY}", args.run_id).append()


@dataclass
class InputSources:
    """The job's inputs as bound: each landing table's validated copy (its manifest names the segments)."""

    landing: dict[str, BoundLandingTable] = field(default_factory=dict)


@dataclass
class Incremental:
    plan: BuildPlan
    base: str
    built_from: dict[str, dict]
    target_snapshot: int | None
    sources: InputSources
    new_landing_keys: dict[str, list[str]] = field(default_factory=dict)
    snapshot_ranges: dict[str, tuple[int, int]] = field(default_factory=dict)
    action_done: str = "skipped"  # skipped | appended | built | unchanged (rebuilt to the recorded rows: no commit)


def plan_incremental(spark: Any, args: JobArguments, sql: str, salt: str, sources: InputSources, previous: dict | None) -> Incremental:
    """What each input is built from now, how it changed since the previous build record, and the plan."""
    recorded = (previous or {}).get("built_from", {})
    built_from: dict[str, dict] = {}
    changes: dict[str, str] = {}
    new_keys: dict[str, list[str]] = {}
    ranges: dict[str, tuple[int, int]] = {}
    for name in args.input_tables:
        before = recorded.get(name, {})
        if name in sources.landing:
            built_from[name] = {"landing": landing_segments(sources.landing[name].manifest)}
            changes[name], new_keys[name] = landing_change(before["landing"], built_from[name]["landing"]) if "landing" in before else (CHANGED, [])
        else:
            snapshot, snapshots = table_snapshots(spark, args.database, name, args.wap_branch)
            built_from[name] = {"snapshot_id": snapshot}
            changes[name] = snapshot_change(before["snapshot_id"], snapshot, snapshots) if "snapshot_id" in before else CHANGED
            if changes[name] == GREW:
                ranges[name] = (before["snapshot_id"], snapshot)
    target_snapshot, _ = table_snapshots(spark, args.database, args.target_table, args.wap_branch)
    plan = plan_build(previous, build_base(args, sql, salt), changes, row_wise_inputs(sql), target_snapshot, args.wap_branch)
    log_event("build planned", job=args.job_name, action=plan.action, input=plan.input, reason=plan.reason, changes=changes)
    return Incremental(plan, build_base(args, sql, salt), built_from, target_snapshot, sources, new_keys, ranges)


def bind_appended_rows(spark: Any, args: JobArguments, incremental: Incremental) -> int:
    """Rebinds the append's row-wise input to its new rows alone; returns their number (the rows read)."""
    name = incremental.plan.input
    if name in incremental.sources.landing:
        bound = incremental.sources.landing[name]
        frame = bind_new_landing_rows(spark, bound.table, args.bucket, bound.manifest, incremental.new_landing_keys[name])
    else:
        start, end = incremental.snapshot_ranges[name]
        frame = bind_new_table_rows(spark, args.database, name, start, end)
    frame = frame.persist()
    frame.createOrReplaceTempView(name)
    rows = int(frame.count())
    log_event("new rows bound", job=args.job_name, table=name, rows=rows)
    return rows


def commit_build(spark: Any, result: Any, args: JobArguments, incremental: Incremental, previous: dict | None) -> tuple[list, int | None]:
    """Appends or overwrites, as planned; a rebuild that gives the recorded content commits nothing (the table
    holds those rows already, and the jobs reading it then see it unchanged). Returns (content, snapshot id)."""
    content = content_of(result)
    if incremental.plan.action == "append":
        append_target(result, args)
        content = add_contents(previous["content"], content)
        incremental.action_done = "appended"
    elif previous is not None and previous.get("content") == content and previous.get("snapshot_id", -1) == incremental.target_snapshot:
        incremental.action_done = "unchanged"
        log_event("table unchanged", job=args.job_name, table=args.target_table, rows=content[0])
        return content, incremental.target_snapshot
    else:
        write_target(result, args)
        incremental.action_done = "built"
    snapshot, _ = table_snapshots(spark, args.database, args.target_table, args.wap_branch)
    return content, snapshot


def build_record_fields(
    incremental: Incremental, rows_read: dict, content: list | None, snapshot_id: int | None, rows_out: int, previous: dict | None, branch: str | None = None
) -> dict:
    """The build record's incremental fields: what the table was built from, and what this run did and read."""
    return {
        "action": incremental.action_done,
        "reason": incremental.plan.reason,
        "rows_read": rows_read,
        "rows_added": rows_out - int(previous["rows_after"]) if incremental.action_done == "appended" else None,
        "appended_input": incremental.plan.input if incremental.action_done == "appended" else None,
        "base": incremental.base,
        "built_from": incremental.built_from,
        "content": content,
        "snapshot_id": snapshot_id,
        # The run's branch the build was committed to (--wap_branch), until a publish run moves main there; a
        # skipped or unchanged table committed nothing, so it stays where its previous build was.
        "branch": branch if incremental.action_done in ("built", "appended") else (previous or {}).get("branch"),
    }


# --- The build log and the data metrics ----------------------------------------------------------------


def table_build_key(table: str) -> str:
    return f"{TABLE_BUILDS_PREFIX}{table}.json"


def read_table_build(s3: Any, bucket: str, table: str) -> dict | None:
    """A table's record in the build log, or None when it has none (never built since the log exists)."""
    try:
        body = s3.get_object(Bucket=bucket, Key=table_build_key(table))["Body"].read()
    except Exception as error:  # boto3's ClientError; S3 says NoSuchKey to a caller that may list the bucket
        if getattr(error, "response", {}).get("Error", {}).get("Code") in ("NoSuchKey", "404"):
            return None
        raise
    return json.loads(body)


def refuse_other_consent_policy(table: str, build: dict | None, consent_policy: str) -> None:
    """Issue 18: no job mixes tables of two consent policies. An input whose build record names another
    policy than this run's (the stack was deployed with another one, and this run does not start where
    that input is rebuilt) fails the job before anything is written, naming both."""
    built = None if build is None else build.get("consent_policy")
    if built is not None and built != consent_policy:
        raise JobConfigurationError(
            f"{table} was built with consent policy {built} ({table_build_key(table)}), but this run uses "
            f"{consent_policy}: start the pipeline from all to rebuild every table under {consent_policy}"
        )


def write_table_build(s3: Any, bucket: str, record: dict) -> None:
    """Replaces a table's build record: one PUT, which S3 makes visible whole."""
    s3.put_object(
        Bucket=bucket,
        Key=table_build_key(record["table_name"]),
        Body=(json.dumps(record) + "\n").encode("utf-8"),
        ContentType="application/json",
    )


def job_metrics(job_name: str, summary: dict) -> list[dict]:
    """The run's figures as CloudWatch metric data: RowsIn and RowsOut per job and table; per job and dataset
    NewQuarantinedLines, the lines rejected in the landing files this run checked (new or changed: what the
    quarantine alarm watches, so one old bad line does not alarm on every run), and QuarantinedLines, all the
    lines the quarantine holds (old files included: the dashboard's total)."""

    def datum(metric: str, value: int, **dimensions: str) -> dict:
        return {
            "MetricName": metric,
            "Dimensions": [{"Name": "Job", "Value": job_name}, *({"Name": k, "Value": v} for k, v in dimensions.items())],
            "Value": float(value),
            "Unit": "Count",
        }

    data = [datum("RowsIn", n, Table=table) for table, n in summary["rows_in"].items()]
    data.append(datum("RowsOut", summary["rows_out"], Table=summary["target"]))
    data += [datum("QuarantinedLines", n, Dataset=dataset) for dataset, n in summary["quarantined"].items()]
    data += [datum("NewQuarantinedLines", n, Dataset=dataset) for dataset, n in summary.get("newly_quarantined", {}).items()]
    data += [datum("DiagnosticCount", n, Diagnostic=name) for name, n in summary.get("diagnostics", {}).items()]
    return data


def publish_metrics(cloudwatch: Any, job_name: str, summary: dict) -> None:
    """Publishes the run's figures. A failure is logged, not raised: the table is written by then, and the
    data checks and the build log still see it."""
    try:
        cloudwatch.put_metric_data(Namespace=METRICS_NAMESPACE, MetricData=job_metrics(job_name, summary))
    except Exception as error:  # throttling or a missing permission must not fail a job that wrote its table
        log_event("metrics not published", job=job_name, error=f"{type(error).__name__}: {error}")


def run_diagnostics(spark: Any, s3: Any, args: JobArguments) -> dict[str, int]:
    """The job's diagnostics (its "-- Diagnostics:" header; glue/queries/<name>.sql, under --diagnostic_keys in
    the SQL's bucket): each a query over the job's inputs, as bound, returning one row with one count."""
    counts: dict[str, int] = {}
    for key in args.diagnostic_keys:
        name = key.rsplit("/", 1)[-1].removesuffix(".sql")
        rows = spark.sql(read_sql(s3, args.sql_bucket, key)).collect()
        if len(rows) != 1 or len(rows[0]) != 1:
            raise JobConfigurationError(f"the diagnostic {key} must return one row with one count, got {len(rows)} rows")
        counts[name] = int(rows[0][0] or 0)
    if counts:
        log_event("diagnostics counted", job=args.job_name, **counts)
    return counts


# --- Write, audit, publish: the run's Iceberg branch ---------------------------------------------------------
# As the local engine stages a run's tables and publishes them only once the data checks pass
# (docs/lake-integrity.md), a run on AWS writes each table to its run's branch; the checks read the branches; a
# publish run moves each table's main to its branch. Readers of main (Athena) see the previous data until then.
# Iceberg 1.10 on Spark 3.5 (Apache Iceberg, "Branching and Tagging", "Audit branch"; "Spark Writes", "Writing to
# Branches"): with the session conf spark.wap.branch set, a write to a table whose property write.wap.enabled is
# true commits to that branch, creating it from main's head when it does not exist, and a read of such a table
# reads the branch when it exists, else main. Without the property the conf is ignored and the write goes to main;
# the DataFrameWriterV2 option "branch" is ignored too on Spark 3.5 (both checked on the local Spark).

WAP_BRANCH_CONF = "spark.wap.branch"
WAP_ENABLED_PROPERTY = "write.wap.enabled"
MAIN_BRANCH = "main"
BRANCH_NAME = re.compile(r"[A-Za-z0-9_-]{1,128}")


def checked_branch_name(name: str) -> str:
    """A run's branch name: letters, digits, _ and - (a Step Functions execution name's characters), never main."""
    if not BRANCH_NAME.fullmatch(name) or name == MAIN_BRANCH:
        raise JobConfigurationError(f"--wap_branch must be 1-128 letters, digits, _ or - and not {MAIN_BRANCH}, got {name!r}")
    return name


def publish_tables_argument(args: dict) -> list[str]:
    tables = comma_separated(args.get("publish_tables", ""))
    if tables and not args.get("wap_branch"):
        raise JobConfigurationError("--publish_tables needs --wap_branch, the branch whose heads it publishes")
    return tables


def enable_write_audit_publish(spark: Any, database: str, table: str) -> None:
    """Sets the table's write.wap.enabled property when it is not set: a metadata-only commit on main (no new
    snapshot: readers of main see the same rows), made once per table."""
    name = iceberg_table(database, table)
    rows = spark.sql(f"SHOW TBLPROPERTIES {name} ('{WAP_ENABLED_PROPERTY}')").collect()
    if not rows or str(rows[0][1]).lower() != "true":
        spark.sql(f"ALTER TABLE {name} SET TBLPROPERTIES ('{WAP_ENABLED_PROPERTY}' = 'true')")


@contextmanager
def run_branch(spark: Any, args: JobArguments) -> Iterator[None]:
    """With --wap_branch, points this session's Iceberg reads and writes at the run's branch for the job (its
    inputs bound, its target written), then back at main (the local Glue runs several jobs in one session)."""
    if not args.wap_branch:
        yield
        return
    enable_write_audit_publish(spark, args.database, args.target_table)
    heads = branch_heads(spark, args.database, args.target_table)
    if args.wap_branch not in heads and MAIN_BRANCH in heads:
        # A commit's summary counts its totals (total-records...) on from the branch's previous snapshot. A write
        # that creates its branch has none, so its totals would start from 0 (a replace of 99 rows by 130 would
        # record 31: Iceberg 1.10, seen on the local Spark). Made first, at main's head, the branch has one.
        spark.sql(f"ALTER TABLE {iceberg_table(args.database, args.target_table)} CREATE BRANCH IF NOT EXISTS `{args.wap_branch}`")
    spark.conf.set(WAP_BRANCH_CONF, args.wap_branch)
    log_event("writing to the run's branch", job=args.job_name, branch=args.wap_branch, table=args.target_table)
    try:
        yield
    finally:
        spark.conf.unset(WAP_BRANCH_CONF)


def branch_heads(spark: Any, database: str, table: str) -> dict[str, int]:
    """The snapshot id at the head of each branch of the table (main, and any run's), from its refs metadata table."""
    rows = spark.sql(f"SELECT name, snapshot_id FROM {iceberg_table(database, table)}.refs WHERE type = 'BRANCH'").collect()
    return {row[0]: int(row[1]) for row in rows}


def main_rows(spark: Any, database: str, table: str) -> int | None:
    """The rows of the table's main head, from its snapshot summary's total-records (None: no snapshot yet)."""
    name = iceberg_table(database, table)
    rows = spark.sql(
        f"SELECT s.summary['total-records'] FROM {name}.snapshots s JOIN {name}.refs r ON s.snapshot_id = r.snapshot_id "
        f"WHERE r.name = '{MAIN_BRANCH}' AND r.type = 'BRANCH'"
    ).collect()
    return int(rows[0][0]) if rows and rows[0][0] is not None else None


def publish_table(spark: Any, database: str, table: str, branch: str) -> dict | None:
    """Moves the table's main to the head of the run's branch (Iceberg's fast_forward procedure: main must be an
    ancestor of the branch, so a run whose base was replaced meanwhile fails instead of losing that commit), then
    drops the branch. None when the run did not write the table (no branch)."""
    if branch not in branch_heads(spark, database, table):
        return None
    row = spark.sql(f"CALL {ICEBERG_CATALOG}.system.fast_forward('{database}.{table}', '{MAIN_BRANCH}', '{branch}')").collect()[0]
    spark.sql(f"ALTER TABLE {iceberg_table(database, table)} DROP BRANCH IF EXISTS `{branch}`")
    return {"table": table, "previous": None if row[1] is None else int(row[1]), "published": int(row[2])}


def publish_run(spark: Any, args: JobArguments, s3: Any) -> list[dict]:
    """A publish run: each of --publish_tables that the run wrote moves its main to the run's branch, one commit a
    table, in the order given (the pipeline's), and its build record then describes main. Tables the run did not
    write keep their main."""
    spark.conf.set("spark.sql.session.timeZone", "UTC")
    published = []
    for table in args.publish_tables:
        done = publish_table(spark, args.database, table, args.wap_branch)
        if done is None:
            continue
        record = read_table_build(s3, args.bucket, table)
        if record is not None and record.get("branch") == args.wap_branch:
            write_table_build(s3, args.bucket, {**record, "branch": None})
        published.append(done)
    log_event("run published", run_id=args.run_id, branch=args.wap_branch, tables=published)
    return published


def bind_catalog_table(spark: Any, database: str, name: str) -> None:
    """Binds a table a job wrote, an Iceberg table of the Data Catalog, as a view of the same name, read through
    Iceberg's Glue catalog: its current snapshot, with the table's columns even while it holds no rows.

    The stack declares every derived table with its columns (deploy/glue-resources.js); one missing from the
    Catalog fails the job here, naming it, before anything is written."""
    try:
        frame = spark.table(iceberg_table(database, name))
    except Exception as error:  # pyspark's AnalysisException: [TABLE_OR_VIEW_NOT_FOUND] ...
        raise JobConfigurationError(
            f"cannot read {database}.{name} from the Data Catalog (the stack defines it; was it deleted?): {error}"
        ) from error
    frame.createOrReplaceTempView(name)


def run_job(
    args: JobArguments,
    spark: Any,
    glue_context: Any,
    s3: Any,
    glue: Any,
    ssm: Any,
    cloudwatch: Any = None,
) -> dict:
    """Runs the job's SQL over its source tables and replaces its target. Returns a summary.

    With `cloudwatch` (boto3's client), publishes the summary's figures as metrics."""
    spark.conf.set("spark.sql.session.timeZone", "UTC")
    sql = read_sql(s3, args.sql_bucket, args.sql_key)
    # The Catalog's tables first: one that is missing fails the job before a landing read rewrites a quarantine.
    tables = sorted(args.input_tables, key=lambda name: name.endswith(LANDING_SUFFIX))
    if args.target_table in tables:
        raise JobConfigurationError(f"{args.sql_key} reads its own target {args.target_table}")
    log_event("job started", job=args.job_name, run_id=args.run_id, sql_key=args.sql_key, reads=tables)
    salt = fetch_salt(ssm, args.pii_salt_parameter)  # first: a missing salt fails the job before any write

    quarantined: dict[str, int] = {}
    newly_quarantined: dict[str, int] = {}
    landing_files: dict[str, dict[str, int]] = {}
    rows_in: dict[str, int] = {}
    sources = InputSources()
    for name in tables:
        if name.endswith(LANDING_SUFFIX):
            bound = bind_landing_table(spark, glue_context, s3, glue, args.bucket, args.database, name, args.run_id)
            dataset = name[: -len(LANDING_SUFFIX)]
            quarantined[dataset] = bound.rejected
            newly_quarantined[dataset] = bound.newly_rejected
            landing_files[dataset] = {"checked": bound.checked, "reused": bound.reused, "removed": bound.removed}
            rows_in[name] = bound.valid
            sources.landing[name] = bound
        else:
            bind_catalog_table(spark, args.database, name)
            # Its rows as its last build recorded them: no extra pass over the table.
            build = read_table_build(s3, args.bucket, name)
            refuse_other_consent_policy(name, build, args.consent_policy)
            if describes_what_is_read(build, args.wap_branch):
                rows_in[name] = int(build["rows_after"])
            elif build is not None:  # an unpublished run's record: the job reads main
                rows_in[name] = main_rows(spark, args.database, name) or 0

    spark.createDataFrame(
        [(salt, args.consent_policy, args.run_id)],
        "pii_salt string, consent_policy string, run_id string",
    ).createOrReplaceTempView(JOB_PARAMETERS_TABLE)

    previous = read_table_build(s3, args.bucket, args.target_table)
    # What the build replaces (tables_not_emptied compares with it): main's rows when the record is an
    # unpublished run's, so a second run that empties a table as the failed one did is still caught.
    rows_before = (
        None if previous is None
        else previous["rows_after"] if describes_what_is_read(previous, args.wap_branch)
        else main_rows(spark, args.database, args.target_table)
    )
    incremental = plan_incremental(spark, args, sql, salt, sources, previous)
    rows_read = dict(rows_in)
    if incremental.plan.action == "skip":
        rows_out, diagnostics = int(previous["rows_after"]), dict(previous.get("diagnostics", {}))
        content, snapshot_id, rows_read = previous.get("content"), incremental.target_snapshot, {}
    else:
        if incremental.plan.action == "append":
            rows_read[incremental.plan.input] = bind_appended_rows(spark, args, incremental)
        result = spark.sql(sql).persist()
        rows_made = int(result.count())  # before the commit: a failing query leaves the previous snapshot
        diagnostics = run_diagnostics(spark, s3, args)  # before the commit too
        content, snapshot_id = commit_build(spark, result, args, incremental, previous)
        result.unpersist()
        rows_out = rows_made
        if incremental.plan.action == "append":
            rows_out = int(previous["rows_after"]) + rows_made
            diagnostics = {k: int(previous.get("diagnostics", {}).get(k, 0)) + n for k, n in diagnostics.items()}
    write_table_build(
        s3,
        args.bucket,
        {
            "table_name": args.target_table,
            "run_id": args.run_id,
            "rows_before": rows_before,
            "rows_after": rows_out,
            "consent_policy": args.consent_policy,
            # A table emptied because an input is empty is no lost input (glue/checks/tables_not_emptied.sql).
            "empty_inputs": ",".join(sorted(name for name, rows in rows_in.items() if rows == 0)),
            "diagnostics": diagnostics,
            "built_at": datetime.now(timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z"),
            **build_record_fields(incremental, rows_read, content, snapshot_id, rows_out, previous, args.wap_branch),
        },
    )

    summary = {
        "job": args.job_name,
        "run_id": args.run_id,
        "target": args.target_table,
        "path": args.target_path,
        "rows_in": rows_in,
        "rows_out": rows_out,
        "quarantined": quarantined,
        "newly_quarantined": newly_quarantined,
        "landing_files": landing_files,
        "diagnostics": diagnostics,
        "action": incremental.action_done,
        "rows_read": rows_read,
        "appended": (rows_out - int(previous["rows_after"])) if incremental.plan.action == "append" else None,
    }
    log_event("job finished", **summary)
    if cloudwatch is not None:
        publish_metrics(cloudwatch, args.job_name, summary)
    return summary


def main(argv: list[str] | None = None) -> None:  # pragma: no cover - runs only inside AWS Glue
    import boto3
    from awsglue.context import GlueContext
    from awsglue.job import Job
    from awsglue.utils import getResolvedOptions
    from pyspark.context import SparkContext

    logging.basicConfig(level=logging.INFO, stream=sys.stdout, format="%(message)s")
    argv = sys.argv if argv is None else argv
    args = resolve_arguments(getResolvedOptions, argv)
    spark_context = SparkContext.getOrCreate()
    # No _SUCCESS marker beside the quarantine files.
    spark_context._jsc.hadoopConfiguration().set("mapreduce.fileoutputcommitter.marksuccessfuljobs", "false")
    glue_context = GlueContext(spark_context)
    job = Job(glue_context)
    job.init(args.job_name, {"JOB_NAME": args.job_name})
    spark = glue_context.spark_session
    if args.publish_tables:
        publish_run(spark, args, boto3.client("s3"))
    else:
        with run_branch(spark, args):
            run_job(
                args,
                spark,
                glue_context,
                boto3.client("s3"),
                boto3.client("glue"),
                boto3.client("ssm"),
                cloudwatch=boto3.client("cloudwatch"),
            )
    job.commit()


if __name__ == "__main__":
    main()
