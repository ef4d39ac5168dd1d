"""awsglue.context.GlueContext: the Spark session, the S3 sink that updates the Data Catalog, and purge_s3_path.

What each part does follows the AWS Glue guide (cited where it is implemented); the names and signatures
follow awslabs/aws-glue-libs, branch glue-5.1 (awsglue/context.py, awsglue/data_sink.py). The S3 and Glue
requests that AWS Glue's JVM side sends are sent here with boto3, whose endpoint (AWS_ENDPOINT_URL) is the
same one S3A uses, so what they do is seen by the same S3 and Data Catalog the job reads.
"""

from __future__ import annotations

import re
from datetime import datetime, timedelta, timezone
from typing import Any

from awsglue.dynamicframe import DynamicFrame

# getSink's updateBehavior values (AWS Glue guide, "Updating the schema, and adding new partitions in the Data
# Catalog using AWS Glue ETL jobs": https://docs.aws.amazon.com/glue/latest/dg/update-from-job.html).
UPDATE_IN_DATABASE = "UPDATE_IN_DATABASE"
LOG = "LOG"
# The formats the stand-in's S3 sink writes: "glueparquet" is Glue's Parquet writer for DynamicFrames, the one
# the guide asks for when a sink creates or updates a Parquet table in the Catalog; Spark's Parquet writer
# stands in for it (both write Parquet files with Snappy compression by default).
PARQUET_FORMATS = ("glueparquet", "parquet")
# purge_s3_path's default retention (aws-glue-libs glue-5.1 context.py docstring; AWS Glue guide,
# "purge_s3_path": https://docs.aws.amazon.com/glue/latest/dg/aws-glue-api-crawler-pyspark-extensions-glue-context.html#aws-glue-api-crawler-pyspark-extensions-glue-context-purge_s3_path):
# files newer than retentionPeriod hours are kept; 168 hours unless told.
DEFAULT_RETENTION_HOURS = 168
DELETE_BATCH = 1000  # DeleteObjects takes at most 1,000 keys


def split_s3_path(path: str) -> tuple[str, str]:
    match = re.match(r"s3a?://([^/]+)/?(.*)$", path)
    if not match:
        raise ValueError(f"not an S3 path: {path}")
    return match.group(1), match.group(2)


def _boto3_client(service: str) -> Any:
    import boto3

    return boto3.client(service)  # endpoint, region and credentials from the environment (AWS_ENDPOINT_URL...)


class GlueContext:
    """GlueContext(sparkContext): as aws-glue-libs, the session is SparkSession.builder.getOrCreate(), the one
    SparkSession of the application (so a second GlueContext shares it)."""

    def __init__(self, sparkContext: Any = None, **options: Any) -> None:  # noqa: N803 - awsglue's name
        from pyspark.sql import SparkSession

        if isinstance(sparkContext, SparkSession):
            self.spark_session = sparkContext
        else:
            self.spark_session = SparkSession.builder.getOrCreate()
        self._sc = self.spark_session.sparkContext
        self._s3 = options.get("s3_client")
        self._glue = options.get("glue_client")

    @property
    def sparkSession(self) -> Any:  # noqa: N802 - awsglue's name
        return self.spark_session

    @property
    def s3(self) -> Any:
        if self._s3 is None:
            self._s3 = _boto3_client("s3")
        return self._s3

    @property
    def glue(self) -> Any:
        if self._glue is None:
            self._glue = _boto3_client("glue")
        return self._glue

    def getSink(self, connection_type: str, format: str | None = None, transformation_ctx: str = "", **options: Any) -> "DataSink":  # noqa: N802, A002
        """A sink to S3 (the only connection type the jobs use); `options` as the guide's getSink example:
        path, enableUpdateCatalog, updateBehavior, partitionKeys."""
        if connection_type != "s3":
            raise NotImplementedError(f"the Glue stand-in has an S3 sink only, got connection_type={connection_type!r}")
        if "path" not in options:
            raise ValueError("getSink(connection_type='s3') needs a path")
        sink = DataSink(self, options, transformation_ctx)
        if format is not None:
            sink.setFormat(format)
        return sink

    def purge_s3_path(self, s3_path: str, options: dict | None = None, transformation_ctx: str = "") -> None:
        """Deletes the objects under s3_path, recursively, except those newer than retentionPeriod hours
        (default 168) and those of a storage class in excludeStorageClasses (AWS Glue guide, purge_s3_path).

        Sent as S3 requests: ListObjectsV2 over the prefix, then DeleteObjects in batches of 1,000 keys."""
        options = dict(options or {})
        if options.get("manifestFilePath"):
            raise NotImplementedError("purge_s3_path's manifestFilePath is not stood in")
        retention = float(options.get("retentionPeriod", DEFAULT_RETENTION_HOURS))
        excluded = set(options.get("excludeStorageClasses", []))
        cutoff = datetime.now(timezone.utc) - timedelta(hours=retention)
        bucket, prefix = split_s3_path(s3_path)
        doomed = []
        for page in self.s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
            for obj in page.get("Contents", []):
                if obj.get("StorageClass", "STANDARD") in excluded:
                    continue
                # Retention 0 deletes everything: "newer than" the run's own start is nothing already there.
                if retention == 0 or obj["LastModified"] < cutoff:
                    doomed.append(obj["Key"])
        for start in range(0, len(doomed), DELETE_BATCH):
            batch = doomed[start : start + DELETE_BATCH]
            self.s3.delete_objects(Bucket=bucket, Delete={"Objects": [{"Key": k} for k in batch], "Quiet": True})


class DataSink:
    """awsglue.data_sink.DataSink for S3 (AWS Glue guide, update-from-job.html, "Method 2": getSink(...,
    enableUpdateCatalog=True, partitionKeys=[...]), setFormat, setCatalogInfo, writeFrame)."""

    def __init__(self, glue_context: GlueContext, options: dict, transformation_ctx: str) -> None:
        self._glue_context = glue_context
        self.path: str = options["path"]
        self.enable_update_catalog = bool(options.get("enableUpdateCatalog", False))
        # "updateBehavior ... The default value is UPDATE_IN_DATABASE" (update-from-job.html).
        self.update_behavior = options.get("updateBehavior", UPDATE_IN_DATABASE)
        if self.update_behavior not in (UPDATE_IN_DATABASE, LOG):
            raise ValueError(f"updateBehavior must be {UPDATE_IN_DATABASE} or {LOG}, got {self.update_behavior!r}")
        self.partition_keys: list[str] = list(options.get("partitionKeys") or [])
        self.transformation_ctx = transformation_ctx
        self.format: str | None = None
        self.catalog_database: str | None = None
        self.catalog_table: str | None = None

    def setFormat(self, format: str, **options: Any) -> None:  # noqa: N802, A002 - awsglue's names
        if format not in PARQUET_FORMATS:
            raise NotImplementedError(f"the Glue stand-in's S3 sink writes {' or '.join(PARQUET_FORMATS)}, got {format!r}")
        self.format = format

    def setCatalogInfo(self, catalogDatabase: str, catalogTableName: str, catalogId: str = "") -> None:  # noqa: N802, N803
        self.catalog_database = catalogDatabase
        self.catalog_table = catalogTableName

    def writeFrame(self, dynamic_frame: DynamicFrame, info: str = "") -> DynamicFrame:  # noqa: N802
        """Writes the frame's records as new Parquet files under the path (the S3 sink adds files; it deletes
        nothing), in Hive-style key=value folders of the partition keys, then updates the Catalog table."""
        if self.format is None:
            raise ValueError("setFormat() before writeFrame(): the S3 sink needs a format")
        frame = dynamic_frame.toDF()
        missing = [k for k in self.partition_keys if k not in frame.columns]
        if missing:
            raise ValueError(f"partitionKeys {missing} are not columns of the frame {frame.columns}")
        table = self._catalog_table() if self.enable_update_catalog else None
        writer = frame.write.mode("append").format("parquet")
        if self.partition_keys:
            writer = writer.partitionBy(*self.partition_keys)
        writer.save(self.path)
        if table is not None:
            self._update_catalog(table, frame)
        spark = self._glue_context.spark_session
        return DynamicFrame(spark.createDataFrame([], "error string"), self._glue_context, dynamic_frame.name + "_errors")

    # --- The Data Catalog update (update-from-job.html) --------------------------------------------------

    def _catalog_table(self) -> dict:
        if not (self.catalog_database and self.catalog_table):
            raise ValueError("enableUpdateCatalog needs setCatalogInfo(catalogDatabase, catalogTableName)")
        table = self._glue_context.glue.get_table(DatabaseName=self.catalog_database, Name=self.catalog_table)["Table"]
        # "Your partitionKeys must be equivalent, and in the same order, between your parameter passed in your
        # ETL script and the partitionKeys in your Data Catalog table schema." Checked before anything is written.
        declared = [k["Name"] for k in table.get("PartitionKeys", [])]
        if [k.lower() for k in declared] != [k.lower() for k in self.partition_keys]:
            raise ValueError(
                f"partitionKeys {self.partition_keys} differ from {self.catalog_database}.{self.catalog_table}'s "
                f"partition keys in the Data Catalog {declared}"
            )
        return table

    def _update_catalog(self, table: dict, frame: Any) -> None:
        if self.partition_keys and self.update_behavior == UPDATE_IN_DATABASE:
            self._update_schema(table, frame)
        if self.partition_keys:
            self._add_partitions(table, frame)

    def _update_schema(self, table: dict, frame: Any) -> None:
        """UPDATE_IN_DATABASE: the table's columns become the frame's (the columns that are not partition keys).
        Only a partitioned sink updates a schema: the update rides on the partition update the partitionKeys
        option turns on (the guide's examples all pass partitionKeys; the stack's derived tables rely on
        their declared schema for the unpartitioned ones, deploy/glue-resources.js)."""
        keys = {k.lower() for k in self.partition_keys}
        comments = {c["Name"].lower(): c.get("Comment") for c in table["StorageDescriptor"]["Columns"]}
        columns = []
        for field in frame.schema.fields:
            if field.name.lower() in keys:
                continue
            column = {"Name": field.name, "Type": field.dataType.simpleString()}
            if comments.get(field.name.lower()):
                column["Comment"] = comments[field.name.lower()]
            columns.append(column)
        descriptor = dict(table["StorageDescriptor"], Columns=columns)
        table_input = {
            key: table[key]
            for key in ("Name", "Description", "Owner", "Retention", "PartitionKeys", "TableType", "Parameters")
            if key in table
        }
        table_input["StorageDescriptor"] = descriptor
        self._glue_context.glue.update_table(DatabaseName=self.catalog_database, TableInput=table_input)

    def _add_partitions(self, table: dict, frame: Any) -> None:
        """Adds the partitions the write created that the table does not have yet, at <path><k>=<v>/..., with
        the table's storage descriptor (BatchCreatePartition, at most 100 partitions a call)."""
        spark = self._glue_context.spark_session
        escape = spark._jvm.org.apache.spark.sql.catalyst.catalog.ExternalCatalogUtils.escapePathName
        default_name = spark._jvm.org.apache.spark.sql.catalyst.catalog.ExternalCatalogUtils.DEFAULT_PARTITION_NAME()
        written = {
            tuple(default_name if v is None else str(v) for v in row)
            for row in frame.select(*self.partition_keys).distinct().collect()
        }
        glue = self._glue_context.glue
        existing = set()
        for page in glue.get_paginator("get_partitions").paginate(DatabaseName=self.catalog_database, TableName=self.catalog_table):
            existing.update(tuple(p["Values"]) for p in page["Partitions"])
        base = self.path if self.path.endswith("/") else self.path + "/"
        new = []
        for values in sorted(written - existing):
            folder = "/".join(f"{escape(k)}={escape(v)}" for k, v in zip(self.partition_keys, values))
            descriptor = dict(table["StorageDescriptor"], Location=f"{base}{folder}/")
            new.append({"Values": list(values), "StorageDescriptor": descriptor})
        for start in range(0, len(new), 100):
            response = glue.batch_create_partition(
                DatabaseName=self.catalog_database, TableName=self.catalog_table, PartitionInputList=new[start : start + 100]
            )
            if response.get("Errors"):
                raise RuntimeError(f"BatchCreatePartition failed for {self.catalog_table}: {response['Errors'][:3]}")
