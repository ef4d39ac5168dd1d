"""Fixtures of the Spark tests: one moto server (every AWS endpoint) and one local Spark per test module.

A module that uses `glue_engine` is skipped, with the command that installs them, when java, pyspark or the S3A
jars are missing (`npm run setup:glue`)."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "tools" / "glue-local"))


def pytest_configure(config):
    config.addinivalue_line("markers", "spark: runs local Spark (skipped without `npm run setup:glue`)")


@pytest.fixture(scope="module")
def glue_engine(tmp_path_factory):
    """A GlueEngine: the moto server's URL, its clients, an in-process harness (Spark with S3A pointed at the
    server) and helpers to create the stack's lake and run its jobs. Stopped, Spark and server, at module end."""
    from glue_local.spark import missing_setup

    problem = missing_setup()
    if problem:
        # In CI the set-up is part of `npm test`: a missing piece there is a failure, never a quiet skip.
        if os.environ.get("CI"):
            pytest.fail(f"the Glue engine tests need the pinned Spark set-up, which npm run setup:glue should have made: {problem}")
        pytest.skip(f"the Glue engine tests need the pinned Spark set-up: {problem}")
    from glue_engine import GlueEngine
    from glue_local.moto_lake import moto_server

    saved = {k: os.environ.get(k) for k in ("AWS_ENDPOINT_URL", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_DEFAULT_REGION")}
    log = tmp_path_factory.mktemp("moto") / "requests.jsonl"
    with moto_server(record=log, record_glue=log.with_name("glue-requests.jsonl")) as url:
        os.environ.update(AWS_ENDPOINT_URL=url, AWS_ACCESS_KEY_ID="testing", AWS_SECRET_ACCESS_KEY="testing", AWS_DEFAULT_REGION="us-east-1")
        engine = None
        try:
            engine = GlueEngine(url, log)
            yield engine
        finally:
            if engine is not None:
                engine.stop()
            for key, value in saved.items():
                if value is None:
                    os.environ.pop(key, None)
                else:
                    os.environ[key] = value
