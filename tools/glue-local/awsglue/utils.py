"""awsglue.utils.getResolvedOptions, as the one AWS Glue 5.1 runs.

Modelled on awslabs/aws-glue-libs, branch glue-5.1: awsglue/utils.py (getResolvedOptions) and
awsglue/job.py (the reserved option lists), read 2026; the AWS Glue guide's "Accessing parameters using
getResolvedOptions" documents the call. What the real function does, and this one too:

- it parses with argparse, its own parser raising GlueArgumentError instead of exiting;
- before the caller's names it registers, itself, the arguments Glue may pass to any run: --JOB_ID,
  --JOB_RUN_ID, --SECURITY_CONFIGURATION, --job-bookmark-option (and the older --continuation-option),
  --job-bookmark-from, --job-bookmark-to, --encryption-type, --enable-data-lineage, --TempDir and
  --RedshiftTempDir; they come back in the result under argparse's names (JOB_RUN_ID, job_bookmark_option...),
  None when the run has none;
- naming job-bookmark-option, continuation-option or a bookmark range option in `options` raises
  RuntimeError("Using reserved arguments ..."); its guard for JOB_ID, JOB_RUN_ID, SECURITY_CONFIGURATION,
  encryption-type and enable-data-lineage compares the dashed option with the bare names, so it never
  fires, and argparse itself refuses the second registration: ArgumentError "conflicting option string";
- TempDir and RedshiftTempDir are taken out of `options` (never required); every other name in `options`
  is required: a run without it raises GlueArgumentError "the following arguments are required";
- arguments nobody registered (the job's other DefaultArguments) are ignored: parse_known_args(argv[1:]);
- TempDir and RedshiftTempDir stand in for each other, and job_bookmark_option defaults to
  job-bookmark-disable (or the translation of a --continuation-option).
"""

from __future__ import annotations

import argparse

BOOKMARK_CHOICES = ("job-bookmark-enable", "job-bookmark-pause", "job-bookmark-disable")
CONTINUATION_CHOICES = ("continuation-enabled", "continuation-readonly", "continuation-ignore")
BOOKMARK_RANGE = ("job-bookmark-from", "job-bookmark-to")
# Job.id_params()[1:]: JOB_NAME is the first of the list and is not reserved (callers ask for it).
ID_PARAMS = ("JOB_ID", "JOB_RUN_ID", "SECURITY_CONFIGURATION")


class GlueArgumentError(Exception):
    """awsglue.utils.GlueArgumentError: what argparse would have printed before exiting."""


class _Parser(argparse.ArgumentParser):
    def error(self, message):
        raise GlueArgumentError(message)


def getResolvedOptions(args: list[str], options: list[str]) -> dict:  # noqa: N802 - awsglue's name
    """The job's arguments named in `options` (AWS Glue guide, "Accessing parameters using getResolvedOptions":
    https://docs.aws.amazon.com/glue/latest/dg/aws-glue-api-crawler-pyspark-extensions-get-resolved-options.html)."""
    parser = _Parser()
    for reserved in ("continuation-option", "job-bookmark-option"):
        if reserved in options:
            raise RuntimeError(f"Using reserved arguments {reserved}")
    parser.add_argument("--job-bookmark-option", choices=BOOKMARK_CHOICES, required=False)
    parser.add_argument("--continuation-option", choices=CONTINUATION_CHOICES, required=False)
    for name in BOOKMARK_RANGE:
        if name in options:
            raise RuntimeError(f"Using reserved arguments --{name}")
        parser.add_argument(f"--{name}", required=False)
    # The real guards here test "--JOB_ID" in options (never true for bare names): no RuntimeError, and
    # a caller's JOB_ID meets argparse's conflict below.
    for name in ID_PARAMS:
        parser.add_argument(f"--{name}", required=False)
    parser.add_argument("--encryption-type", choices=["sse-s3"])
    parser.add_argument("--enable-data-lineage", required=False)
    parser.add_argument("--RedshiftTempDir", required=False)
    parser.add_argument("--TempDir", required=False)
    for name in options:
        if name in ("TempDir", "RedshiftTempDir"):
            continue
        parser.add_argument(f"--{name}", required=True)  # a reserved name: ArgumentError, conflicting option string

    parsed, _unknown = parser.parse_known_args(args[1:])
    resolved = vars(parsed)

    if resolved.get("TempDir") is not None:
        resolved["RedshiftTempDir"] = resolved["TempDir"]
    elif resolved.get("RedshiftTempDir") is not None:
        resolved["TempDir"] = resolved["RedshiftTempDir"]

    continuation = resolved.pop("continuation_option", None)
    if resolved.get("job_bookmark_option") is None:
        resolved["job_bookmark_option"] = (
            "job-bookmark-disable" if continuation is None else BOOKMARK_CHOICES[CONTINUATION_CHOICES.index(continuation)]
        )
    absent_range = [name for name in BOOKMARK_RANGE if resolved.get(name.replace("-", "_")) is None]
    if resolved["job_bookmark_option"] == "job-bookmark-pause":
        if len(absent_range) == 1:
            raise RuntimeError(f"Missing option or value for --{absent_range[0]}")
    elif not absent_range:
        raise RuntimeError("Invalid option(s)--job-bookmark-from --job-bookmark-to")
    return resolved
