"""`honed models run --file --samples N` as a user runs it: a narrow `#` column whatever the file's ids,
each prompt shown once, and a warning when greedy decoding would make the N samples one answer N times."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.support.cli import honed

PROMPTS = [
    {"id": "capital-of-france", "prompt": "What is the capital of France? Answer in one word, please."},
    {"prompt": "Name three primary colours."},
]
GREEDY = "gives the same answer each time: pass --temperature 0.7"


def prompts_file(workspace: Path) -> Path:
    path = workspace / "prompts.jsonl"
    path.write_text("".join(json.dumps(p) + "\n" for p in PROMPTS), encoding="utf-8")
    return path


def test_the_number_column_stays_narrow_and_each_prompt_shows_once(workspace: Path) -> None:
    prompts_file(workspace)
    run = honed(
        "models", "run", "scripted/echo", "--file", "prompts.jsonl", "--samples", "3", "-t", "0.7",
        cwd=workspace, env={"COLUMNS": "100"},
    )  # fmt: skip
    assert run.returncode == 0, run.stderr
    lines = run.stdout.splitlines()
    assert max(len(line) for line in lines) <= 100, run.stdout
    header = next(line for line in lines if line.startswith("┃") and " # " in line)
    assert len(header.split("┃")[1]) <= 7, header  # `#` is "1", "1.1" ...: no wider for a long id
    prompts: dict[str, str] = {}  # `#` -> the prompt cell, its wrapped lines joined
    label = ""
    for cells in (line.split("│") for line in lines if line.startswith("│")):
        label = cells[1].strip() or label
        prompts[label] = " ".join(filter(None, (prompts.get(label, ""), cells[2].strip())))
    assert list(prompts) == ["1", "1.1", "1.2", "2", "2.1", "2.2"], run.stdout
    assert prompts["1"].startswith("capital-of-france · What is")  # the file's id leads its prompt
    assert prompts["2"] == "Name three primary colours."
    assert prompts["1.1"] == prompts["2.2"] == ""  # repeated samples leave the prompt blank
    assert GREEDY not in run.stderr


def test_samples_at_temperature_0_are_warned_about(workspace: Path) -> None:
    prompts_file(workspace)
    args = ("models", "run", "scripted/echo", "--file", "prompts.jsonl")
    greedy = honed(*args, "--samples", "3", "--temperature", "0", "--json", cwd=workspace)
    assert greedy.returncode == 0, greedy.stderr
    warning = [line for line in greedy.stderr.splitlines() if GREEDY in line]
    assert warning == [f"warning: --samples 3 with temperature 0 (greedy decoding) {GREEDY}"], greedy.stderr
    assert len(json.loads(greedy.stdout)) == 6  # a warning, not a refusal
    # One sample, or a hosted-style endpoint left at its own default temperature: nothing to warn about.
    for extra in (("--samples", "1", "-t", "0"), ("--samples", "2")):
        quiet = honed(*args, *extra, "--json", cwd=workspace)
        assert quiet.returncode == 0 and GREEDY not in quiet.stderr, quiet.stderr


@pytest.mark.slow
def test_samples_of_the_local_model_without_a_temperature_are_warned_about(workspace: Path) -> None:
    # The local model decodes greedily when no temperature is given: the README's `--samples 3`.
    run = honed(
        "models", "run", "local/smollm2-135m-instruct", "Hi", "--samples", "2", "--max-tokens", "2",
        "--json", cwd=workspace,
    )  # fmt: skip
    assert run.returncode == 0, run.stderr
    assert f"warning: --samples 2 with no --temperature (greedy decoding) {GREEDY}" in run.stderr
    outputs = [row["text"] for row in json.loads(run.stdout)]
    assert outputs[0] == outputs[1]  # what the warning is about
