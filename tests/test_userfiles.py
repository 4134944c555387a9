"""One error form for user files: `FILE:LINE: field.path: message`, through `honed.userfiles` and through
every loader that reads a user's file with it."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import BaseModel, ConfigDict

from honed.config import load_settings
from honed.errors import ConfigError, HonedError, InvalidInputError
from honed.experiments.gate import load_gate
from honed.experiments.retrieval import load_retrieval_spec
from honed.experiments.spec import load_spec
from honed.optimize.plan import load_plan
from honed.prompts import load_prompt
from honed.rag.index.kb import KnowledgeBaseConfig
from honed.userfiles import read_file, validate


class Item(BaseModel):
    model_config = ConfigDict(extra="forbid")
    b: int
    c: str = ""


class Doc(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str
    a: list[Item] = []


def write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def error(tmp_path: Path, text: str) -> InvalidInputError:
    path = write(tmp_path, "doc.yaml", text)
    source = read_file(path)
    with pytest.raises(InvalidInputError) as info:
        validate(Doc, source.data, where=source.where, lines=source.lines)
    return info.value


def test_a_malformed_file_names_its_line(tmp_path: Path) -> None:
    path = write(tmp_path, "doc.yaml", "name: x\na: [1, 2\n")
    with pytest.raises(InvalidInputError) as info:
        read_file(path)
    assert info.value.message.startswith(f"{path}:3: not valid YAML (")
    with pytest.raises(InvalidInputError, match="no such spec"):
        read_file(tmp_path / "missing.yaml", "spec")
    with pytest.raises(InvalidInputError, match=r"doc\.yaml:2: duplicate key 'name'"):
        read_file(write(tmp_path, "doc.yaml", "name: x\nname: y\n"))


def test_an_unknown_key_names_its_line_and_the_allowed_keys(tmp_path: Path) -> None:
    err = error(tmp_path, "name: x\na:\n  - b: 1\n    colour: red\n")
    assert err.message == f"{tmp_path / 'doc.yaml'}:4: a[0].colour: unknown key"
    assert err.hint == "allowed keys here: b, c"


def test_a_wrong_type_deep_in_a_list_names_its_path_and_line(tmp_path: Path) -> None:
    err = error(tmp_path, "name: x\na:\n  - b: 1\n  - b: many\n")
    assert err.message == f"{tmp_path / 'doc.yaml'}:4: a[1].b: " + (
        "input should be a valid integer, unable to parse string as an integer (got 'many')"
    )
    assert err.hint is None


def test_several_problems_are_listed_in_file_order_after_the_hint(tmp_path: Path) -> None:
    err = error(tmp_path, "a:\n  - b: one\n  - {b: 2, d: 3}\nextra: 1\n")
    assert err.message == f"{tmp_path / 'doc.yaml'}:2: a[0].b: " + (
        "input should be a valid integer, unable to parse string as an integer (got 'one')"
    )
    # the missing `name` comes last: it is often the other side of a misspelt key
    assert err.hint == (
        "also line 3: a[1].d: unknown key; line 4: extra: unknown key; line 1: name: is required"
    )
    assert "\n" not in err.one_line()


def starts_with_file_line(err: HonedError, path: Path, line: int) -> None:
    assert err.message.startswith(f"{path}:{line}: "), err.message


def test_a_prompt_file(tmp_path: Path) -> None:
    path = write(tmp_path, "qa.yaml", "messages:\n  - role: user\n    content: x\n    colour: red\n")
    with pytest.raises(InvalidInputError) as info:
        load_prompt(path)
    starts_with_file_line(info.value, path, 4)
    assert "messages[0].colour: unknown key" in info.value.message


SPEC = "dataset: d\nvariants:\n  - {prompt: p}\nevaluators:\n  - {type: exact}\n"


def test_an_experiment_spec(tmp_path: Path) -> None:
    path = write(tmp_path, "exp.yaml", SPEC + "repeats: lots\n")
    with pytest.raises(InvalidInputError) as info:
        load_spec(path)
    starts_with_file_line(info.value, path, 6)
    assert "repeats: input should be a valid integer" in info.value.message


def test_a_ladder_plan(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "ladder.yaml",
        "dataset: d\nevaluators: [{type: exact}]\nsteps:\n  - {id: a, prompt: p.yaml}\n"
        "  - {id: b, promt: q}\n",
    )
    with pytest.raises(InvalidInputError) as info:
        load_plan(path)
    starts_with_file_line(info.value, path, 5)
    assert "steps[1].promt: unknown key" in info.value.message
    assert info.value.hint is not None and "allowed keys here: id, " in info.value.hint


def test_a_gate_points_into_its_baseline_and_thresholds(tmp_path: Path) -> None:
    path = write(tmp_path, "gate.yaml", SPEC + "thresholds:\n  exact: {mean: 1, minimum: 2}\n")
    with pytest.raises(InvalidInputError) as info:
        load_gate(path)
    starts_with_file_line(info.value, path, 7)
    assert "thresholds.exact.minimum: unknown key" in info.value.message
    # the baseline is validated as the first variant; the error still names the file's field and line
    path = write(tmp_path, "gate.yaml", SPEC + "baseline:\n  prompt: p\n  modle: m\n")
    with pytest.raises(InvalidInputError) as info:
        load_gate(path)
    assert info.value.message == f"{path}:8: baseline.modle: unknown key"


def test_a_kb_config_and_a_retrieval_spec(tmp_path: Path) -> None:
    path = write(tmp_path, "kb.yaml", "embedder: local/x\nchunking:\n  size: 0\n")
    source = read_file(path)
    with pytest.raises(InvalidInputError) as info:
        KnowledgeBaseConfig.parse(source.data, where=source.where, lines=source.lines)
    starts_with_file_line(info.value, path, 3)
    assert "chunking.size: input should be greater than or equal to 1 (got 0)" in info.value.message
    # chunking nested in a retrieval spec's variant keeps its path and line too
    path = write(
        tmp_path,
        "eval.yaml",
        "kb: k\ndataset: d\nvariants:\n  - {id: a}\n  - id: b\n    chunking: {strategy: words}\n",
    )
    with pytest.raises(InvalidInputError) as info:
        load_retrieval_spec(path)
    starts_with_file_line(info.value, path, 6)
    assert "variants[1].chunking.strategy: must be one of tokens," in info.value.message


def test_honed_toml(tmp_path: Path) -> None:
    path = write(tmp_path, "honed.toml", "[retry]\nmax_attempts = 0\n")
    with pytest.raises(ConfigError) as info:
        load_settings(start=tmp_path, env={})
    starts_with_file_line(info.value, path, 2)
    assert "retry.max_attempts: input should be greater than or equal to 1 (got 0)" in info.value.message
