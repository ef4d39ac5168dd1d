"""Write, audit, publish on the Glue engine (issue 20; docs/lake-integrity.md): the jobs of a run given --wap_branch
commit their tables to that Iceberg branch, and later jobs of the run read their inputs from it; main, what Athena
readers query, stays at the previous snapshot until a publish run fast-forwards it. A run whose checks fail is never
published, so its readers keep the previous rows while its branch holds the new ones.

Iceberg 1.10 on Spark 3.5 (Apache Iceberg, "Branching and Tagging", "Audit branch"; "Spark Procedures",
"fast_forward"): with spark.wap.branch set and the table's write.wap.enabled, a write commits to the branch
(creating it from main's head) and a read reads the branch when it exists."""

from __future__ import annotations

import json

import pytest
from glue_engine import customer_lines

pytestmark = pytest.mark.spark

CUSTOMERS = "customer_trusted"
READINGS = "accelerometer_trusted"
DERIVED = ("customer_trusted", "accelerometer_trusted", "customer_curated", "step_trainer_trusted", "machine_learning_curated")


def readings(customer: int, count: int) -> str:
    return "".join(
        json.dumps({"user": f"customer.{customer}@test.com", "timestamp": 1655564500000 + n, "x": 1.0, "y": 0.0, "z": -1.0}) + "\n"
        for n in range(count)
    )


def run_on_branch(lake, run_id: str) -> str:
    """The run's first two jobs, as the state machine gives them --wap_branch; returns the branch."""
    branch = f"run_{run_id}"
    for job in ("customer_landing_to_trusted", "accelerometer_landing_to_trusted"):
        lake.run(job, run_id, "any", {"--wap_branch": branch})
    return branch


def publish(lake, run_id: str, branch: str) -> None:
    """The publish run: the runner with --publish_tables, as a Glue run of the last job."""
    lake.run("machine_learning_curated", run_id, "any", {"--wap_branch": branch, "--publish_tables": ",".join(DERIVED)})


def on_branch(lake, table: str, branch: str):
    return lake.engine.spark.table(f"glue_catalog.`{lake.database}`.`{table}`.`branch_{branch}`")


def build_record(lake, table: str) -> dict:
    return json.loads(lake.s3.get_object(Bucket=lake.bucket, Key=f"checks/table_builds/{table}.json")["Body"].read())


def refs(lake, table: str) -> dict[str, int]:
    rows = lake.engine.spark.sql(f"SELECT name, snapshot_id FROM glue_catalog.`{lake.database}`.`{table}`.refs").collect()
    return {row["name"]: row["snapshot_id"] for row in rows}


def total_records(lake, table: str, snapshot_id: int) -> int:
    rows = lake.engine.spark.sql(
        f"SELECT summary['total-records'] AS total FROM glue_catalog.`{lake.database}`.`{table}`.snapshots WHERE snapshot_id = {snapshot_id}"
    ).collect()
    return int(rows[0]["total"])


def run_of_main(lake, table: str) -> str | None:
    rows = lake.engine.spark.sql(
        f"SELECT s.summary['stedi.run-id'] AS run_id FROM glue_catalog.`{lake.database}`.`{table}`.snapshots s "
        f"JOIN glue_catalog.`{lake.database}`.`{table}`.refs r ON s.snapshot_id = r.snapshot_id WHERE r.name = 'main'"
    ).collect()
    return rows[0]["run_id"] if rows else None


@pytest.fixture()
def lake(glue_engine, request):
    """A lake whose main holds run "first": 3 customers, 2 readings of customer 0; then 4 more customers and
    3 readings of customer 5 (one of the new ones) landed."""
    lake = glue_engine.create_lake(request.node.name.replace("_", "-")[:40].strip("-"))
    lake.put("customer/landing/a.json", customer_lines(0, 3))
    lake.put("accelerometer/landing/a.json", readings(0, 2))
    lake.run("customer_landing_to_trusted", "first", "any")
    lake.run("accelerometer_landing_to_trusted", "first", "any")
    lake.put("customer/landing/b.json", customer_lines(3, 4))
    lake.put("accelerometer/landing/b.json", readings(5, 3))
    return lake


def test_an_unpublished_run_leaves_main_at_the_previous_snapshot_and_its_branch_holds_the_new_rows(lake):
    main_before = {table: refs(lake, table)["main"] for table in (CUSTOMERS, READINGS)}

    branch = run_on_branch(lake, "checks-fail")  # its checks fail: the state machine never publishes it

    for table in (CUSTOMERS, READINGS):
        assert refs(lake, table)["main"] == main_before[table], table
        assert run_of_main(lake, table) == "first"
    assert lake.table(CUSTOMERS).count() == 3
    assert lake.table(READINGS).count() == 2
    assert on_branch(lake, CUSTOMERS, branch).count() == 7
    # Each branch head's summary counts the table's rows, as stedi tables --history and --as-of read them (a
    # write that created its branch counted from 0: the runner makes the branch at main's head first).
    for table, rows in ((CUSTOMERS, 7), (READINGS, 5)):
        assert total_records(lake, table, refs(lake, table)[branch]) == rows, table
    # The second job read customer_trusted from the run's branch: customer 5 exists only there.
    assert on_branch(lake, READINGS, branch).count() == 5
    assert {r["user"] for r in on_branch(lake, READINGS, branch).collect()} == {"customer.0@test.com", "customer.5@test.com"}


def test_a_published_run_moves_every_table_it_wrote_to_its_branch_and_drops_the_branch(lake):
    failed = run_on_branch(lake, "checks-fail")  # left unpublished
    assert {build_record(lake, t)["branch"] for t in (CUSTOMERS, READINGS)} == {failed}
    # The failed run's build records are no base for this run (main does not hold those builds): it builds again.
    branch = run_on_branch(lake, "checks-pass")
    heads = {table: refs(lake, table)[branch] for table in (CUSTOMERS, READINGS)}
    assert {build_record(lake, t)["action"] for t in (CUSTOMERS, READINGS)} == {"built"}

    publish(lake, "checks-pass", branch)
    # The records now describe main: a later run may skip or append from them.
    assert {build_record(lake, t)["branch"] for t in (CUSTOMERS, READINGS)} == {None}

    for table in (CUSTOMERS, READINGS):
        assert refs(lake, table)["main"] == heads[table], table
        assert branch not in refs(lake, table)
        assert failed in refs(lake, table)  # a failed run's branch is kept (its rows can be looked at)
        assert run_of_main(lake, table) == "checks-pass"
    assert lake.table(CUSTOMERS).count() == 7
    assert lake.table(READINGS).count() == 5
    # The tables the run did not write have no branch and keep their main.
    assert "main" not in refs(lake, "customer_curated")


def test_a_run_after_an_unpublished_one_counts_rows_before_and_inputs_from_main(lake):
    """The build log keeps one record a table, outside Iceberg's branches: after a run whose checks failed, the
    next run's "rows before" (what tables_not_emptied compares with) must still be main's rows, not the failed
    branch's, or a second run that empties a table as the failed one did would pass and be published."""
    run_on_branch(lake, "checks-fail")
    assert (build_record(lake, CUSTOMERS)["rows_before"], build_record(lake, CUSTOMERS)["rows_after"]) == (3, 7)

    lake.run("accelerometer_landing_to_trusted", "from-accelerometer", "any", {"--wap_branch": "run_from-accelerometer"})

    # customer_trusted's record is the failed run's (7 rows, its branch); this run read main's 3 customers.
    record = build_record(lake, READINGS)
    assert record["rows_before"] == 2  # main's readings, not the failed branch's 5
    assert record["rows_read"]["customer_trusted"] == 3
