#!/usr/bin/env bash
# The main job on embedded defaults: offline, no API key. Sets up .venv, then runs the optimisation loop of
# examples/ladder on the embedded local model (SmolLM2-135M-Instruct), MiniLM embeddings, embedded Chroma
# and SQLite: a diagnosis (context or behaviour?), then a ladder baseline -> instructions -> few-shot ->
# RAG -> LoRA fine-tune, each step measured with CIs, and writes examples/ladder/ladder.html.
# About 10 minutes the first time on 2 cores (the model is converted once per machine, ~20 s); a replay,
# with every call and the fine-tuned adapter cached, takes under a minute.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
export HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1
exec bash examples/ladder/run.sh "$@"
