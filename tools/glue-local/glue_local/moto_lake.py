"""One moto server for every AWS endpoint a Glue job uses (S3, the Glue Data Catalog, SSM, CloudWatch), and the
stack's lake on it: the data bucket, the deployment bucket with the jobs' SQL at their content-addressed keys,
the Glue database and the tables deploy/glue-resources.js defines, and the SecureString salt."""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import Any, Iterator

from glue_local.spark import GLUE_LOCAL, ROOT
from glue_local.stack import stack_definitions

TEST_SALT = "glue-local-salt-0123456789abcdef"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@contextlib.contextmanager
def moto_server(record: Path | None = None) -> Iterator[str]:
    """The moto server (`python -m glue_local.moto_server`: moto's, with S3's CompleteMultipartUpload answer
    corrected for S3A; with `record`, recording its S3 requests in that file) on a free local port; yields its
    URL and stops it on the way out."""
    port = free_port()
    command = [sys.executable, "-m", "glue_local.moto_server", "-H", "127.0.0.1", "-p", str(port)]
    if record is not None:
        command += ["--record", str(record)]
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(GLUE_LOCAL), os.environ.get("PYTHONPATH", "")]).rstrip(os.pathsep))
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            if process.poll() is not None:
                raise RuntimeError(f"the moto server exited ({process.returncode}) before answering")
            try:
                urllib.request.urlopen(f"{url}/moto-api/", timeout=1).close()
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise RuntimeError("the moto server did not answer within 30 s") from None
                time.sleep(0.1)  # polling the server's start, not waiting for a result
        yield url
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def clients(endpoint: str) -> dict[str, Any]:
    import boto3

    session = boto3.session.Session(
        aws_access_key_id=os.environ.get("AWS_ACCESS_KEY_ID", "testing"),
        aws_secret_access_key=os.environ.get("AWS_SECRET_ACCESS_KEY", "testing"),
        region_name=os.environ.get("AWS_DEFAULT_REGION", "us-east-1"),
    )
    return {name: session.client(name, endpoint_url=endpoint) for name in ("s3", "glue", "ssm", "cloudwatch")}


def create_lake(endpoint: str, values: dict[str, str] | None = None, salt: str = TEST_SALT) -> dict:
    """The stack's buckets, SQL objects, database, tables and salt on the server. Returns stack_definitions()."""
    stack = stack_definitions(values)
    aws = clients(endpoint)
    v = stack["values"]
    for bucket in (v["DataBucket"], v["ServerlessDeploymentBucket"]):
        aws["s3"].create_bucket(Bucket=bucket)
    for job in stack["jobs"]:
        args = job["default_arguments"]
        aws["s3"].put_object(Bucket=args["--sql_bucket"], Key=args["--sql_key"], Body=(ROOT / "glue" / "jobs" / f"{job['job']}.sql").read_bytes())
        # The job's diagnostics: glue-assets/<sha256>/<name>.sql, each a saved query of glue/queries/.
        for key in filter(None, args.get("--diagnostic_keys", "").split(",")):
            aws["s3"].put_object(Bucket=args["--sql_bucket"], Key=key, Body=(ROOT / "glue" / "queries" / key.rsplit("/", 1)[-1]).read_bytes())
    aws["glue"].create_database(DatabaseInput={"Name": stack["database"]})
    for table in stack["tables"]:
        aws["glue"].create_table(DatabaseName=stack["database"], TableInput=table)
    aws["ssm"].put_parameter(Name=v["PiiSaltParameterName"], Value=salt, Type="SecureString")
    return stack
