"""python -m glue_local.run_job --JOB_NAME x --sql_bucket ... : one Glue job run on local Spark (exit 0 or 1)."""

from __future__ import annotations

import sys


def main(argv: list[str]) -> int:
    if not argv or argv[0] in ("-h", "--help"):
        print(__doc__.strip() + "\nThe arguments are the job's, as AWS Glue passes them; AWS_ENDPOINT_URL names the moto server.")
        return 0 if argv else 2
    from glue_local.harness import Harness, error_of

    try:
        Harness().run(argv)
    except BaseException as error:  # noqa: BLE001 - reported, then a failed exit
        if isinstance(error, KeyboardInterrupt):
            raise
        err = error_of(error)
        print(f"{err['name']}: {err['message']}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
