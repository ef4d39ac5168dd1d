"""The Glue role's Data Catalog statements against the Glue API requests the jobs really send.

One pipeline run of the five jobs on local Spark (Iceberg's GlueCatalog and the runner's boto3 against the moto
server, glue_local.moto_server --record-glue): each Glue request of a job is mapped to its action and catalog,
database and table ARNs (glue_permissions.py) and must be allowed by the Glue role's statements in
deploy/resources/glue.yml; each glue: action the role grants must be used by one, or be exempt by name below.
The stand-in's own requests (harness.prepare: the Catalog mirror and the Iceberg tables' CREATE) are outside the
jobs' windows."""

from __future__ import annotations

from pathlib import Path

import pytest

from glue_engine import JOB_ORDER

ROOT = Path(__file__).resolve().parents[2]
SEMANTICS = ROOT / "tests" / "fixtures" / "semantics"
ACCOUNT, REGION = "123456789012", "us-east-1"  # moto's default account; the clients' region

# Grants no request of these runs uses, each with why the role keeps it.
NOT_SENT_HERE = {
    # Spark's Data Catalog metastore (--enable-glue-datacatalog) looks up and, in an account without one, creates
    # "default" at session start; locally the harness stands in for that metastore (harness.prepare), so the
    # jobs' windows never hold it.
    "glue:CreateDatabase": "Spark's metastore creates 'default' at session start on AWS; the harness's metastore here",
    "glue:GetDatabase": "Spark's metastore looks the databases up on AWS; the harness's metastore here",
    "glue:GetTables": "Spark's metastore lists the database's tables on AWS; the harness's metastore here",
    # The Hive-style partition calls: Spark's metastore registers the partitions of the Parquet validated copies'
    # tables on AWS; the harness mirrors them.
    "glue:GetPartition": "Spark's metastore (Parquet validated copies' partitions) on AWS",
    "glue:GetPartitions": "Spark's metastore (Parquet validated copies' partitions) on AWS",
    "glue:BatchGetPartition": "Spark's metastore (Parquet validated copies' partitions) on AWS",
    "glue:CreatePartition": "Spark's metastore (Parquet validated copies' partitions) on AWS",
    "glue:BatchCreatePartition": "Spark's metastore (Parquet validated copies' partitions) on AWS",
    "glue:UpdatePartition": "Spark's metastore (Parquet validated copies' partitions) on AWS",
    "glue:BatchUpdatePartition": "Spark's metastore (Parquet validated copies' partitions) on AWS",
    "glue:CreateTable": "Iceberg creates a table only when the stack's CREATE made none (the harness does it here)",
}


@pytest.fixture(scope="module")
def pipeline_run(glue_engine):
    lake = glue_engine.create_lake("catalog-calls")
    lake.drop_folder(SEMANTICS)
    lake.run_pipeline("catalog-calls", "any")
    return lake


@pytest.mark.spark
def test_every_glue_request_of_every_job_is_allowed_and_every_glue_grant_is_used_or_exempt(glue_engine, pipeline_run):
    from glue_local.stack import resolve
    from glue_permissions import glue_needs_of, glue_role_statements
    from s3_permissions import allowing_statements

    raw = glue_role_statements(ROOT / "deploy" / "resources" / "glue.yml")
    values = {"AWS::Partition": "aws", "AWS::Region": REGION, "AWS::AccountId": ACCOUNT, "GlueDatabase": pipeline_run.database}
    statements = resolve(raw, values)
    records = glue_engine.glue_recorded()
    windows = [w for w in glue_engine.glue_windows if w[0] is pipeline_run]
    assert [job for _, job, _, _ in windows] == list(JOB_ORDER)
    checked, denied, used, actions = 0, [], set(), set()
    for _, job, first, end in windows:
        for entry in records[first:end]:
            for need in glue_needs_of(entry, ACCOUNT, REGION):
                checked += 1
                actions.add(need.action)
                sids = allowing_statements(need, statements)
                if sids:
                    used.add(need.action)
                else:
                    denied.append(f"{job}: {need.action} on {need.resource} ({need.request}, status {entry['status']})")
    assert checked > 0
    # Iceberg's commit: the current metadata_location read (GetTable) and swapped (UpdateTable), on every job.
    assert {"glue:GetTable", "glue:UpdateTable"} <= actions, sorted(actions)
    assert sorted(set(denied)) == [], "Glue requests the Glue role may not send:\n" + "\n".join(sorted(set(denied))[:30])
    granted = {a for s in raw for a in (s["Action"] if isinstance(s["Action"], list) else [s["Action"]])}
    unused = sorted(granted - used - set(NOT_SENT_HERE))
    assert unused == [], "glue: grants of the Glue role no job request used: " + ", ".join(unused)
    assert set(NOT_SENT_HERE) <= granted, "an exemption names a grant the role no longer holds: " + ", ".join(sorted(set(NOT_SENT_HERE) - granted))
    # An exemption of an action the runs do send is stale: say so.
    assert not (set(NOT_SENT_HERE) & used), "exempt but used: " + ", ".join(sorted(set(NOT_SENT_HERE) & used))


def test_a_glue_request_on_another_database_or_an_unknown_operation_is_not_taken_for_granted():
    # The check above can fail: the role's table grants are this database's, and an operation the mapping does
    # not know is an error, not a pass.
    from glue_local.stack import resolve
    from glue_permissions import glue_needs_of, glue_role_statements
    from s3_permissions import allowing_statements

    values = {"AWS::Partition": "aws", "AWS::Region": REGION, "AWS::AccountId": ACCOUNT, "GlueDatabase": "stedi_db"}
    statements = resolve(glue_role_statements(ROOT / "deploy" / "resources" / "glue.yml"), values)

    def denied(entry: dict) -> list[str]:
        return [n.resource for n in glue_needs_of(entry, ACCOUNT, REGION) if not allowing_statements(n, statements)]

    assert denied({"target": "AWSGlue.UpdateTable", "DatabaseName": "stedi_db", "TableInput": "customer_trusted"}) == []
    assert denied({"target": "AWSGlue.UpdateTable", "DatabaseName": "other", "TableInput": "t"}) == [
        f"arn:aws:glue:{REGION}:{ACCOUNT}:database/other",
        f"arn:aws:glue:{REGION}:{ACCOUNT}:table/other/t",
    ]
    assert denied({"target": "AWSGlue.CreateDatabase", "DatabaseInput": "stedi_db"}) == [f"arn:aws:glue:{REGION}:{ACCOUNT}:database/stedi_db"]
    assert denied({"target": "AWSGlue.DeleteTable", "DatabaseName": "stedi_db", "Name": "customer_trusted"}) != []
    with pytest.raises(AssertionError, match="does not know"):
        glue_needs_of({"target": "AWSGlue.StartJobRun", "JobName": "x"}, ACCOUNT, REGION)
