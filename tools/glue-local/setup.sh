#!/usr/bin/env bash
# `npm run setup:glue`: the project-local Python environment (.venv, from requirements-dev.txt) and the S3A
# jars (tools/glue-local/jars.txt, into .cache/glue-jars/) that the Glue engine and the Python tests use.
# Idempotent: each part is redone only when its pins changed or its files are missing or damaged.
set -euo pipefail
cd "$(dirname "$0")/../.."

say() { printf 'setup:glue: %s\n' "$*" >&2; }
fail() { say "$*"; exit 1; }

command -v python3 >/dev/null || fail "python3 is not installed (Python 3.11, as on AWS Glue 5.1, is expected)"
python3 -c 'import sys; sys.exit(sys.version_info < (3, 9))' || fail "python3 is $(python3 -V 2>&1); pyspark 3.5 needs 3.9 or later (Glue 5.1 runs 3.11)"
command -v java >/dev/null || say "warning: java is not installed; Spark needs Java 17 (as on AWS Glue 5.1) to run the Glue engine"

# --- .venv -----------------------------------------------------------------------------------------------
stamp_of_requirements() { { python3 -V 2>&1; cat requirements-dev.txt; } | sha256sum | cut -d' ' -f1; }
want=$(stamp_of_requirements)
if [[ -x .venv/bin/python && -f .venv/.requirements.sha256 && "$(cat .venv/.requirements.sha256)" == "$want" ]]; then
  say ".venv is up to date"
else
  say "creating .venv from requirements-dev.txt (about a minute and a half)"
  python3 -m venv --clear .venv
  .venv/bin/python -m pip install --quiet --disable-pip-version-check -r requirements-dev.txt
  echo "$want" > .venv/.requirements.sha256
fi

# --- S3A jars --------------------------------------------------------------------------------------------
jars=.cache/glue-jars
mkdir -p "$jars"
grep -v '^#' tools/glue-local/jars.txt | while read -r coordinates sha256; do
  [[ -n "$coordinates" ]] || continue
  IFS=: read -r _group artifact version <<<"$coordinates"
  jar="$jars/$artifact-$version.jar"
  # The checksum of a verified jar is kept beside it, so a rerun does not hash 280 MB again.
  if [[ -f "$jar" && -f "$jar.sha256" && "$(cat "$jar.sha256")" == "$sha256 $(stat -c %s "$jar")" ]]; then
    continue
  fi
  command -v mvn >/dev/null || fail "mvn (Apache Maven) is needed once to fetch $coordinates from Maven Central"
  say "fetching $coordinates"
  tmp=$(mktemp -d "$jars/.fetch.XXXXXX")
  if ! mvn -q -B dependency:copy -Dartifact="$coordinates" -DoutputDirectory="$tmp" >"$tmp.log" 2>&1; then
    cat "$tmp.log" >&2
    rm -rf "$tmp" "$tmp.log"
    fail "could not fetch $coordinates with mvn (output above)"
  fi
  rm -f "$tmp.log"
  got=$(sha256sum "$tmp/$artifact-$version.jar" | cut -d' ' -f1)
  [[ "$got" == "$sha256" ]] || { rm -rf "$tmp"; fail "$coordinates: sha256 $got, expected $sha256 (tools/glue-local/jars.txt)"; }
  mv "$tmp/$artifact-$version.jar" "$jar"
  rm -rf "$tmp"
  echo "$sha256 $(stat -c %s "$jar")" > "$jar.sha256"
done
say "ready: .venv ($(.venv/bin/python -c 'import pyspark; print("pyspark", pyspark.__version__)')), $jars"
