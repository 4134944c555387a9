#!/usr/bin/env bash
# Gate a candidate prompt in CI, offline, on the local model. Run from anywhere; extra arguments go to
# `honed eval run` (e.g. --json). Exit 0: every check passed; 1: a check failed (each failure is listed
# with its failing cases); the JUnit XML is in reports/honed.xml either way.
set -euo pipefail
cd "$(dirname "$0")"
HONED=${HONED:-../../.venv/bin/honed}
DATA=${HONED_DATA_DIR:-../../../shared/data}
# The real file is read in place (never copied); about 1% of it (30 questions) forms the `demo` split.
"$HONED" datasets import nq "$DATA/nq_open/NQ-open.dev.jsonl" --input question --reference answer \
    --split-ratios demo=0.01,rest=0.99 --seed 0 >/dev/null
"$HONED" eval run ci.yaml --junit reports/honed.xml "$@"
