"""Mistyped commands, as a user makes them: one line on stderr with click's suggestion, exit 2, no traceback.

Typer raises its own vendored click's exceptions; the entry point must catch those, not `click`'s.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.support.cli import assert_one_line_error, honed


@pytest.mark.parametrize(
    ("args", "fragments"),
    [
        (["foo"], ["No such command 'foo'.", "`honed --help`"]),
        (
            ["experiments", "shwo", "x"],
            ["No such command 'shwo'. Did you mean 'show'?", "`honed experiments --help`"],
        ),
        (["experiments", "show"], ["Missing argument", "`honed experiments show --help`"]),
        (["experiments", "run", "spec.yaml", "--kk", "3"], ["No such option: --kk"]),
        (["logs", "list", "--limit", "0"], ["Invalid value for '--limit'", "greater than or equal to 1"]),
    ],
)
def test_usage_errors_are_one_line_with_the_suggestion_and_exit_2(
    workspace: Path, args: list[str], fragments: list[str]
) -> None:
    result = honed(*args, cwd=workspace)
    assert_one_line_error(result, *fragments)
    assert result.returncode == 2, result


@pytest.mark.parametrize("args", [["--help"], ["experiments", "--help"], ["experiments", "run", "--help"]])
def test_help_still_works(tmp_path: Path, args: list[str]) -> None:
    result = honed(*args, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "Usage: honed" in result.stdout and result.stderr == ""


def test_flags_show_no_value_type_in_help(tmp_path: Path) -> None:
    # A flag listed as `--json <bool>` looks as if it took a value (`--json true`).
    result = honed("experiments", "run", "--help", cwd=tmp_path)
    lines = {line.split()[1]: line for line in result.stdout.splitlines() if line.startswith("│ --")}
    for flag in ("--json", "--new", "--force", "--no-cache", "--help"):
        assert "<" not in lines[flag], lines[flag]
    assert "<path>" in lines["--html"]
