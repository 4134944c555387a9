#!/usr/bin/env bash
# The main job on embedded defaults: offline, no API key. Sets up .venv, then runs the embedded local
# model (SmolLM2-135M-Instruct) over the bundled example and prints outputs, tokens, latency and cost,
# then compares two prompt versions on real questions (examples/compare) with CIs and a verdict.
# The first run converts the model once per machine (~20 s); later runs load it in under a second.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
export HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1
echo "== the local model over a few prompts: outputs, tokens, latency, cost"
(cd examples/quickstart && ../../.venv/bin/honed models run local/smollm2-135m-instruct --file prompts.jsonl --max-tokens 48)
echo
echo "== evals first: two prompt versions compared on 30 real questions (NQ-open), with CIs and a verdict"
exec bash examples/compare/run.sh "$@"
