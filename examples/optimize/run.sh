#!/usr/bin/env bash
# Search for a better NQ-open prompt on the local model (offline), within a budget of 600 calls, and judge
# the chosen prompt against the start on held-out test questions. Run from anywhere:
#   bash examples/optimize/run.sh [--json] [--report search.html]
set -euo pipefail
cd "$(dirname "$0")"
HONED=${HONED:-../../.venv/bin/honed}
DATA=${HONED_DATA_DIR:-../../../shared/data}
export HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1
"$HONED" prompts push prompts/qa-start.yaml --note "instructions only" >/dev/null
# The real file is read in place; small hashed splits of it: ~36 train, ~40 dev, ~80 test questions.
"$HONED" datasets import nq-search "$DATA/nq_open/NQ-open.dev.jsonl" --input question --reference answer \
    --split-ratios train=0.01,dev=0.011,test=0.022,rest=0.957 --seed 0 >/dev/null
"$HONED" optimize prompt search.yaml "$@"
