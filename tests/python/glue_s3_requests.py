"""The S3 requests every Glue job of a packaged template makes, and the IAM actions they need.

    python3 tests/python/glue_s3_requests.py .serverless/cloudformation-template-update-stack.json

runs each AWS::Glue::Job of the template, in the template's order, with the arguments Glue would pass it
(its DefaultArguments and the state machine task's Arguments), through glue/run_sql_job.py and the fakes
of test_run_sql_job.py, whose writers and readers record their S3 requests (s3_model.py). It does so on an
empty lake and on a lake with good and bad landing lines (twice: the second run finds the first one's
output and a landing file replaced, so it rewrites a validated batch), under each committer a Glue 5 job may use. It prints {"values": what the template's references
stood for, "permissions": [{action, resource, prefix, by}]}; tests/deploy/serverless-package.test.ts
checks that the template's GlueJobRole grants each one. A job or a prefix added later is checked the same way.
"""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "tools" / "glue-local"))

from awsglue import utils as awsglue  # noqa: E402 - the stand-in (tools/glue-local)
import s3_model  # noqa: E402
import test_run_sql_job as fakes  # noqa: E402
from test_run_sql_job import ROOT, TEMPLATE_VALUES, runner  # noqa: E402
from test_run_sql_job import resolve_template_value as resolve  # noqa: E402

SAMPLE_VALUES = {"string": "a@b.c", "bigint": 1655564000000, "int": 1, "double": 1.5}


def state_machine_arguments(template: dict) -> dict[str, dict]:
    """{Glue job logical id: the Arguments its state machine task passes}, from the packaged definition."""
    out: dict[str, dict] = {}
    for resource in template["Resources"].values():
        if resource["Type"] != "AWS::StepFunctions::StateMachine":
            continue
        substitutions = resource["Properties"].get("DefinitionSubstitutions", {})

        def walk(node):
            if isinstance(node, dict):
                parameters = node.get("Parameters")
                if isinstance(parameters, dict) and isinstance(parameters.get("JobName"), str):
                    name = re.fullmatch(r"\$\{(\w+)\}", parameters["JobName"])
                    target = substitutions.get(name.group(1)) if name else None
                    if isinstance(target, dict) and "Ref" in target:
                        out[target["Ref"]] = parameters.get("Arguments", {})
                for child in node.values():
                    walk(child)
            elif isinstance(node, list):
                for child in node:
                    walk(child)

        walk(json.loads(resource["Properties"]["DefinitionString"]))
    return out


def glue_jobs(template: dict) -> list[dict]:
    tasks = state_machine_arguments(template)
    jobs = []
    for logical_id, resource in template["Resources"].items():
        if resource["Type"] != "AWS::Glue::Job":
            continue
        properties = resource["Properties"]
        run_arguments = {}
        for key, value in tasks.get(logical_id, {}).items():
            if key.endswith(".$"):
                run_arguments[key[:-2]] = fakes.EXECUTION_NAME
            else:
                run_arguments[key] = re.sub(r"\$\{([^}]+)\}", lambda m: TEMPLATE_VALUES[m.group(1)], value)
        jobs.append(
            {
                "name": resolve(properties["Name"]),
                "script": resolve(properties["Command"]["ScriptLocation"]),
                "defaults": {k: resolve(v) for k, v in properties["DefaultArguments"].items()},
                "run_arguments": run_arguments,
            }
        )
    return jobs


def landing_objects(with_lines: bool, replaced: bool = False) -> dict[str, str]:
    """Two landing files per landing table of glue/tables/, a valid line and a malformed one in each; `replaced`:
    the first one replaced by another content (so the next run rewrites the batch both were checked into)."""
    objects = {}
    for ddl in sorted((ROOT / "glue" / "tables").glob("*.sql")):
        table = fakes.read_ddl(ddl.stem)["Table"]
        _, prefix = s3_model.split_uri(table["StorageDescriptor"]["Location"])
        if with_lines:
            record = {c["Name"]: SAMPLE_VALUES[c["Type"]] for c in table["StorageDescriptor"]["Columns"]}
            objects[f"{prefix}/drop-1.json"] = json.dumps(record) + ("\n{not json either\n" if replaced else "\n{not json\n")
            objects[f"{prefix}/drop-2.json"] = json.dumps(record) + "\n[1]\n"
    return objects


def run_pipeline(store: s3_model.S3Store, jobs: list[dict], committer: s3_model.Committer, rows: bool) -> None:
    s3 = fakes.FakeS3({})
    s3.store = store
    resolved = []
    for job in jobs:
        argv = fakes.glue_argv(job["name"], job["defaults"], job["run_arguments"])
        resolved.append((job, runner.resolve_arguments(awsglue.getResolvedOptions, argv)))
    locations = {args.target_table: args.target_path for _, args in resolved}
    for job, args in resolved:
        # Glue downloads the job's script with the job's role before it starts it.
        store.acting = "glue job start (script)"
        store.get(*s3_model.split_uri(job["script"]))
        store.acting = "runner"
        columns = ["a", "b", *args.partition_keys]
        result = [("x", 1, *["2022-06-18"] * len(args.partition_keys))] if rows else []
        spark = fakes.FakeSpark(s3, columns, result, committer=committer, catalog=fakes.FakeCatalog(locations))
        glue_context = fakes.FakeGlueContext(spark)
        runner.run_job(args, spark, glue_context, s3, fakes.FakeGlue(), fakes.FakeSsm(), lambda df, n: ("dynamic frame", df, n))


def sql_objects(jobs: list[dict]) -> dict[str, dict[str, str]]:
    """Each job's SQL file where its arguments say it is (the bucket of --sql_bucket, else the data bucket)."""
    buckets: dict[str, dict[str, str]] = {}
    for job in jobs:
        arguments = {**job["defaults"], **job["run_arguments"]}
        bucket = arguments.get("--sql_bucket", arguments["--bucket"])
        key = arguments["--sql_key"]
        buckets.setdefault(bucket, {})[key] = (ROOT / "glue" / "jobs" / key.rsplit("/", 1)[-1]).read_text()
        script_bucket, script_key = s3_model.split_uri(job["script"])
        buckets.setdefault(script_bucket, {})[script_key] = (ROOT / "glue" / "run_sql_job.py").read_text()
    return buckets


def needed(template: dict) -> list[s3_model.Permission]:
    jobs = glue_jobs(template)
    calls = []
    for name in s3_model.COMMITTERS:
        for with_lines in (False, True):
            store = s3_model.S3Store({**sql_objects(jobs)})
            store.bucket(fakes.BUCKET).update({k: v.encode() for k, v in landing_objects(with_lines).items()})
            run_pipeline(store, jobs, s3_model.Committer(name), rows=with_lines)
            if with_lines:  # a file replaced: the next run checks it and rewrites its batch without it
                store.bucket(fakes.BUCKET).update({k: v.encode() for k, v in landing_objects(True, replaced=True).items()})
                run_pipeline(store, jobs, s3_model.Committer(name), rows=with_lines)
            calls += store.calls
    return sorted(s3_model.needed_permissions(calls), key=lambda p: (p.resource, p.action, p.prefix or "", p.by))


def main(argv: list[str]) -> int:
    if len(argv) != 2 or argv[1] in ("-h", "--help"):
        print(__doc__.strip())
        return 0 if len(argv) == 2 else 2
    template = json.loads(Path(argv[1]).read_text())
    permissions = [{"action": p.action, "resource": p.resource, "prefix": p.prefix, "by": p.by} for p in needed(template)]
    print(json.dumps({"values": TEMPLATE_VALUES, "permissions": permissions}))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
