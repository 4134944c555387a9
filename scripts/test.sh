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
echo "== ruff"
.venv/bin/ruff check src tests bench
.venv/bin/ruff format --check src tests bench
echo "== mypy --strict"
.venv/bin/mypy
echo "== pytest"
# Both cores (up to 4 elsewhere); a test file stays on one worker, so its module fixtures are built once.
exec .venv/bin/pytest -n auto --maxprocesses 4 --dist loadfile "$@"
