"""Runs glue/run_sql_job.py's main() unmodified, as AWS Glue runs the job's script, in this process's SparkContext."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

from glue_local.data_catalog import mirror_data_catalog
from glue_local.iceberg import apply_job_conf, create_stack_iceberg_tables
from glue_local.spark import GLUE_LOCAL, RUNNER, endpoint, start_spark


def load_runner() -> ModuleType:
    """The runner as a module. Its functions are pickled by value for Spark's Python workers, as a Glue job's
    script (run as __main__) is: the workers need not import it."""
    if str(GLUE_LOCAL) not in sys.path:
        sys.path.insert(0, str(GLUE_LOCAL))  # `import awsglue` in main() finds the stand-in
    spec = importlib.util.spec_from_file_location("run_sql_job", RUNNER)
    module = importlib.util.module_from_spec(spec)
    sys.modules["run_sql_job"] = module
    spec.loader.exec_module(module)
    from pyspark import cloudpickle

    cloudpickle.register_pickle_by_value(module)
    return module


def catalog_enabled(argv: list[str]) -> bool:
    """--enable-glue-datacatalog as Glue reads it: present with any value but false."""
    for index, arg in enumerate(argv):
        if arg == "--enable-glue-datacatalog":
            value = argv[index + 1] if index + 1 < len(argv) else "true"
            return value.lower() != "false"
        if arg.startswith("--enable-glue-datacatalog="):
            return arg.split("=", 1)[1].lower() != "false"
    return False


class Harness:
    def __init__(self) -> None:
        self.spark = start_spark()
        self.runner = load_runner()
        import boto3

        self.glue = boto3.client("glue")

    def run(self, job_argv: list[str]) -> None:
        """One job run: prepare(), then the script's main() with sys.argv as Glue gives it."""
        self.prepare(job_argv)
        self.runner.main([str(RUNNER), *job_argv])

    def prepare(self, job_argv: list[str]) -> None:
        """A fresh start for what a Glue run would not inherit (temp views, cached data), and the Catalog
        mirrored when the job enables it."""
        if not all(isinstance(a, str) for a in job_argv):
            raise TypeError("argv must be a list of strings")
        self.reset()
        # The job's --conf (Iceberg's catalog) pointed at moto; then the stack's Iceberg tables given the
        # metadata CloudFormation's CREATE would have written (glue_local/iceberg.py).
        for catalog in apply_job_conf(self.spark, job_argv, endpoint(), self.glue.meta.region_name):
            create_stack_iceberg_tables(self.spark, self.glue, catalog)
        if catalog_enabled(job_argv):
            mirror_data_catalog(self.spark, self.glue)

    def export_table(self, table: str, directory: str, partition_keys: list[str], branch: str | None = None) -> None:
        """Writes the current snapshot of an Iceberg table of the jobs' catalog ("database.table") as Parquet into
        a local folder, partitioned into key=value folders: the Glue engine copies results out this way, since
        the table's prefix also holds the files of earlier snapshots and Iceberg's metadata. With a branch (the
        run's, write-audit-publish), the head of that branch when the table has it, else of main."""
        database, name = table.split(".", 1)
        qualified = f"{self.runner.ICEBERG_CATALOG}.`{database}`.`{name}`"
        if branch and branch in self.runner.branch_heads(self.spark, database, name):
            # Iceberg's Spark SQL reads a branch's head as "VERSION AS OF '<branch>'" (Spark Queries, time travel).
            frame = self.spark.sql(f"SELECT * FROM {qualified} VERSION AS OF '{self.runner.checked_branch_name(branch)}'")
        else:
            frame = self.spark.table(qualified)
        writer = frame.write.mode("overwrite")
        if partition_keys:
            writer = writer.partitionBy(*partition_keys)
        writer.parquet(Path(directory).resolve().as_uri())

    def stop(self) -> None:
        """Stops Spark, and closes Hadoop's cached file systems (an S3A instance keeps its endpoint)."""
        jvm = self.spark.sparkContext._jvm
        jvm.org.apache.hadoop.fs.FileSystem.closeAll()
        self.spark.stop()

    def reset(self) -> None:
        for table in self.spark.catalog.listTables():
            if table.isTemporary:
                self.spark.catalog.dropTempView(table.name)
        self.spark.catalog.clearCache()


def error_of(error: BaseException) -> dict[str, Any]:
    """{name, message} of a failed run: the exception's class and its message (a Spark error's first lines)."""
    message = str(error).strip() or repr(error)
    lines = message.splitlines()
    if len(lines) > 20:  # a JVM stack trace: its head says what went wrong
        message = "\n".join(lines[:20]) + f"\n... ({len(lines) - 20} more lines)"
    return {"name": type(error).__name__, "message": message}
