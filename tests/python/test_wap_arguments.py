"""The runner's write-audit-publish arguments as Glue passes them (getResolvedOptions, the stand-in of
tools/glue-local): --wap_branch names the run's Iceberg branch, --publish_tables makes a publish run of it.
The writes and the publish themselves are tested on Spark (test_write_audit_publish.py)."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "glue"))
sys.path.insert(0, str(ROOT / "tools" / "glue-local"))

from awsglue import utils as awsglue  # noqa: E402 - the stand-in (tools/glue-local)
import run_sql_job as runner  # noqa: E402

DEFAULTS = {
    "--sql_bucket": "assets",
    "--sql_key": "glue-assets/0/customer_landing_to_trusted.sql",
    "--database": "stedi",
    "--bucket": "data",
    "--target_table": "customer_trusted",
    "--target_prefix": "customer/trusted/",
    "--input_tables": "customer_landing",
    "--pii_salt_parameter": "/stedi/pii-salt",
    "--consent_policy": "any",
}


def resolve(**arguments: str) -> runner.JobArguments:
    argv = ["/tmp/run_sql_job.py", "--JOB_RUN_ID", "jr_1"]
    for key, value in {**DEFAULTS, **{f"--{k}": v for k, v in arguments.items()}}.items():
        argv += [key, value]
    return runner.resolve_arguments(awsglue.getResolvedOptions, argv + ["--JOB_NAME", "customer_landing_to_trusted"])


def test_a_run_without_a_branch_writes_main_as_before():
    args = resolve(run_id="exec-1")
    assert (args.wap_branch, args.publish_tables) == (None, [])


def test_the_branch_a_state_machine_gives_is_taken_as_is():
    args = resolve(run_id="exec-1", wap_branch="run_2026-12-07_exec-1")
    assert (args.wap_branch, args.publish_tables) == ("run_2026-12-07_exec-1", [])


@pytest.mark.parametrize("name", ["main", "run x", "run;drop", "run'1", "r" * 129])
def test_a_branch_name_outside_an_execution_names_characters_or_main_is_refused(name):
    with pytest.raises(runner.JobConfigurationError, match="--wap_branch"):
        resolve(wap_branch=name)


def test_a_publish_run_names_its_tables_and_needs_the_branch():
    args = resolve(wap_branch="run_1", publish_tables="customer_trusted, accelerometer_trusted")
    assert args.publish_tables == ["customer_trusted", "accelerometer_trusted"]
    with pytest.raises(runner.JobConfigurationError, match="--publish_tables needs --wap_branch"):
        resolve(publish_tables="customer_trusted")
