#!/usr/bin/env bash
# The optimisation loop on the embedded defaults (local SmolLM2, MiniLM, embedded Chroma, SQLite), offline:
# build the catalogue knowledge base, import the questions, then diagnose and climb the ladder in
# ladder.yaml and write ladder.html. A second run replays from the cache (the fine-tuned adapter too).
# Run from anywhere: bash examples/ladder/run.sh [--new]
set -euo pipefail
cd "$(dirname "$0")"
HONED=${HONED:-../../.venv/bin/honed}
export HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1
[ -f .honed/honed.db ] || "$HONED" init . >/dev/null
"$HONED" kb show catalogue >/dev/null 2>&1 || "$HONED" kb create catalogue --description "product facts"
"$HONED" kb ingest catalogue docs/
"$HONED" datasets import catalogue questions.jsonl --input question --reference reference
"$HONED" optimize run ladder.yaml --report ladder.html "$@"
echo "open $(pwd)/ladder.html"
