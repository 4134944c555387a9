"""What `honed logs list|show` say at a glance: the feedback itself (up, down, corrected ...), how many logs
the limit left out, and a logged prompt version by its number."""

from __future__ import annotations

from pathlib import Path

from honed.api import connect
from honed.hashing import short
from honed.prompts import Prompt, push
from tests.support.cli import honed

NARROW = {"COLUMNS": "100"}


def test_list_shows_thumbs_as_up_or_down_and_corrections_and_signals(workspace: Path) -> None:
    with connect() as h:
        up, down, fixed = (
            h.log(model="vendor/a", inputs={"q": q}, output=q) for q in ("one", "two", "three")
        )
        h.feedback(up, "thumbs", "up")
        h.feedback(down, "thumbs", "down")
        h.feedback(down, "rating", 2)
        h.feedback(fixed, "correction", text="Three.")
        h.feedback(fixed, "edited")
    listed = honed("logs", "list", cwd=workspace, env=NARROW)
    assert listed.returncode == 0, listed.stderr
    feedback = {
        cells[1].strip(): cells[-2].strip()
        for cells in (line.split("│") for line in listed.stdout.splitlines() if line.startswith("│ log-"))
    }
    assert feedback == {up[:12]: "up", down[:12]: "down, 2/5", fixed[:12]: "corrected, edited"}, listed.stdout
    assert "thumbs" not in listed.stdout


def test_list_says_how_many_logs_the_limit_left_out(workspace: Path) -> None:
    with connect() as h:
        for i in range(5):
            h.log(model="vendor/a", inputs={"q": str(i)}, output=str(i))
    cut = honed("logs", "list", "--limit", "3", cwd=workspace, env=NARROW)
    assert cut.returncode == 0, cut.stderr
    assert cut.stdout.lstrip().startswith("3 of 5 log(s) shown (--limit N for more)"), cut.stdout
    whole = honed("logs", "list", "--limit", "5", cwd=workspace, env=NARROW)
    assert whole.stdout.lstrip().startswith("5 log(s)") and " of " not in whole.stdout.splitlines()[0]


def test_show_names_the_prompt_version_by_its_number(workspace: Path) -> None:
    prompt = Prompt.model_validate({"name": "qa", "messages": [{"role": "user", "content": "{{ q }}"}]})
    with connect() as h:
        [pushed] = push(h.store, [prompt])
        version = pushed.version.hash
        known = h.log(model="vendor/a", inputs={"q": "x"}, output="y", prompt="qa", prompt_version=version)
        unknown = "sha256:" + "ab" * 32  # logged by an app whose prompt was never pushed here
        foreign = h.log(model="vendor/a", inputs={"q": "x"}, output="y", prompt="qa", prompt_version=unknown)

    def prompt_row(log_id: str) -> str:
        shown = honed("logs", "show", log_id, cwd=workspace, env=NARROW)
        assert shown.returncode == 0, shown.stderr
        return next(line for line in shown.stdout.splitlines() if " prompt " in line)

    assert f"qa@v1 ({short(version)})" in prompt_row(known)
    assert f"qa@{short(unknown)}" in prompt_row(foreign)  # a hash prefix is a reference as well
