#!/usr/bin/env bash
# Retrieval-augmented generation on the local model (offline): build a knowledge base from docs/, search
# it, then compare closed-book answers with retrieved-fact answers in an experiment. Run from anywhere.
set -euo pipefail
cd "$(dirname "$0")"
HONED=${HONED:-../../.venv/bin/honed}
"$HONED" kb create catalogue --description "product facts" 2>/dev/null || true
"$HONED" kb ingest catalogue docs/
"$HONED" kb search catalogue "warranty of the Kestrel Headphones" -k 3
"$HONED" datasets import catalogue questions.jsonl --input question --reference reference
"$HONED" experiments run experiment.yaml "$@"
