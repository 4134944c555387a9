"""Run the real `honed` console script in a subprocess, as a user would."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

HONED = str(Path(sys.executable).parent / "honed")


def honed(
    *args: str, cwd: Path, env: dict[str, str] | None = None, input: str | None = None, timeout: float = 120
) -> subprocess.CompletedProcess[str]:
    """`honed ARGS` in `cwd` with the machine's HONED_* settings removed (except the model cache)."""
    # The model cache, and the tests' default of no latency probe after a run (see tests/conftest.py).
    keep = {"HONED_MODEL_CACHE", "HONED_LOCAL_LATENCY_CALLS"}
    full_env = {k: v for k, v in os.environ.items() if not k.startswith("HONED_") or k in keep}
    full_env.pop("OPENAI_API_KEY", None)
    full_env["COLUMNS"] = "200"  # wide enough for any table, unless the test sets COLUMNS itself
    full_env.update(env or {})
    return subprocess.run(
        [HONED, *args], cwd=cwd, env=full_env, capture_output=True, text=True, timeout=timeout, input=input
    )


def assert_one_line_error(result: subprocess.CompletedProcess[str], *fragments: str) -> None:
    """A user error: non-zero exit, no traceback, exactly one line on stderr containing `fragments`."""
    assert result.returncode != 0, result
    assert "Traceback" not in result.stderr, result.stderr
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    for fragment in fragments:
        assert fragment in lines[0], lines[0]
