#!/usr/bin/env bash
# Compare two prompt versions on real questions with the local model (offline). Run from anywhere.
set -euo pipefail
cd "$(dirname "$0")"
HONED=${HONED:-../../.venv/bin/honed}
DATA=${HONED_DATA_DIR:-../../../shared/data}
"$HONED" prompts push prompts/qa-v1.yaml --note "instructions only"
"$HONED" prompts push prompts/qa-v2.yaml --note "plus three examples"
# The real file is read in place (never copied); 1% of it (36 questions) forms the `demo` split.
"$HONED" datasets import nq "$DATA/nq_open/NQ-open.dev.jsonl" --input question --reference answer \
    --split-ratios demo=0.01,rest=0.99 --seed 0
"$HONED" experiments run experiment.yaml "$@"
