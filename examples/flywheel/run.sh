#!/usr/bin/env bash
# The whole flywheel on the local model, offline: log -> feedback -> curate -> fine-tune -> compare -> serve.
# Run from anywhere: bash examples/flywheel/run.sh [TRAFFIC] (default 150 tickets). Takes ~5-8 min on 2 cores.
set -euo pipefail
cd "$(dirname "$0")"
HONED=${HONED:-../../.venv/bin/honed}
PY=${PY:-../../.venv/bin/python}
N=${1:-150}
rm -rf .honed && "$HONED" init >/dev/null 2>&1 || true

echo "== 1. the frozen eval set: held-out phrasings the app's traffic never uses"
"$PY" make_eval.py eval.jsonl 50
"$HONED" datasets import triage-eval eval.jsonl --input ticket --reference reference

echo "== 2. the app routes $N tickets with the long prompt; agents give feedback (logged by honed)"
"$PY" app.py "$N"
"$HONED" logs list --prompt triage --limit 5

echo "== 3. curate: thumbs-up and corrected routings, deduplicated, scrubbed, leakage-checked vs the eval set"
"$HONED" logs curate triage-train --prompt triage --approved --dedupe --scrub \
  --leakage-check triage-eval --split train=0.85,dev=0.15

echo "== 4. fine-tune a LoRA adapter on input -> output pairs only (the long prompt's rules and examples dropped)"
JOB=$("$HONED" finetune create --dataset triage-train --split train --validation-split dev \
  --mode input-output --system "Route the support ticket." --json | "$PY" -c 'import json,sys; print(json.load(sys.stdin)["id"])')
echo "   job $JOB: crash its worker after the first checkpoint, then resume it"
"$PY" crash.py "$JOB"
"$HONED" finetune resume "$JOB"
"$HONED" finetune wait "$JOB"
"$HONED" finetune show "$JOB"

echo "== 5. did it help? fine-tuned + short prompt vs base + long prompt, same held-out tickets"
"$HONED" finetune compare --dataset triage-eval --job "$JOB" \
  --candidate-prompt prompts/triage-short.yaml --baseline local/smollm2-135m-instruct \
  --baseline-prompt prompts/triage-long.yaml --evaluator normalized \
  --price local/smollm2-135m-instruct=0.15,0.6 --price "local/smollm2-135m-instruct+ft-$JOB=0.3,1.2"
# (The local model costs nothing; the prices show what these token counts would cost at a hosted small
# model's rates, the fine-tuned one at twice the base price per token, as hosted fine-tunes are billed.)

echo "== 6. serve the fine-tuned model to the openai SDK"
"$PY" serve_client.py "local/smollm2-135m-instruct+ft-$JOB"
