"""Tables at the common 100 columns: ids shortened, long variant ids keyed by letter, nothing folded."""

from __future__ import annotations

from pathlib import Path

from honed.cli.common import short_ids, variant_keys
from tests.support.cli import honed

SPEC = """\
name: matrix
dataset: d
matrix:
  prompt: [qa@v1]
  model: [scripted/echo, other/answer]
  params: [{temperature: 0, max_tokens: 16}, {temperature: 0.7, max_tokens: 16}]
evaluators: [{type: exact}]
"""


def test_short_ids_are_the_shortest_unique_prefixes_of_at_least_the_minimum() -> None:
    ids = ["log-27cb8bdf0011aa", "log-27cb8bdf9922bb", "log-ffff0000cccc", "short"]
    assert short_ids(ids) == {
        "log-27cb8bdf0011aa": "log-27cb8bdf0",
        "log-27cb8bdf9922bb": "log-27cb8bdf9",
        "log-ffff0000cccc": "log-ffff0000",
        "short": "short",
    }
    assert short_ids(["abc", "abcdef"], min_length=2) == {"abc": "abc", "abcdef": "abcd"}


def test_variant_keys_are_letters_only_when_an_id_is_long() -> None:
    assert variant_keys(["qa@v1", "qa@v2"]) == {"qa@v1": "qa@v1", "qa@v2": "qa@v2"}
    long = [f"qa@v1 smollm2-135m-instruct temperature={t}" for t in range(28)]
    keys = variant_keys(long)
    assert [keys[v] for v in long[:3]] == ["A", "B", "C"] and keys[long[26]] == "AA"


def test_a_matrix_run_fits_100_columns_with_its_variants_keyed(workspace: Path) -> None:
    (workspace / "prompts").mkdir()
    (workspace / "prompts" / "qa.yaml").write_text(
        "name: qa\nmessages:\n  - role: user\n    content: '{{ question }}'\n", encoding="utf-8"
    )
    (workspace / "d.jsonl").write_text(
        "".join(f'{{"inputs": {{"question": "q{i}"}}, "reference": "q{i}"}}\n' for i in range(6)),
        encoding="utf-8",
    )
    with (workspace / "honed.toml").open("a", encoding="utf-8") as f:
        f.write('\n[endpoints.other]\nprovider = "scripted"\nreplies = ["q1"]\n')
    (workspace / "exp.yaml").write_text(SPEC, encoding="utf-8")
    for args in (("prompts", "push", "prompts/"), ("datasets", "import", "d", "d.jsonl")):
        assert honed(*args, cwd=workspace).returncode == 0
    run = honed("experiments", "run", "exp.yaml", cwd=workspace, env={"COLUMNS": "100"})
    assert run.returncode == 0, run.stderr
    shown = honed("experiments", "show", "matrix", cwd=workspace, env={"COLUMNS": "100"})
    assert shown.returncode == 0, shown.stderr
    lines = shown.stdout.splitlines()
    assert max(len(line) for line in lines) <= 100, shown.stdout
    for variant in (
        "qa@v1 echo max_tokens=16,temperature=0",
        "qa@v1 answer max_tokens=16,temperature=0.7",
    ):
        assert any(line.strip().endswith(variant) for line in lines), (variant, shown.stdout)
    assert any(line.startswith("│ B vs A ") for line in lines), shown.stdout
    assert any("= no detectable difference" in line for line in lines)
    assert any("time in the model per call, p50/p95" in line for line in lines)
