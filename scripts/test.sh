#!/usr/bin/env bash
# The whole test suite, on a fresh machine: installs what the tests need (Debian's PostgreSQL server
# binaries, the Python environment), then ruff, mypy --strict on the package, and pytest.
# Extra arguments go to pytest (e.g. `scripts/test.sh -m "not slow"` for a quick loop).
set -euo pipefail
cd "$(dirname "$0")/.."
if ! ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1; then
    if [ "$(id -u)" = 0 ]; then
        echo "installing Debian's postgresql package (the store tests start a throwaway server)"
        apt-get update -qq
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql >/dev/null
    else
        echo "PostgreSQL server binaries are missing: sudo apt-get install postgresql" >&2
        exit 1
    fi
fi
bash scripts/setup.sh
export HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1
echo "== ruff"
.venv/bin/ruff check src tests bench
.venv/bin/ruff format --check src tests bench
echo "== mypy --strict"
.venv/bin/mypy
echo "== pytest"
exec .venv/bin/pytest "$@"
