"""The IAM permission each recorded Glue API request needs, and the Glue role's Data Catalog statements.

Each Glue request the moto server recorded (glue_local.moto_server --record-glue) is mapped to its action
(glue:<operation>, the operation of its X-Amz-Target) and the resources Glue authorizes it on: the catalog, the
database and, for a table's operations, the table ("Specifying AWS Glue resource ARNs", AWS Glue developer
guide, https://docs.aws.amazon.com/glue/latest/dg/glue-specifying-resource-arns.html: an operation on a table
needs permission on the table, its database and the catalog; GetTables on every table of the database it lists,
table/<database>/*; a partition's operations are authorized on its table).
"""

from __future__ import annotations

from pathlib import Path

import yaml

from s3_permissions import Need, allowing_statements  # noqa: F401 (allowing_statements: the same IAM matching)

# The operations by what they act on (every one the Glue role grants or the jobs send; another fails the mapping).
DATABASE_OPERATIONS = {"GetDatabase", "CreateDatabase"}
TABLE_OPERATIONS = {
    "GetTable",
    "CreateTable",
    "UpdateTable",
    "DeleteTable",
    "GetPartition",
    "GetPartitions",
    "BatchGetPartition",
    "CreatePartition",
    "BatchCreatePartition",
    "UpdatePartition",
    "BatchUpdatePartition",
}
EVERY_TABLE_OPERATIONS = {"GetTables"}


def glue_needs_of(entry: dict, account: str, region: str) -> list[Need]:
    target = entry["target"]
    operation = target.rpartition(".")[2]
    action = f"glue:{operation}"
    shown = f"{operation} {entry.get('DatabaseName', '')}.{entry.get('Name') or entry.get('TableName') or entry.get('TableInput', '')}"
    arn = f"arn:aws:glue:{region}:{entry.get('CatalogId', account)}"
    catalog = f"{arn}:catalog"
    if operation in DATABASE_OPERATIONS:
        database = entry.get("Name") or entry.get("DatabaseInput")
        return [Need(action, catalog, shown), Need(action, f"{arn}:database/{database}", shown)]
    database = entry.get("DatabaseName")
    if not database:
        raise AssertionError(f"a Glue request without a database the mapping does not know: {entry}")
    if operation in EVERY_TABLE_OPERATIONS:
        resources = [catalog, f"{arn}:database/{database}", f"{arn}:table/{database}/*"]
    elif operation in TABLE_OPERATIONS:
        table = entry.get("TableName") or entry.get("Name") or entry.get("TableInput")
        resources = [catalog, f"{arn}:database/{database}", f"{arn}:table/{database}/{table}"]
    else:
        raise AssertionError(f"a Glue operation the mapping does not know: {target}")
    return [Need(action, r, shown) for r in resources]


class _CloudFormationLoader(yaml.SafeLoader):
    """YAML with CloudFormation's short forms (!Sub, !Ref, !GetAtt) read as their long forms."""


_CloudFormationLoader.add_constructor("!Sub", lambda loader, node: {"Fn::Sub": loader.construct_scalar(node)})
_CloudFormationLoader.add_constructor("!Ref", lambda loader, node: {"Ref": loader.construct_scalar(node)})
_CloudFormationLoader.add_constructor(
    "!GetAtt", lambda loader, node: {"Fn::GetAtt": loader.construct_scalar(node).split(".", 1)}
)


def glue_role_statements(glue_yml: Path) -> list[dict]:
    """The Glue job role's inline statements that grant glue: actions (deploy/resources/glue.yml, as written)."""
    text = glue_yml.read_text()
    # The serverless variable of the database's name is not YAML's business: any name will do here.
    template = yaml.load(text.replace("${self:custom.databaseName}", "stedi"), Loader=_CloudFormationLoader)
    role = template["Resources"]["GlueJobRole"]["Properties"]
    statements = []
    for policy in role["Policies"]:
        document = policy["PolicyDocument"]
        if isinstance(document, dict):
            statements.extend(document["Statement"])
    return [s for s in statements if any(str(a).startswith("glue:") for a in (s["Action"] if isinstance(s["Action"], list) else [s["Action"]]))]
