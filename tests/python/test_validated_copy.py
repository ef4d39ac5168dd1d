"""The Glue runner's validated copy (glue/run_sql_job.py) on the fakes of test_run_sql_job.py, whose S3 store keeps
its objects across runs: sequences of landing changes written out and random ones, and a run that dies at each of
its S3 requests. After every run the landing table's records, the quarantine and the counts equal those of a fresh
bucket holding only the landing objects now there, as on the local engine (tests/integration/validated.test.ts and
incremental-property.test.ts).
"""

from __future__ import annotations

import copy
import json
import random

import pytest
from test_run_sql_job import runner  # the runner, imported from glue/ by that module
from test_run_sql_job import BUCKET, ASSETS_BUCKET, FakeGlue, FakeGlueContext, FakeS3, FakeSpark, FakeSsm, job_arguments, sql_objects

JOB = "accelerometer_landing_to_trusted"
LANDING = "accelerometer/landing/"


def reading(user: str, timestamp: int, x: float = 1.0) -> str:
    return json.dumps({"user": user, "timestamp": timestamp, "x": x, "y": 0.0, "z": -1.0})


def lines(*texts: str) -> str:
    return "".join(t + "\n" for t in texts)


class Crash(BaseException):
    """The job's process dies: the request it was about to make never happens, and no handler of the job runs
    (a BaseException, as SystemExit is, so the runner's `except Exception` cannot turn it into a job error)."""


def new_bucket(landing: dict[str, str]) -> FakeS3:
    return FakeS3({LANDING + name: text for name, text in landing.items()}, {ASSETS_BUCKET: sql_objects()})


def run_on(s3: FakeS3, run_id: str = "exec-1", crash_at: int | None = None) -> tuple[dict, FakeSpark]:
    """Runs the accelerometer job on the bucket as it is; with crash_at, the job dies at its Nth S3 request."""
    spark = FakeSpark(s3, ["a", "b", "reading_date"], [("x", 1, "2022-06-18")])
    record = s3.store._record
    if crash_at is not None:
        made = []

        def crashing(*args, **kwargs):
            made.append(args)
            if len(made) == crash_at:
                raise Crash(f"killed at S3 request {crash_at}: {args[:3]}")
            record(*args, **kwargs)

        s3.store._record = crashing
    try:
        summary = runner.run_job(
            job_arguments(JOB, run_id=run_id), spark, FakeGlueContext(spark), s3, FakeGlue(), FakeSsm()
        )
    finally:
        s3.store._record = record
    return summary, spark


def state(s3: FakeS3, summary: dict, spark: FakeSpark) -> dict:
    """What a run leaves that readers see: the landing table's records, the quarantine's lines (every object under
    the prefix, as Athena reads it), the counts."""
    quarantine = []
    for key, data in s3.objects.items():
        if key.startswith("accelerometer/quarantine/"):
            quarantine += [json.dumps(json.loads(line), sort_keys=True) for line in data.decode().splitlines() if line]
    validated = []
    for key, data in s3.objects.items():
        if key.startswith("accelerometer/validated/") and key.endswith(".parquet"):
            validated += [json.dumps(row) for row in json.loads(data)["rows"]]
    return {
        "records": sorted(json.dumps(r) for r in spark.views["accelerometer_landing"].rows),
        "validated objects": sorted(validated),
        "quarantine": sorted(quarantine),
        "rows_in": summary["rows_in"],
        "quarantined": summary["quarantined"],
    }


def landing_of(s3: FakeS3) -> dict[str, str]:
    return {k[len(LANDING) :]: v.decode() for k, v in s3.objects.items() if k.startswith(LANDING)}


def fresh_state(s3: FakeS3) -> dict:
    fresh = new_bucket(landing_of(s3))
    summary, spark = run_on(fresh, "fresh")
    return state(fresh, summary, spark)


A = lines(reading("a@t.com", 1655564000001), reading("a@t.com", 1655564000002))
B = lines(reading("b@t.com", 1655564000003), '{"user": "b@t.com", "timestamp": 16', reading("b@t.com", 1655564000004))
C = lines(reading("c@t.com", 1655564000005), "[1, 2]")


def test_a_run_checks_only_new_and_changed_objects_reuses_the_rest_and_drops_those_gone():
    s3 = new_bucket({"a.json": A, "b.json": B, "c.json": C})
    summary, spark = run_on(s3, "run-1")
    assert summary["landing_files"] == {"accelerometer": {"checked": 3, "reused": 0, "removed": 0}}
    assert state(s3, summary, spark) == fresh_state(s3)

    # Nothing changed: no landing object read, nothing written, no manifest.
    s3.store.calls.clear()
    summary, spark = run_on(s3, "run-2")
    assert summary["landing_files"] == {"accelerometer": {"checked": 0, "reused": 3, "removed": 0}}
    assert spark.text_reads == [] and spark.parquet_writes == {} and spark.json_writes == {}
    assert not [c for c in s3.store.calls if c.op in ("PUT", "DELETE") and "/validated/" in c.key]
    assert state(s3, summary, spark) == fresh_state(s3)

    # A new object: only it is read; the others' batch stays as it is.
    s3.objects[LANDING + "d.json"] = lines(reading("d@t.com", 1655564000009)).encode()
    summary, spark = run_on(s3, "run-3")
    assert spark.text_reads == [[f"s3://{BUCKET}/{LANDING}d.json"]]
    assert summary["landing_files"] == {"accelerometer": {"checked": 1, "reused": 3, "removed": 0}}
    assert state(s3, summary, spark) == fresh_state(s3)

    # b.json replaced (fewer lines) and c.json deleted: only b is read; a's and d's records are carried over from
    # their batches' Parquet, never read from landing again; the objects of the old batches are deleted.
    s3.objects[LANDING + "b.json"] = lines(reading("b@t.com", 1655564000010)).encode()
    del s3.objects[LANDING + "c.json"]
    summary, spark = run_on(s3, "run-4")
    assert spark.text_reads == [[f"s3://{BUCKET}/{LANDING}b.json"]]
    assert summary["landing_files"] == {"accelerometer": {"checked": 1, "reused": 2, "removed": 1}}
    manifest = json.loads(s3.objects["accelerometer/validated/_manifest.json"])
    assert sorted(manifest["files"]) == [LANDING + "a.json", LANDING + "b.json", LANDING + "d.json"]
    batches = {e["batch"] for e in manifest["files"].values()}
    assert {k.split("/")[2] for k in s3.objects if k.startswith("accelerometer/validated/batch-")} == batches
    assert state(s3, summary, spark) == fresh_state(s3)


def test_the_manifest_is_written_after_the_batch_and_garbage_deleted_after_it():
    s3 = new_bucket({"a.json": A, "b.json": B})
    run_on(s3, "run-1")
    s3.objects[LANDING + "b.json"] = C.encode()
    s3.store.calls.clear()
    run_on(s3, "run-2")
    calls = [(c.op, c.key, c.by) for c in s3.store.calls]
    manifest = calls.index(("PUT", "accelerometer/validated/_manifest.json", "runner"))
    writes = [i for i, (op, key, by) in enumerate(calls) if by.startswith("spark") and "writer" in by and op == "PUT"]
    deletes = [i for i, (op, key, by) in enumerate(calls) if by == "runner" and op == "DELETE"]
    assert writes and deletes
    assert max(writes) < manifest < min(deletes)


@pytest.mark.parametrize("rules_change", ["a column made optional", "another rule revision"])
def test_a_change_of_the_rules_checks_every_object_again(monkeypatch, rules_change):
    s3 = new_bucket({"a.json": A, "b.json": B})
    run_on(s3, "run-1")
    if rules_change == "another rule revision":
        monkeypatch.setattr(runner, "VALIDATED_REVISION", runner.VALIDATED_REVISION + 1)
    else:
        original = runner.landing_table_from_catalog

        def optional_z(glue, database, name):
            table = original(glue, database, name)
            columns = tuple(runner.LandingColumn(c.name, c.type, False) if c.name == "z" else c for c in table.columns)
            return runner.LandingTable(table.name, table.dataset, table.location, columns)

        monkeypatch.setattr(runner, "landing_table_from_catalog", optional_z)
    summary, _ = run_on(s3, "run-2")
    assert summary["landing_files"] == {"accelerometer": {"checked": 2, "reused": 0, "removed": 0}}


POOL = [A, B, C, "", lines(reading("e@t.com", 1655564000011), reading("e@t.com", 1655564000011)), A + C, "not json at all\n"]


@pytest.mark.parametrize("seed", range(12))
def test_random_sequences_of_changes_give_a_fresh_buckets_tables(seed):
    rng = random.Random(seed)
    s3 = new_bucket({})
    for step in range(8):
        for _ in range(rng.randint(1, 3)):
            name = rng.choice(["a.json", "b.json", "c.json", "d.json"])
            if rng.random() < 0.25:
                s3.objects.pop(LANDING + name, None)
            else:
                s3.objects[LANDING + name] = rng.choice(POOL).encode()
        summary, spark = run_on(s3, f"run-{step}")
        assert state(s3, summary, spark) == fresh_state(s3), f"seed {seed}, step {step}"


def test_a_run_that_dies_at_any_s3_request_leaves_what_the_next_run_puts_right():
    before = new_bucket({"a.json": A, "b.json": B, "c.json": C})
    run_on(before, "run-1")
    before.objects[LANDING + "b.json"] = lines(reading("b@t.com", 1655564000012)).encode()
    del before.objects[LANDING + "c.json"]
    before.objects[LANDING + "d.json"] = B.encode()
    before.store.calls.clear()
    requests = len(run_on(copy.deepcopy(before), "count")[1].s3.store.calls)
    assert requests > 20
    for n in range(1, requests + 1):
        s3 = copy.deepcopy(before)
        s3.store.calls.clear()
        with pytest.raises(Crash):
            run_on(s3, "killed", crash_at=n)
        summary, spark = run_on(s3, "rerun")
        assert state(s3, summary, spark) == fresh_state(s3), f"killed at request {n}"
