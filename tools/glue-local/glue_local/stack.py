"""The stack's Glue definitions, as deploy/glue-resources.js generates them for the template: the Catalog tables'
TableInputs, the Glue jobs' DefaultArguments, and the Arguments each Glue task of statemachines/pipeline.asl.json
passes, with the template's Ref / Fn::Sub / ${...} substitutions resolved from given values.

python -m glue_local.stack --values '{"DataBucket": "b", "GlueDatabase": "d", ...}' prints them as JSON.
Needs dist/ (npm run build): deploy/glue-resources.js reads the job list and DDL from the compiled project.
"""

from __future__ import annotations

import argparse
import json
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

from glue_local.iceberg import stack_table_input
from glue_local.spark import ROOT

# The template names the stack's resources and parameters resolve to; see docs/glue-engine.md.
DEFAULT_VALUES = {
    "GlueDatabase": "stedi_lakehouse_local",
    "DataBucket": "stedi-lakehouse-local-data",
    "DataBucket.Arn": "arn:aws:s3:::stedi-lakehouse-local-data",
    "PiiSaltParameterName": "/stedi-lakehouse/local/pii-salt",
    "ConsentPolicy": "since-consent",
    "AWS::StackName": "stedi-lakehouse-local",
    "AWS::AccountId": "123456789012",
    "AWS::Region": "us-east-1",
    "AWS::Partition": "aws",
    "ServerlessDeploymentBucket": "stedi-lakehouse-local-deployment",
}


class StackDefinitionError(Exception):
    pass


def glue_resources() -> dict:
    """deploy/glue-resources.js's resources(): {logicalId: resource}."""
    if shutil.which("node") is None:
        raise StackDefinitionError("node is not installed: the stack's definitions come from deploy/glue-resources.js")
    if not (ROOT / "dist" / "src" / "definition" / "pipeline.js").exists():
        raise StackDefinitionError("dist/ is missing: run `npm run build` (deploy/glue-resources.js reads the compiled project)")
    script = "console.log(JSON.stringify(require(process.argv[1]).resources().Resources))"
    run = subprocess.run(["node", "-e", script, str(ROOT / "deploy" / "glue-resources.js")], capture_output=True, text=True)
    if run.returncode != 0:
        raise StackDefinitionError(f"deploy/glue-resources.js failed: {run.stderr.strip()}")
    return json.loads(run.stdout)


def resolve(value: Any, values: dict[str, str]) -> Any:
    """A template value with its Ref, Fn::Sub and Fn::GetAtt resolved (recursively, through lists and maps)."""

    def sub(text: str) -> str:
        def one(match: re.Match) -> str:
            if match.group(1) not in values:
                raise StackDefinitionError(f"no value for ${{{match.group(1)}}}")
            return values[match.group(1)]

        return re.sub(r"\$\{([^}!]+)\}", one, text)

    if isinstance(value, list):
        return [resolve(v, values) for v in value]
    if isinstance(value, dict):
        if set(value) == {"Ref"}:
            if value["Ref"] not in values:
                raise StackDefinitionError(f"no value for Ref {value['Ref']}")
            return values[value["Ref"]]
        if set(value) == {"Fn::Sub"}:
            return sub(value["Fn::Sub"])
        if set(value) == {"Fn::GetAtt"}:
            return values[".".join(value["Fn::GetAtt"])]
        return {k: resolve(v, values) for k, v in value.items()}
    return value


def state_machine_glue_arguments(values: dict[str, str]) -> dict[str, dict[str, str]]:
    """{job name as deployed: the Glue task's Arguments}; a "--x.$" path argument (the execution name for
    --run_id, the run's branch for --wap_branch) is left to the caller, under its own name with ".$". The
    publish task (PublishRun: a run of the last job's Glue job with --publish_tables) is not a job's task."""
    definition = json.loads((ROOT / "statemachines" / "pipeline.asl.json").read_text())
    found: dict[str, dict[str, str]] = {}

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            if str(node.get("Resource", "")).startswith("arn:aws:states:::glue:startJobRun"):
                parameters = node["Parameters"]
                if "--publish_tables" in parameters.get("Arguments", {}):
                    return
                job = resolve({"Fn::Sub": parameters["JobName"]}, values)
                found[job] = {k: resolve({"Fn::Sub": v}, values) if isinstance(v, str) else v for k, v in parameters.get("Arguments", {}).items()}
            for child in node.values():
                walk(child)
        elif isinstance(node, list):
            for child in node:
                walk(child)

    walk(definition)
    return found


def stack_definitions(values: dict[str, str] | None = None) -> dict:
    """{"database", "bucket", "tables": [TableInput], "jobs": [{"name", "job", "default_arguments", "task_arguments"}]}.

    Job names in values (the state machine's ${CustomerLandingToTrustedJobName}...) are the deployed names,
    <stack>-<job>, as the AWS::Glue::Job resources' Name."""
    merged = {**DEFAULT_VALUES, **(values or {})}
    merged.setdefault("DataBucket.Arn", f"arn:aws:s3:::{merged['DataBucket']}")
    resources = glue_resources()
    jobs = []
    for logical_id, resource in resources.items():
        if resource["Type"] == "AWS::Glue::Job":
            merged[f"{logical_id}Name"] = resolve(resource["Properties"]["Name"], merged)
            merged[logical_id] = merged[f"{logical_id}Name"]
    task_arguments = state_machine_glue_arguments(merged)
    tables = []
    for resource in resources.values():
        if resource["Type"] == "AWS::Glue::Table":
            tables.append(stack_table_input(resolve(resource["Properties"], merged)))
        elif resource["Type"] == "AWS::Glue::Job":
            properties = resource["Properties"]
            name = resolve(properties["Name"], merged)
            jobs.append(
                {
                    "name": name,
                    "job": name[len(merged["AWS::StackName"]) + 1 :],
                    "script": resolve(properties["Command"]["ScriptLocation"], merged),
                    "default_arguments": resolve(properties["DefaultArguments"], merged),
                    "task_arguments": task_arguments.get(name, {}),
                }
            )
    return {"database": merged["GlueDatabase"], "bucket": merged["DataBucket"], "values": merged, "tables": tables, "jobs": jobs}


def job_argv(job: dict, run_id: str, overrides: dict[str, str] | None = None, branch: str | None = None) -> list[str]:
    """The arguments a Glue run of the job gets (the script path excluded): its DefaultArguments overridden by
    the task's Arguments (AWS Glue guide, "Using job parameters in AWS Glue jobs": run arguments replace
    default ones), the execution name for a "--run_id.$" path, then --JOB_NAME, which Glue adds itself.
    The run's branch ("--wap_branch.$") is given only with `branch`: without it the job writes main, as a run
    of the job alone does (write, audit, publish is the state machine's, tested end to end by the Glue engine)."""
    merged = dict(job["default_arguments"])
    for key, value in job["task_arguments"].items():
        if key == "--wap_branch.$":
            if branch is not None:
                merged["--wap_branch"] = branch
        elif key.endswith(".$"):
            merged[key[:-2]] = run_id  # $$.Execution.Name
        else:
            merged[key] = value
    merged.update(overrides or {})
    argv: list[str] = []
    for key, value in merged.items():
        argv += [key, str(value)]
    return argv + ["--JOB_NAME", job["name"]]


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m glue_local.stack", description=__doc__.split("\n\n")[0])
    parser.add_argument("--values", default="{}", help="JSON map of template names to values (DataBucket, GlueDatabase, ...)")
    args = parser.parse_args(argv)
    try:
        print(json.dumps(stack_definitions(json.loads(args.values)), indent=2))
    except StackDefinitionError as error:
        print(f"glue_local.stack: {error}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
