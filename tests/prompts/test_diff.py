"""Diffs: a readable unified diff of the YAML and the list of fields that changed."""

from __future__ import annotations

from honed.prompts import Prompt, diff_prompts


def make(**changes: object) -> Prompt:
    data: dict[str, object] = {
        "name": "qa",
        "model": "scripted/echo",
        "params": {"temperature": 0},
        "messages": [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "{{ q }}"}],
    }
    data.update(changes)
    return Prompt.parse(data)


def test_identical_versions() -> None:
    d = diff_prompts(make(), make())
    assert d.identical and d.unified == "" and d.changes == []


def test_changed_fields_and_unified_diff() -> None:
    old = make()
    new = make(
        params={"temperature": 0.7, "seed": 1},
        messages=[
            {"role": "system", "content": "Be very brief."},
            {"role": "user", "content": "{{ q }}"},
            {"role": "assistant", "content": "Sure:"},
        ],
        description="shorter",
    )
    d = diff_prompts(old, new, old_label="qa@v1", new_label="qa@v2")
    got = {(c.path, c.change) for c in d.changes}
    assert got == {
        ("params.temperature", "changed"),
        ("params.seed", "added"),
        ("messages[0].content", "changed"),
        ("messages[2]", "added"),
        ("description", "added"),
    }
    temp = next(c for c in d.changes if c.path == "params.temperature")
    assert (temp.old, temp.new) == (0, 0.7)
    lines = d.unified.splitlines()
    assert lines[0] == "--- qa@v1" and lines[1] == "+++ qa@v2"
    assert "-  content: Be brief." in lines and "+  content: Be very brief." in lines
    assert d.to_dict()["identical"] is False


def test_removed_fields_and_names_are_compared() -> None:
    d = diff_prompts(make(), make(name="qa2", params={}))
    assert {(c.path, c.change) for c in d.changes} == {("name", "changed"), ("params", "removed")}
