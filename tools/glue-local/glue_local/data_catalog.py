"""The Data Catalog as Spark's catalog (--enable-glue-datacatalog), on local Spark.

On AWS Glue, --enable-glue-datacatalog makes the Data Catalog Spark's Hive metastore (AWS Glue guide,
"Using job parameters in AWS Glue jobs": "--enable-glue-datacatalog — Enables you to use the AWS Glue Data
Catalog as an Apache Spark Hive metastore", https://docs.aws.amazon.com/glue/latest/dg/aws-glue-programming-etl-glue-arguments.html),
so spark.table("db.t") reads a table with the columns, location and partitions the Glue API defines.

Here the Glue API is the moto server's. AWS's Hive metastore client for the Data Catalog is not published
on Maven Central, so instead of a metastore client the stand-in MIRRORS the catalog into Spark's in-memory
session catalog before each job run: every database, every table (its columns, partition keys and location;
Parquet tables as Spark Parquet tables, which is how Spark reads a Hive Parquet table anyway,
spark.sql.hive.convertMetastoreParquet), and every partition at its catalog location. The mirror is
taken when the run starts, as a metastore client's answers would be during it: the jobs change the Catalog
only through their sink, after their reads.
"""

from __future__ import annotations

from typing import Any

PARQUET_SERDE = "org.apache.hadoop.hive.ql.io.parquet.serde.ParquetHiveSerDe"


def quote(name: str) -> str:
    return "`" + name.replace("`", "``") + "`"


def sql_string(value: str) -> str:
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"


def table_format(table: dict) -> str:
    descriptor = table.get("StorageDescriptor", {})
    serde = descriptor.get("SerdeInfo", {}).get("SerializationLibrary", "")
    classification = (table.get("Parameters") or {}).get("classification", "")
    if serde == PARQUET_SERDE or "parquet" in descriptor.get("InputFormat", "").lower() or classification == "parquet":
        return "parquet"
    if classification == "json" or "json" in serde.lower():
        return "json"
    return ""


def create_table_sql(database: str, table: dict) -> str | None:
    """CREATE TABLE of a Catalog table in Spark's catalog, or None for a format Spark cannot read as a data source."""
    if (table.get("Parameters") or {}).get("table_type", "").upper() == "ICEBERG":
        return None  # read through the job's Iceberg catalog (glue_local/iceberg.py), not the session catalog
    fmt = table_format(table)
    descriptor = table.get("StorageDescriptor", {})
    location = descriptor.get("Location")
    if not fmt or not location:
        return None
    keys = table.get("PartitionKeys") or []
    columns = [*descriptor.get("Columns", []), *keys]
    column_sql = ", ".join(f"{quote(c['Name'])} {c['Type']}" for c in columns)
    sql = f"CREATE TABLE {quote(database)}.{quote(table['Name'])} ({column_sql}) USING {fmt}"
    if keys:
        sql += " PARTITIONED BY (" + ", ".join(quote(k["Name"]) for k in keys) + ")"
    return sql + f" LOCATION {sql_string(location)}"


def mirror_data_catalog(spark: Any, glue: Any) -> dict[str, int]:
    """Replaces Spark's catalog databases, tables and partitions with the Data Catalog's. Returns counts."""
    counts = {"databases": 0, "tables": 0, "partitions": 0}
    for page in glue.get_paginator("get_databases").paginate():
        for database in page["DatabaseList"]:
            name = database["Name"]
            spark.sql(f"DROP DATABASE IF EXISTS {quote(name)} CASCADE")
            spark.sql(f"CREATE DATABASE {quote(name)}")
            counts["databases"] += 1
            for table_page in glue.get_paginator("get_tables").paginate(DatabaseName=name):
                for table in table_page["TableList"]:
                    statement = create_table_sql(name, table)
                    if statement is None:
                        continue
                    spark.sql(statement)
                    counts["tables"] += 1
                    if table.get("PartitionKeys"):
                        counts["partitions"] += mirror_partitions(spark, glue, name, table)
    return counts


def mirror_partitions(spark: Any, glue: Any, database: str, table: dict) -> int:
    keys = [k["Name"] for k in table["PartitionKeys"]]
    specs = []
    for page in glue.get_paginator("get_partitions").paginate(DatabaseName=database, TableName=table["Name"]):
        for partition in page["Partitions"]:
            spec = ", ".join(f"{quote(k)} = {sql_string(v)}" for k, v in zip(keys, partition["Values"]))
            specs.append(f"PARTITION ({spec}) LOCATION {sql_string(partition['StorageDescriptor']['Location'])}")
    for start in range(0, len(specs), 500):
        spark.sql(f"ALTER TABLE {quote(database)}.{quote(table['Name'])} ADD IF NOT EXISTS " + " ".join(specs[start : start + 500]))
    return len(specs)
