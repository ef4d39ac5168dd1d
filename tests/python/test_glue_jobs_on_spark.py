"""The five jobs on the Glue engine: glue/run_sql_job.py's main(), unmodified, on local Spark 3.5.6 with S3A,
against the moto server, through the Glue stand-in (tools/glue-local). The expected rows are the ones the
DuckDB engine is held to: tests/fixtures/semantics/README.md (worked out by hand) and
tests/fixtures/landing-cases/accelerometer.json, as tests/integration/job-semantics.test.ts and
tests/integration/landing-cases.test.ts check them locally."""

from __future__ import annotations

import base64
import hashlib
import json
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SEMANTICS = ROOT / "tests" / "fixtures" / "semantics"
B = 1655564400000  # 2022-06-18T15:00:00Z
M = 1655596800000  # 2022-06-19T00:00:00Z

pytestmark = pytest.mark.spark


def customer_id(salt: str, email: str) -> str:
    return hashlib.sha256(f"{salt}{email}".encode("utf-8")).hexdigest()


@pytest.fixture(scope="module")
def semantics_lake(glue_engine):
    lake = glue_engine.create_lake("semantics")
    lake.drop_folder(SEMANTICS)
    return lake


@pytest.fixture(scope="module", params=["any", "since-consent"])
def semantics(request, semantics_lake):
    """The five jobs under one consent policy. The second policy's run reuses the validated copy the first made."""
    semantics_lake.run_pipeline(f"semantics-{request.param}", request.param)
    return semantics_lake, request.param


def test_customer_trusted_keeps_one_row_per_consenting_customer_from_the_latest_record(semantics):
    lake, _ = semantics
    assert lake.rows("customer_trusted", "email", "email, lastUpdateDate, shareWithResearchAsOfDate") == [
        {"email": "Alice.Ames@test.com", "lastUpdateDate": B, "shareWithResearchAsOfDate": B + 1000},
        {"email": "Carol.Chen@test.com", "lastUpdateDate": B + 200, "shareWithResearchAsOfDate": B},
        {"email": "Erin.Egan@test.com", "lastUpdateDate": B, "shareWithResearchAsOfDate": B},
    ]


def test_customer_trusted_holds_each_customers_consent_window_which_both_readings_jobs_read(semantics):
    lake, policy = semantics
    start = (lambda consent: consent) if policy == "since-consent" else (lambda consent: -(2**63))
    assert lake.rows("customer_trusted", "email", "email, readingsSharedFrom") == [
        {"email": "Alice.Ames@test.com", "readingsSharedFrom": start(B + 1000)},
        {"email": "Carol.Chen@test.com", "readingsSharedFrom": start(B)},
        {"email": "Erin.Egan@test.com", "readingsSharedFrom": start(B)},
    ]


def test_the_accelerometer_job_counts_its_email_case_diagnostic_into_the_build_log(semantics):
    # glue/queries/email_case_mismatches.sql, which the job's "-- Diagnostics:" header names: alice.ames@test.com.
    lake, _ = semantics
    build = json.loads(lake.s3.get_object(Bucket=lake.bucket, Key="checks/table_builds/accelerometer_trusted.json")["Body"].read())
    assert build["diagnostics"] == {"email_case_mismatches": 1}
    customer = json.loads(lake.s3.get_object(Bucket=lake.bucket, Key="checks/table_builds/customer_trusted.json")["Body"].read())
    assert customer["diagnostics"] == {}


def test_accelerometer_trusted_keeps_each_reading_of_a_consenting_customer_once(semantics):
    lake, policy = semantics
    rows = lake.rows("accelerometer_trusted", "user, timestamp, x, y")
    alice = [
        {"user": "Alice.Ames@test.com", "timestamp": B + 500, "x": 0.0, "y": 0.0, "z": 1.0, "reading_date": "2022-06-18"},
        {"user": "Alice.Ames@test.com", "timestamp": B + 2000, "x": 0.0, "y": 1.0, "z": 0.0, "reading_date": "2022-06-18"},
        {"user": "Alice.Ames@test.com", "timestamp": B + 2000, "x": 1.0, "y": 0.0, "z": 0.0, "reading_date": "2022-06-18"},
    ]
    carol = [
        {"user": "Carol.Chen@test.com", "timestamp": B + 2000, "x": -1.0, "y": 0.0, "z": 0.0, "reading_date": "2022-06-18"},
        {"user": "Carol.Chen@test.com", "timestamp": M, "x": 1.0, "y": 1.0, "z": 1.0, "reading_date": "2022-06-19"},
    ]
    assert rows == (alice + carol if policy == "any" else alice[1:] + carol)
    assert lake.table("accelerometer_trusted").columns == ["user", "timestamp", "x", "y", "z", "reading_date"]


def test_customer_curated_holds_the_customers_with_readings_anonymised(semantics):
    lake, _ = semantics
    salt = lake.engine.salt
    common = {"registrationDate": B - 100000, "shareWithPublicAsOfDate": None, "shareWithFriendsAsOfDate": None}
    assert lake.rows("customer_curated", "serialNumber") == [
        {"customerId": customer_id(salt, "Alice.Ames@test.com"), "serialNumber": "S-A", "birthYear": 983, "lastUpdateDate": B, "shareWithResearchAsOfDate": B + 1000, **common},
        {"customerId": customer_id(salt, "Carol.Chen@test.com"), "serialNumber": "S-C", "birthYear": 1990, "lastUpdateDate": B + 200, "shareWithResearchAsOfDate": B, **common},
    ]


def test_step_trainer_trusted_keeps_the_readings_of_curated_customers_once(semantics):
    lake, policy = semantics
    expected = [
        {"serialNumber": "S-A", "sensorReadingTime": B + 500, "distanceFromObject": 220, "reading_date": "2022-06-18"},
        {"serialNumber": "S-A", "sensorReadingTime": B + 2000, "distanceFromObject": 210, "reading_date": "2022-06-18"},
        {"serialNumber": "S-C", "sensorReadingTime": B + 4000, "distanceFromObject": 240, "reading_date": "2022-06-18"},
        {"serialNumber": "S-C", "sensorReadingTime": M, "distanceFromObject": 230, "reading_date": "2022-06-19"},
    ]
    rows = lake.rows("step_trainer_trusted", "serialNumber, sensorReadingTime", "serialNumber, sensorReadingTime, distanceFromObject, reading_date")
    assert rows == (expected if policy == "any" else expected[1:])


def test_machine_learning_curated_pairs_readings_of_the_same_customer_only(semantics):
    lake, policy = semantics
    salt = lake.engine.salt
    alice = {"customerId": customer_id(salt, "Alice.Ames@test.com"), "serialNumber": "S-A", "reading_date": "2022-06-18"}
    expected = [
        {**alice, "sensorReadingTime": B + 500, "distanceFromObject": 220, "x": 0.0, "y": 0.0, "z": 1.0},
        # Carol's reading at B+2000 shares the millisecond but is not Alice's: it must not be paired.
        {**alice, "sensorReadingTime": B + 2000, "distanceFromObject": 210, "x": 0.0, "y": 1.0, "z": 0.0},
        {**alice, "sensorReadingTime": B + 2000, "distanceFromObject": 210, "x": 1.0, "y": 0.0, "z": 0.0},
        {
            "customerId": customer_id(salt, "Carol.Chen@test.com"),
            "serialNumber": "S-C",
            "sensorReadingTime": M,
            "distanceFromObject": 230,
            "x": 1.0,
            "y": 1.0,
            "z": 1.0,
            "reading_date": "2022-06-19",
        },
    ]
    rows = lake.rows("machine_learning_curated", "sensorReadingTime, x, y")
    assert rows == (expected if policy == "any" else expected[1:])


def test_the_derived_tables_are_iceberg_v2_tables_of_the_catalog_partitioned_by_reading_date_as_the_stack_says(semantics):
    # deploy/glue-resources.js: OpenTableFormatInput IcebergInput, Version 2, identity partitions on the
    # readings tables; the Catalog entry names the current metadata file (Iceberg's Glue catalog).
    lake, _ = semantics
    glue = lake.engine.aws["glue"]
    spark = lake.engine.spark
    for job in lake.jobs.values():
        table = job["default_arguments"]["--target_table"]
        prefix = job["default_arguments"]["--target_prefix"]
        entry = glue.get_table(DatabaseName=lake.database, Name=table)["Table"]
        assert entry["Parameters"]["table_type"].upper() == "ICEBERG"
        assert entry["Parameters"]["metadata_location"].startswith(f"s3://{lake.bucket}/{prefix}metadata/")
        name = f"glue_catalog.`{lake.database}`.`{table}`"
        properties = {r["key"]: r["value"] for r in spark.sql(f"SHOW TBLPROPERTIES {name}").collect()}
        assert properties["format-version"] == "2"
        described = [r["col_name"] for r in spark.sql(f"DESCRIBE TABLE {name}").collect()]
        # After "# Partition Information" and its "# col_name" header: the partition columns.
        keys = described[described.index("# col_name") + 1 :] if "# Partition Information" in described else []
        assert keys == (["reading_date"] if "--partition_keys" in job["default_arguments"] else []), table
        if keys:
            files = [k for k in lake.keys(f"{prefix}data/") if k.endswith(".parquet")]
            live = {r["file_path"] for r in spark.sql(f"SELECT file_path FROM {name}.files").collect()}
            dates = {r["reading_date"] for r in lake.table(table).select("reading_date").distinct().collect()}
            assert {p.split("/data/")[1].split("/")[0] for p in live} == {f"reading_date={d}" for d in dates}
            assert live <= {f"s3://{lake.bucket}/{k}" for k in files}


def test_each_commit_records_its_run_id_in_the_snapshot_summary(semantics):
    # Every job run is one snapshot whose summary holds the run under stedi.run-id (`stedi tables --history`).
    lake, policy = semantics
    for table in ("customer_trusted", "machine_learning_curated"):
        snapshots = lake.engine.spark.sql(
            f"SELECT summary['stedi.run-id'] AS run_id FROM glue_catalog.`{lake.database}`.`{table}`.snapshots ORDER BY committed_at"
        ).collect()
        assert snapshots[-1]["run_id"] == f"semantics-{policy}"
        assert all(s["run_id"] for s in snapshots)


def test_the_derived_tables_keep_the_column_types_the_stack_declares(semantics):
    # Each table's Iceberg schema is the stack's (glue/tables/derived_tables.json): the write matches the
    # result's columns by name and type to it.
    lake, _ = semantics
    declared = json.loads((ROOT / "glue" / "tables" / "derived_tables.json").read_text())
    for table, columns in declared.items():
        types = {f.name: f.dataType.simpleString() for f in lake.table(table).schema.fields}
        assert types == {c["name"]: c["type"] for c in columns}, table


# --- The landing cases ---------------------------------------------------------------------------------

CASES_FILE = json.loads((ROOT / "tests" / "fixtures" / "landing-cases" / "accelerometer.json").read_text())


def with_bytes(case: dict) -> dict:
    """A case with its line's bytes ("raw") and the line and line_encoding its quarantine entry keeps: a line that is
    not UTF-8 ("base64" in the file) is kept as base64, any other as text."""
    if "base64" in case:
        return {**case, "raw": base64.b64decode(case["base64"]), "line": case["base64"], "line_encoding": "base64"}
    line = case["long"]["prefix"] + case["long"]["fill"] * case["long"]["bytes"] + case["long"]["suffix"] if "long" in case else case["line"]
    return {**case, "raw": line.encode("utf-8"), "line": line, "line_encoding": "text"}


CASES = [with_bytes(c) for c in CASES_FILE["cases"]]
VALID = [c for c in CASES if c["reason"] is None]
REJECTED = [c for c in CASES if c["reason"] is not None]


def case_file(i: int) -> str:
    return f"case-{i:02d}.json"


def expected_record(case: dict) -> dict:
    record = case.get("record") or json.loads(case["line"].replace("NaN", "null"))
    return {"user": record["user"], "timestamp": record["timestamp"], "x": float(record["x"]), "y": float(record["y"]), "z": float(record["z"])}


@pytest.fixture(scope="module")
def landing_cases(glue_engine):
    """Each rejected case alone beside a valid line in a file of its own, and every case with the blank lines in
    mixed.json; the accelerometer job run once over them (and the customer job before it, with no customers)."""
    lake = glue_engine.create_lake("landing-cases")
    valid_line = VALID[0]["raw"]
    for i, case in enumerate(REJECTED):
        lake.put(f"accelerometer/landing/{case_file(i)}", valid_line + b"\n" + case["raw"] + b"\n")
    blank = [line.encode("utf-8") for line in CASES_FILE["blank"]]
    lake.put("accelerometer/landing/mixed.json", b"\n".join([*(c["raw"] for c in CASES), *blank]) + b"\n")
    lake.run_pipeline("landing-cases", "any", jobs=("customer_landing_to_trusted", "accelerometer_landing_to_trusted"))
    return lake


def test_each_bad_line_is_quarantined_with_its_reason_even_alone_in_its_file(landing_cases):
    quarantined = [r for r in landing_cases.quarantine("accelerometer") if r["source_file"] != "accelerometer/landing/mixed.json"]
    assert quarantined == [
        {"source_file": f"accelerometer/landing/{case_file(i)}", "line_number": 2, "reason": c["reason"], "line": c["line"], "line_encoding": c["line_encoding"]}
        for i, c in enumerate(REJECTED)
    ]


def test_every_valid_line_is_read_beside_bad_and_blank_lines_with_the_same_values(landing_cases):
    records = [r for r in landing_cases.validated("accelerometer") if r["source_file"] == "accelerometer/landing/mixed.json"]
    got = sorted(({k: r[k] for k in ("user", "timestamp", "x", "y", "z")} for r in records), key=lambda r: r["timestamp"])
    assert got == sorted((expected_record(c) for c in VALID), key=lambda r: r["timestamp"])
    mixed = [r for r in landing_cases.quarantine("accelerometer") if r["source_file"] == "accelerometer/landing/mixed.json"]
    assert [(r["line_number"], r["reason"], r["line"], r["line_encoding"]) for r in mixed] == [
        (i + 1, c["reason"], c["line"], c["line_encoding"]) for i, c in enumerate(CASES) if c["reason"] is not None
    ]


def test_the_files_with_one_valid_line_each_give_one_record_each(landing_cases):
    records = [r for r in landing_cases.validated("accelerometer") if r["source_file"] != "accelerometer/landing/mixed.json"]
    assert sorted(r["source_file"] for r in records) == [f"accelerometer/landing/{case_file(i)}" for i in range(len(REJECTED))]


def test_a_deleted_file_leaves_the_other_files_quarantined_lines_whole(landing_cases):
    # Deleting a file rewrites its batch from the batch's Parquet and JSON: every other rejected line, the 40 MB
    # ones included, comes back whole (Spark's JSON reader returned those as nulls: run_sql_job.read_quarantine).
    landing_cases.delete(f"accelerometer/landing/{case_file(0)}")
    landing_cases.run("accelerometer_landing_to_trusted", "landing-cases-2", "any")
    quarantined = landing_cases.quarantine("accelerometer")
    assert [r for r in quarantined if r["source_file"] != "accelerometer/landing/mixed.json"] == [
        {"source_file": f"accelerometer/landing/{case_file(i)}", "line_number": 2, "reason": c["reason"], "line": c["line"], "line_encoding": c["line_encoding"]}
        for i, c in enumerate(REJECTED)
        if i > 0
    ]
    mixed = [r for r in quarantined if r["source_file"] == "accelerometer/landing/mixed.json"]
    assert [(r["line_number"], r["reason"], r["line"], r["line_encoding"]) for r in mixed] == [
        (i + 1, c["reason"], c["line"], c["line_encoding"]) for i, c in enumerate(CASES) if c["reason"] is not None
    ]


# --- The Glue role's S3 policy against the requests S3A and the runner really sent ------------------------


def lake_access_policy(bucket: str) -> list[dict]:
    """The Glue role's data-bucket statements, as the template holds them (deploy/resources/glue.yml takes them
    from deploy/glue-resources.js lakeAccessPolicy()), resolved for `bucket`."""
    from glue_local.stack import resolve

    script = "console.log(JSON.stringify(require(process.argv[1]).lakeAccessPolicy()))"
    out = subprocess.run(["node", "-e", script, str(ROOT / "deploy" / "glue-resources.js")], check=True, capture_output=True, text=True)
    return resolve(json.loads(out.stdout), {"DataBucket.Arn": f"arn:aws:s3:::{bucket}"})["Statement"]


# Grants no run here exercises, each kept for a request deploy/glue-resources.js lakeAccessPolicy names: S3A
# aborts a multipart upload only when a file's write fails part-way, and no task attempt fails here; the
# bucket's region is asked only on AWS, where no endpoint is set (here moto's is).
NOT_SEEN_IN_THESE_RUNS = {
    ("ReplaceTablesAndQuarantine", "s3:AbortMultipartUpload"),
    ("ListTheDataBucket", "s3:GetBucketLocation"),
}


def test_every_s3_request_of_every_job_run_is_allowed_by_the_glue_roles_policy(glue_engine, semantics_lake, landing_cases):
    # Every run of this module: the five jobs under both policies (a first run and one reusing the validated
    # copy), the landing cases (40 MB lines: multipart uploads and multipart copies) and a deleted file's rerun.
    from s3_permissions import allowing_statements, needs_of

    records = glue_engine.recorded()
    checked, denied, used = 0, [], set()
    for lake, job, first, end in glue_engine.job_windows:
        statements = lake_access_policy(lake.bucket)
        for entry in records[first:end]:
            if not entry["path"].startswith(f"/{lake.bucket}/"):
                continue  # the deployment bucket's SQL object: the role's other statement
            for need in needs_of(entry):
                checked += 1
                sids = allowing_statements(need, statements)
                used.update((sid, need.action) for sid in sids)
                if not sids:
                    denied.append(f"{job}: {need.action} on {need.resource} ({need.request}, status {entry['status']})")
    assert checked > 0
    distinct = sorted(set(denied))
    assert distinct == [], f"{len(denied)} requests the Glue role may not send:\n" + "\n".join(distinct[:30])
    # Least privilege, from real requests: each action of each statement is used by a request above, but for
    # the grants kept for requests these runs cannot make (lakeAccessPolicy's comments say which and why).
    granted = {(s["Sid"], a) for s in lake_access_policy("b") for a in (s["Action"] if isinstance(s["Action"], list) else [s["Action"]])}
    unused = sorted(granted - used - NOT_SEEN_IN_THESE_RUNS)
    assert unused == [], "grants of the Glue role's data-bucket policy no request used: " + ", ".join(f"{sid} {action}" for sid, action in unused)
    assert NOT_SEEN_IN_THESE_RUNS <= granted, "an exemption names a grant the policy no longer holds"
    kinds = {(e["method"], bool(e.get("copy_source")), "uploadId" in e["query"]) for e in records}
    assert ("PUT", True, True) in kinds, "the 40 MB lines' files are copied in parts (UploadPartCopy)"
