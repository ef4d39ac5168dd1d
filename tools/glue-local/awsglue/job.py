"""awsglue.job.Job: a job run's start and end.

AWS Glue guide, "Tracking processed data using job bookmarks"
(https://docs.aws.amazon.com/glue/latest/dg/monitor-continuations.html): a script calls job.init() at its
start and job.commit() at its end; commit() records the bookmark state of a run when bookmarks are enabled.
The stack's jobs run with --job-bookmark-option job-bookmark-disable (deploy/glue-resources.js), so a
commit records nothing: the stand-in refuses a run with bookmarks enabled rather than ignore them, and
checks that init came before commit as the real Job does (it commits the run init started).
"""

from __future__ import annotations

from typing import Any


class Job:
    def __init__(self, glue_context_or_spark_session: Any) -> None:
        from pyspark.sql import SparkSession

        from awsglue.context import GlueContext

        if isinstance(glue_context_or_spark_session, GlueContext):
            self._spark_session = glue_context_or_spark_session.spark_session
        elif isinstance(glue_context_or_spark_session, SparkSession):
            self._spark_session = glue_context_or_spark_session
        else:
            raise TypeError(f"cannot init Job instance given input parameter type: {type(glue_context_or_spark_session)}")
        self._name: str | None = None
        self.committed = False

    def init(self, job_name: str, args: dict | None = None) -> None:
        bookmark = (args or {}).get("job_bookmark_option", "job-bookmark-disable")
        if bookmark not in (None, "job-bookmark-disable"):
            raise NotImplementedError(f"the Glue stand-in runs jobs with bookmarks disabled only, got {bookmark}")
        self._name = job_name

    def isInitialized(self) -> bool:  # noqa: N802 - awsglue's name
        return self._name is not None

    def commit(self) -> None:
        if self._name is None:
            raise RuntimeError("Job.commit() before Job.init()")
        self.committed = True
