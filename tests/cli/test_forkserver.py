"""The tests' `honed` helper forks commands from a server (tests/support/forkserver.py): what a command
prints, reads and exits with must be what the console script gives in a fresh interpreter."""

from __future__ import annotations

import subprocess
import time
from pathlib import Path

import pytest

from tests.support.cli import HONED, honed


def fresh(*args: str, cwd: Path, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return honed(*args, cwd=cwd, env={"TESTS_FORKSERVER": "0", **(env or {})})


@pytest.mark.parametrize(
    "args",
    [
        ("--version",),
        ("datasets", "list"),
        ("config", "show"),
        ("experiments", "show", "no-such-run"),  # a one-line error, exit 1
        ("no-such-command",),  # a usage error, exit 2
    ],
)
def test_a_forked_command_prints_and_exits_as_the_console_script_does(
    workspace: Path, args: tuple[str, ...]
) -> None:
    env = {"HONED_CACHE": "false", "COLUMNS": "100"}  # the child's own environment, read at run time
    forked = honed(*args, cwd=workspace, env=env)
    alone = fresh(*args, cwd=workspace, env=env)
    assert (forked.returncode, forked.stdout, forked.stderr) == (alone.returncode, alone.stdout, alone.stderr)
    assert forked.stdout or forked.stderr
    if args == ("config", "show"):
        assert "HONED_CACHE" in forked.stdout and max(map(len, forked.stdout.splitlines())) <= 100


def test_a_forked_command_runs_in_its_own_folder(workspace: Path) -> None:
    # (Reading stdin is exercised by tests/experiments/test_review_run.py, whose answers come through it.)
    (workspace / "sub").mkdir()
    (workspace / "sub" / "qs.jsonl").write_text('{"inputs": {"q": "one"}}\n{"inputs": {"q": "two"}}\n')
    done = honed("datasets", "import", "qs", "qs.jsonl", cwd=workspace / "sub")
    assert done.returncode == 0, done.stderr
    listed = honed("datasets", "show", "qs", "--json", cwd=workspace)
    assert listed.returncode == 0 and '"one"' in listed.stdout and '"two"' in listed.stdout


def test_a_command_over_its_timeout_is_killed(workspace: Path) -> None:
    started = time.monotonic()
    with pytest.raises(subprocess.TimeoutExpired):
        honed("serve", "--port", "0", cwd=workspace, timeout=2)
    assert time.monotonic() - started < 10
    assert Path(HONED).exists()
