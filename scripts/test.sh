#!/usr/bin/env bash
# The whole test suite, on a fresh machine: installs what the tests need (Debian's PostgreSQL server
# binaries, the Python environment), then ruff, mypy --strict on the package, and pytest.
# Extra arguments go to pytest (e.g. `scripts/test.sh -m "not slow"` for a quick loop).
set -euo pipefail
cd "$(dirname "$0")/.."
# need PACKAGE WHY TEST...: install Debian's PACKAGE unless one of the TEST paths (globs) exists.
need() {
    local package=$1 why=$2
    shift 2
    for path in "$@"; do
        if compgen -G "$path" >/dev/null; then
            return 0
        fi
    done
    if [ "$(id -u)" != 0 ]; then
        echo "$package is missing: sudo apt-get install $package" >&2
        exit 1
    fi
    echo "installing Debian's $package package ($why)"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$package" >/dev/null
}
need postgresql "the store tests start a throwaway server" "/usr/lib/postgresql/*/bin/initdb"
need chromium "the HTML report tests render pages in it" /usr/bin/chromium
bash scripts/setup.sh
export HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1
# The tests start ~500 Python processes: let each one keep the bytecode it compiles (pytest's rewritten
# test modules included) for the next, where the machine says otherwise.
unset PYTHONDONTWRITEBYTECODE
echo "== ruff"
.venv/bin/ruff check src tests bench
.venv/bin/ruff format --check src tests bench
# mypy (a minute of CPU on a fresh clone, with no cache yet) runs beside pytest, whose workers leave the
# cores idle while they wait on subprocesses and servers. Its output is kept for the end: printed, and the
# script failing, only if it found an error, so pytest's summary stays the last line of a passing run.
echo "== mypy --strict (beside pytest; its errors, if any, follow the tests)"
mypy_log=$(mktemp)
trap 'rm -f "$mypy_log"' EXIT
.venv/bin/mypy >"$mypy_log" 2>&1 &
mypy_pid=$!
echo "== pytest"
# One worker per core plus one (at most 4): many tests wait on a subprocess or a server, and a third worker
# fills those waits (the quick loop took 4:43 with two workers on 2 cores, 4:02 with three). A test file
# stays on one worker, so its module fixtures are built once; files go out longest first, in the order
# tests/conftest.py sets (pytest-xdist's own reordering would undo it).
workers=$(( $(nproc) + 1 ))
workers=$(( workers > 4 ? 4 : workers ))
status=0
.venv/bin/pytest -n "$workers" --dist loadfile --no-loadscope-reorder "$@" || status=$?
if ! wait "$mypy_pid"; then
    echo "== mypy --strict found errors:"
    cat "$mypy_log"
    exit 1
fi
exit "$status"
