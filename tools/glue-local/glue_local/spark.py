"""The local Spark a Glue 5.1 job runs on: pyspark 3.5.6 on local[2], UTC, s3:// read and written through S3A
(hadoop-aws 3.3.4, pyspark's Hadoop) at the endpoint in AWS_ENDPOINT_URL (the moto server), with Apache Iceberg
1.10.0 (--datalake-formats iceberg on Glue 5.1) on the class path."""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[3]
GLUE_LOCAL = ROOT / "tools" / "glue-local"
RUNNER = ROOT / "glue" / "run_sql_job.py"
SETUP_COMMAND = "npm run setup:glue"


class SetupError(Exception):
    """Java, pyspark or the S3A and Iceberg jars are missing; the message names the command that installs them."""


def jars_dir() -> Path:
    return Path(os.environ.get("GLUE_LOCAL_JARS", ROOT / ".cache" / "glue-jars"))


def required_jars() -> list[Path]:
    """The S3A and Iceberg jars tools/glue-local/jars.txt pins, in the cache `npm run setup:glue` fills."""
    jars = []
    for line in (GLUE_LOCAL / "jars.txt").read_text().splitlines():
        if line.strip() and not line.startswith("#"):
            _group, artifact, version = line.split()[0].split(":")
            jars.append(jars_dir() / f"{artifact}-{version}.jar")
    return jars


def missing_setup() -> str | None:
    """What is missing to run Spark with S3A here, or None."""
    if shutil.which("java") is None and not os.environ.get("JAVA_HOME"):
        return f"java is not installed (Spark needs Java 17, as on AWS Glue 5.1); then run `{SETUP_COMMAND}`"
    try:
        import pyspark  # noqa: F401
    except ImportError:
        return f"pyspark is not installed in {sys.executable}: run `{SETUP_COMMAND}` and use .venv/bin/python"
    absent = [str(j) for j in required_jars() if not j.is_file()]
    if absent:
        return f"the S3A and Iceberg jars are missing ({', '.join(absent)}): run `{SETUP_COMMAND}`"
    return None


def endpoint() -> str:
    url = os.environ.get("AWS_ENDPOINT_URL")
    if not url:
        raise SetupError("AWS_ENDPOINT_URL must name the S3/Glue endpoint (the moto server), e.g. http://127.0.0.1:5000")
    return url


def set_aws_environment_defaults() -> None:
    """Dummy credentials and a region for boto3 and S3A, unless the caller gave some."""
    os.environ.setdefault("AWS_ACCESS_KEY_ID", "testing")
    os.environ.setdefault("AWS_SECRET_ACCESS_KEY", "testing")
    os.environ.setdefault("AWS_DEFAULT_REGION", "us-east-1")


def spark_conf(endpoint_url: str) -> dict[str, str]:
    """The configuration of the shared SparkContext."""
    return {
        "spark.master": "local[2]",
        "spark.app.name": "glue-local",
        "spark.jars": ",".join(str(j) for j in required_jars()),
        "spark.ui.enabled": "false",
        "spark.ui.showConsoleProgress": "false",
        # As many shuffle partitions as local cores instead of Spark's 200: each becomes a task, and on a
        # 2-core machine 200 tiny tasks a stage (each a file and S3 requests on write) take minutes. It changes
        # how many files a write makes, not what they hold.
        "spark.sql.shuffle.partitions": "2",
        "spark.driver.memory": "4g",
        # Glue's driver and executors run in UTC; the runner sets the session time zone too.
        "spark.sql.session.timeZone": "UTC",
        "spark.driver.extraJavaOptions": "-Duser.timezone=UTC",
        "spark.executor.extraJavaOptions": "-Duser.timezone=UTC",
        # Glue 5.1: S3A is the S3 connector for s3:// (AWS Glue guide, "Migrating AWS Glue for Spark jobs to
        # AWS Glue version 5.1": "S3A File System has replaced EMRFS as the default S3 connector").
        # The one static setting of the jobs' --conf (deploy/glue-resources.js): Iceberg's SQL extensions, which
        # a session takes only when it starts (glue_local/iceberg.py applies the rest before each run).
        "spark.sql.extensions": "org.apache.iceberg.spark.extensions.IcebergSparkSessionExtensions",
        "spark.hadoop.fs.s3.impl": "org.apache.hadoop.fs.s3a.S3AFileSystem",
        "spark.hadoop.fs.AbstractFileSystem.s3.impl": "org.apache.hadoop.fs.s3a.S3A",
        "spark.hadoop.fs.s3a.endpoint": endpoint_url,
        "spark.hadoop.fs.s3a.endpoint.region": os.environ["AWS_DEFAULT_REGION"],
        "spark.hadoop.fs.s3a.path.style.access": "true",
        "spark.hadoop.fs.s3a.connection.ssl.enabled": str(endpoint_url.startswith("https:")).lower(),
        "spark.hadoop.fs.s3a.aws.credentials.provider": "org.apache.hadoop.fs.s3a.SimpleAWSCredentialsProvider",
        "spark.hadoop.fs.s3a.access.key": os.environ["AWS_ACCESS_KEY_ID"],
        "spark.hadoop.fs.s3a.secret.key": os.environ["AWS_SECRET_ACCESS_KEY"],
        # A local server answers at once or not at all: fail fast instead of S3A's long retry schedule.
        "spark.hadoop.fs.s3a.attempts.maximum": "3",
        "spark.hadoop.fs.s3a.retry.limit": "3",
        "spark.hadoop.fs.s3a.connection.establish.timeout": "5000",
    }


def start_spark() -> Any:
    """The one SparkSession of this process (created on first call). Raises SetupError when set-up is missing."""
    problem = missing_setup()
    if problem:
        raise SetupError(problem)
    set_aws_environment_defaults()
    url = endpoint()
    # Spark's Python workers run this interpreter (the .venv's, with the runner's imports).
    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    os.environ.setdefault("PYSPARK_DRIVER_PYTHON", sys.executable)
    from pyspark.sql import SparkSession

    builder = SparkSession.builder
    for key, value in spark_conf(url).items():
        builder = builder.config(key, value)
    spark = builder.getOrCreate()
    spark.sparkContext.setLogLevel("WARN")
    return spark
