"""Apache Iceberg on the local Glue: the job's --conf applied as Glue applies it, Iceberg's AWS clients pointed at
the moto server, and the stack's Iceberg tables given the first metadata file CloudFormation would write.

- --datalake-formats iceberg puts Iceberg 1.10.0 on a Glue 5.1 job's class path; --conf is one job argument
  whose value chains settings with " --conf " (AWS Glue guide, "Using the Iceberg framework in AWS Glue",
  https://docs.aws.amazon.com/glue/latest/dg/aws-glue-programming-etl-format-iceberg.html). Here the jars are
  always on the class path (tools/glue-local/jars.txt) and Spark starts with the Iceberg SQL extensions
  (spark.py), the one static setting; the others are set on the session before each run.
- Iceberg's GlueCatalog and S3FileIO use the AWS SDK v2; on AWS they find Glue and S3 by region. Here the
  catalog properties Iceberg documents for other endpoints send them to the moto server (Apache Iceberg, "AWS
  Integrations": glue.endpoint, s3.endpoint, s3.path-style-access, client.region). S3FileIO reaches moto this
  way, so the job's io-impl is kept as AWS documents it (no S3A HadoopFileIO stand-in).
- A Glue job is one Spark application: nothing a run caches outlives it. The worker runs many jobs in one
  session, so the catalog's table cache is off (cache-enabled=false): each run loads each table's current
  metadata, as a fresh job would.
- CloudFormation creates an AWS::Glue::Table with OpenTableFormatInput.IcebergInput (MetadataOperation CREATE,
  IcebergTableInput's Schema and PartitionSpec) by having Glue write the table's first metadata file and
  record it as the table's metadata_location. moto's CreateTable only marks such a table table_type=ICEBERG
  and writes no metadata (moto 5.2.1 glue/models.py FakeTable). The stack creators (moto_lake.py,
  src/glue-engine/stack.ts) therefore keep the IcebergTableInput in the parameter STACK_ICEBERG_INPUT, and
  before a run every such table without metadata is created by Iceberg's own GlueCatalog, with that schema,
  identity partitions and format version: the same Catalog entry and metadata file Glue's CREATE makes.
"""

from __future__ import annotations

import json
import shlex
from typing import Any

# The Glue table parameter in which the local stack creators keep the stack's IcebergTableInput.
STACK_ICEBERG_INPUT = "glue_local.iceberg_table_input"
GLUE_CATALOG_IMPL = "org.apache.iceberg.aws.glue.GlueCatalog"
ICEBERG_EXTENSIONS = "org.apache.iceberg.spark.extensions.IcebergSparkSessionExtensions"
# Spark settings fixed when the session starts (spark.sql.extensions is a static SQL conf).
STATIC_CONF = ("spark.sql.extensions",)
# Iceberg types back to Spark SQL types, for the CREATE TABLE of a stack's table.
SPARK_TYPES = {"string": "string", "long": "bigint", "int": "int", "double": "double", "boolean": "boolean", "date": "date"}


class IcebergStandInError(Exception):
    pass


def job_conf(argv: list[str]) -> dict[str, str]:
    """The settings of the job's --conf argument: "k=v --conf k2=v2 ..." as Glue reads it."""
    value = None
    for index, arg in enumerate(argv):
        if arg == "--conf" and index + 1 < len(argv):
            value = argv[index + 1]
    if value is None:
        return {}
    settings: dict[str, str] = {}
    for word in shlex.split(value):
        if word == "--conf":
            continue
        key, sep, setting = word.partition("=")
        if not sep:
            raise IcebergStandInError(f"--conf: {word!r} is not key=value")
        settings[key] = setting
    return settings


def local_catalog_settings(conf: dict[str, str], endpoint_url: str, region: str) -> dict[str, str]:
    """For each Iceberg catalog of the job backed by GlueCatalog, the properties that point it at moto."""
    extra: dict[str, str] = {}
    for key, value in conf.items():
        if key.startswith("spark.sql.catalog.") and key.endswith(".catalog-impl") and value == GLUE_CATALOG_IMPL:
            prefix = key[: -len(".catalog-impl")]
            extra.update(
                {
                    f"{prefix}.glue.endpoint": endpoint_url,
                    f"{prefix}.s3.endpoint": endpoint_url,
                    f"{prefix}.s3.path-style-access": "true",
                    f"{prefix}.client.region": region,
                    f"{prefix}.cache-enabled": "false",
                }
            )
    return extra


def apply_job_conf(spark: Any, argv: list[str], endpoint_url: str, region: str) -> list[str]:
    """Sets the job's --conf on the session (and the local endpoints). Returns the Iceberg catalogs' names."""
    conf = job_conf(argv)
    for key in STATIC_CONF:
        if key in conf and spark.conf.get(key, "") != conf[key]:
            raise IcebergStandInError(
                f"--conf {key}={conf[key]}: the local Spark started with {key}={spark.conf.get(key, '')} "
                "(a static setting: tools/glue-local/glue_local/spark.py sets it at start)"
            )
    for key, value in {**conf, **local_catalog_settings(conf, endpoint_url, region)}.items():
        if key not in STATIC_CONF:
            spark.conf.set(key, value)
    return [k[len("spark.sql.catalog.") : -len(".catalog-impl")] for k, v in conf.items() if k.endswith(".catalog-impl") and v == GLUE_CATALOG_IMPL]


def quote(name: str) -> str:
    return "`" + name.replace("`", "``") + "`"


def create_table_sql(catalog: str, database: str, name: str, spec: dict) -> str:
    """CREATE TABLE of a stack's Iceberg table from its IcebergTableInput (schema, identity partitions, version)."""
    fields = spec["Schema"]["Fields"]
    by_id = {f["Id"]: f["Name"] for f in fields}
    columns = []
    for f in fields:
        if f["Type"] not in SPARK_TYPES:
            raise IcebergStandInError(f"{database}.{name}.{f['Name']}: Iceberg type {f['Type']} is not supported here")
        columns.append(f"{quote(f['Name'])} {SPARK_TYPES[f['Type']]}" + (" NOT NULL" if f.get("Required") else ""))
    partitions = []
    for p in (spec.get("PartitionSpec") or {}).get("Fields", []):
        if p["Transform"] != "identity":
            raise IcebergStandInError(f"{database}.{name}: partition transform {p['Transform']} is not supported here")
        partitions.append(quote(by_id[p["SourceId"]]))
    properties = {**(spec.get("Properties") or {}), "format-version": spec.get("Version", "2")}
    sql = f"CREATE TABLE {catalog}.{quote(database)}.{quote(name)} ({', '.join(columns)}) USING iceberg"
    if partitions:
        sql += f" PARTITIONED BY ({', '.join(partitions)})"
    sql += f" LOCATION '{spec['Location'].rstrip('/')}'"
    return sql + " TBLPROPERTIES (" + ", ".join(f"'{k}'='{v}'" for k, v in sorted(properties.items())) + ")"


def create_stack_iceberg_tables(spark: Any, glue: Any, catalog: str) -> list[str]:
    """Gives each stack Iceberg table that moto holds without metadata its first snapshot-less metadata, through
    Iceberg's GlueCatalog (the moto entry is replaced by the one GlueCatalog creates). Returns their names."""
    created = []
    for page in glue.get_paginator("get_databases").paginate():
        for database in page["DatabaseList"]:
            for table_page in glue.get_paginator("get_tables").paginate(DatabaseName=database["Name"]):
                for table in table_page["TableList"]:
                    parameters = table.get("Parameters") or {}
                    if STACK_ICEBERG_INPUT not in parameters or "metadata_location" in parameters:
                        continue
                    spec = json.loads(parameters[STACK_ICEBERG_INPUT])
                    glue.delete_table(DatabaseName=database["Name"], Name=table["Name"])
                    spark.sql(create_table_sql(catalog, database["Name"], table["Name"], spec))
                    created.append(f"{database['Name']}.{table['Name']}")
    return created


def stack_table_input(resource_properties: dict) -> dict:
    """The TableInput a local stack creator gives moto for an AWS::Glue::Table: the template's, with its
    IcebergTableInput (and Version) kept in STACK_ICEBERG_INPUT when it is an Iceberg table."""
    table_input = dict(resource_properties["TableInput"])
    iceberg = (resource_properties.get("OpenTableFormatInput") or {}).get("IcebergInput")
    if iceberg:
        spec = {**iceberg["IcebergTableInput"], "Version": iceberg.get("Version", "2")}
        table_input["Parameters"] = {**(table_input.get("Parameters") or {}), "table_type": "ICEBERG", STACK_ICEBERG_INPUT: json.dumps(spec)}
    return table_input
