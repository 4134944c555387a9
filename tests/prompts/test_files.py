"""Prompt files: strict validation with FILE:LINE: field errors, stable content hashes, YAML round trips."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from honed.errors import InvalidInputError
from honed.prompts import Chain, Prompt, load_file, load_files, load_prompt, load_prompts, to_yaml
from tests.prompts.conftest import QA

Write = Callable[[str, str], Path]


def error_of(path: Path) -> InvalidInputError:
    with pytest.raises(InvalidInputError) as info:
        load_file(path)
    return info.value


def test_a_file_loads_with_its_name_from_the_file_name(write: Write) -> None:
    p = load_prompt(write("prompts/qa.yaml", QA))
    assert p.name == "qa" and p.model == "scripted/echo" and len(p.messages) == 2
    named = load_prompt(write("other.yaml", "name: faq\n" + QA))
    assert named.name == "faq"


def test_bad_role_names_file_line_and_field(write: Write) -> None:
    path = write(
        "prompts/qa.yaml",
        """\
        model: scripted/echo
        messages:
          - role: system
            content: hi

          - role: usr
            content: "{{ q }}"
        """,
    )
    assert (
        error_of(path).message
        == f"{path}:6: messages[1].role: must be one of system, user, assistant (got 'usr')"
    )


def test_unknown_keys_are_errors_naming_the_key_its_line_and_the_allowed_keys(write: Write) -> None:
    path = write("p.yaml", QA + "temprature: 0.3\n")
    err = error_of(path)
    assert err.message == f"{path}:8: temprature: unknown key"
    assert err.hint is not None and "allowed keys here: name, description, model, params" in err.hint
    nested = write("n.yaml", QA.replace("content: Answer briefly.", "content: x\n    colour: red"))
    assert error_of(nested).message == f"{nested}:6: messages[0].colour: unknown key"


def test_the_first_problem_in_the_file_is_reported_first(write: Write) -> None:
    path = write("p.yaml", "colour: red\nmessages:\n  - role: bot\n    content: x\n")
    err = error_of(path)
    assert err.message.startswith(f"{path}:1: colour: unknown key")
    assert err.hint is not None and "also line 3: messages[0].role: must be one of" in err.hint


@pytest.mark.parametrize(
    ("text", "line", "fragment"),
    [
        ("messages: []\n", 1, "messages: needs at least 1 item(s)"),
        ("model: a/b\n", 1, "messages: is required"),
        ("messages:\n  - role: user\n    content: 42\n", 3, "messages[0].content: must be a string"),
        ("messages:\n  - role: user\n    content: '{{ q }'\n", 3, "template syntax error: unexpected '}'"),
        ("model: gpt4\nmessages: [{role: user, content: x}]\n", 1, "model: model reference 'gpt4' is not"),
        ("params: {temprature: 1}\nmessages: [{role: user, content: x}]\n", 1, "unknown model parameter"),
        ("params: {max_tokens: many}\nmessages: [{role: user, content: x}]\n", 1, "max_tokens must be an"),
        (
            "params: {temperature: 9}\nmessages: [{role: user, content: x}]\n",
            1,
            "temperature 9 is out of range",
        ),
        (
            "messages: [{role: user, content: x}]\nresponse_schema:\n  type: objekt\n",
            2,
            "response_schema: not a valid JSON schema at type",
        ),
        ("messages: [{role: user, content: x}]\ntools:\n  - {type: function}\n", 2, "tools: tool 1 must be"),
        ("messages: [{role: user, content: x}]\nmessages: []\n", 2, "duplicate key 'messages'"),
        ("messages: [{role: user, content: x}\n", 2, "not valid YAML"),
        ("messages: [{role: user, content: x}]\n---\nmodel: a/b\n", 2, "more than one YAML document"),
        ("- just\n- a list\n", 1, "expected a mapping"),
        ("", 1, "the file is empty"),
        ("description: 2024-01-01\nmessages: [{role: user, content: x}]\n", 1, "is not a JSON value"),
    ],
)
def test_invalid_files_point_at_the_line(write: Write, text: str, line: int, fragment: str) -> None:
    path = write("p.yaml", text)
    err = error_of(path)
    assert err.message.startswith(f"{path}:{line}: "), err.message
    assert fragment in err.one_line()


def test_the_version_hash_ignores_key_order_whitespace_and_quoting(write: Write) -> None:
    a = load_prompt(write("a/qa.yaml", QA))
    b = load_prompt(
        write(
            "b/qa.yaml",
            """\
            messages:
            - {content: 'Answer briefly.', role: system}
            - content: "Question: {{ question }}"
              role: user

            params:
              max_tokens: 50
              temperature: 0
            model: "scripted/echo"   # a comment
            """,
        )
    )
    assert a.version() == b.version() and a.body() == b.body()
    changed = load_prompt(write("c/qa.yaml", QA.replace("briefly", "at length")))
    assert changed.version() != a.version()
    renamed = load_prompt(write("d/other.yaml", QA))
    assert renamed.version() == a.version()  # the name collects versions; it is not content


def test_equivalent_params_hash_the_same() -> None:
    base = {"name": "x", "messages": [{"role": "user", "content": "x"}]}
    one = Prompt.parse({**base, "params": {"stop": "\n"}})
    two = Prompt.parse({**base, "params": {"stop": ["\n"], "seed": None}})
    assert one.version() == two.version()
    assert Prompt.parse({**base, "params": None}).version() == Prompt.parse(base).version()


def test_yaml_round_trip_keeps_content_and_uses_blocks_for_prose(write: Write) -> None:
    p = Prompt.parse(
        {
            "name": "qa",
            "description": "d",
            "model": "scripted/echo",
            "params": {"stop": ["\n\n"], "temperature": 0.2},
            "messages": [
                {"role": "system", "content": "line one\nline two\n"},
                {"role": "user", "content": "{{ q }}"},
            ],
            "examples": [{"input": "a", "output": "b"}],
            "response_schema": {"type": "object"},
            "tools": [{"type": "function", "function": {"name": "search", "parameters": {"type": "object"}}}],
        }
    )
    text = to_yaml(p)
    assert "content: |\n    line one\n    line two\n" in text and '- "\\n\\n"' in text
    assert text.index("name:") < text.index("model:") < text.index("messages:") < text.index("examples:")
    assert load_prompt(write("qa.yaml", text)) == p


@settings(max_examples=60, deadline=None)
@given(st.text(st.characters(blacklist_categories=["Cs"]), max_size=40))
def test_any_text_survives_the_yaml_round_trip(tmp_path_factory: pytest.TempPathFactory, text: str) -> None:
    content = text.replace("{", "(").replace("}", ")").replace("%", "p").replace("#", "h")
    p = Prompt.parse({"name": "rt", "messages": [{"role": "user", "content": content}]})
    path = tmp_path_factory.mktemp("rt") / "rt.yaml"
    path.write_text(to_yaml(p), encoding="utf-8")
    assert load_prompt(path).body() == p.body()


def test_chain_files_and_folders(write: Write, tmp_path: Path) -> None:
    write("prompts/qa.yaml", QA)
    write(
        "prompts/sub/flow.yaml",
        """\
        steps:
          - {prompt: qa@production, output: first}
          - output: second
            prompt:
              messages: [{role: user, content: "{{ first }}"}]
        """,
    )
    items = load_files([tmp_path / "prompts"])
    assert [type(i).__name__ for i in items] == ["Prompt", "Chain"]
    chain = items[1]
    assert isinstance(chain, Chain) and chain.name == "flow"
    inline = chain.steps[1].prompt
    assert isinstance(inline, Prompt) and inline.name == "second"
    assert [p.name for p in load_prompts([tmp_path / "prompts"])] == ["qa"]
    assert load_file(write("rt.yaml", to_yaml(chain).replace("name: flow", "name: flow"))) == chain


def test_chain_errors_point_into_inline_prompts(write: Write) -> None:
    path = write(
        "c.yaml",
        """\
        steps:
          - output: a
            prompt:
              messages:
                - {role: robot, content: x}
        """,
    )
    assert (
        error_of(path).message
        == f"{path}:5: steps[0].prompt.messages[0].role: must be one of system, user, assistant (got 'robot')"
    )
    dup = write("d.yaml", "steps:\n  - {prompt: qa, output: a}\n  - {prompt: qa, output: a}\n")
    assert "reuses the output name 'a'" in error_of(dup).message
    bad_ref = write("e.yaml", "steps:\n  - {prompt: 'qa@', output: a}\n")
    assert error_of(bad_ref).message.startswith(
        f"{bad_ref}:2: steps[0].prompt: 'qa@' is not a prompt reference"
    )
    bad_out = write("f.yaml", "steps:\n  - {prompt: qa, output: my-out}\n")
    assert "is not a variable name" in error_of(bad_out).message


def test_load_files_validates_everything_and_names_every_bad_file(write: Write, tmp_path: Path) -> None:
    write("p/a.yaml", QA)
    write("p/b.yaml", "messages: []\n")
    write("p/c.yaml", "nope: 1\n")
    with pytest.raises(InvalidInputError) as info:
        load_files([tmp_path / "p"])
    assert (
        "b.yaml:1" in info.value.message
        and "also invalid:" in str(info.value.hint)
        and "c.yaml" in str(info.value.hint)
    )
    write("q/a.yaml", QA)
    write("q/b.yaml", "name: a\n" + QA)
    with pytest.raises(InvalidInputError, match="more than one file defines 'a'"):
        load_files([tmp_path / "q"])
    with pytest.raises(InvalidInputError, match="no such file or folder"):
        load_files([tmp_path / "missing.yaml"])
