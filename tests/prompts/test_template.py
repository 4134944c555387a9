"""Rendering: strict variables, the sandbox, and the order of examples."""

from __future__ import annotations

import pytest

from honed.errors import InvalidInputError
from honed.prompts import Prompt


def prompt(*contents: str, **extra: object) -> Prompt:
    return Prompt.parse(
        {"name": "qa", "messages": [{"role": "user", "content": c} for c in contents], **extra}
    )


def test_renders_variables_and_keeps_trailing_newlines() -> None:
    p = Prompt.parse(
        {
            "name": "qa",
            "messages": [
                {"role": "system", "content": "Be brief.\n"},
                {
                    "role": "user",
                    "content": "Q: {{ question }}{% for d in docs %}\n- {{ d.title }}{% endfor %}",
                },
            ],
        }
    )
    msgs = p.render({"question": "Why?", "docs": [{"title": "a"}, {"title": "b"}]})
    assert msgs == [
        {"role": "system", "content": "Be brief.\n"},
        {"role": "user", "content": "Q: Why?\n- a\n- b"},
    ]
    assert p.variables() == {"question", "docs"}


def test_html_is_not_escaped() -> None:
    assert prompt("{{ x }}").render({"x": "<b>&</b>"})[0]["content"] == "<b>&</b>"


def test_undefined_variable_is_an_error_naming_it_and_the_message() -> None:
    p = Prompt.parse(
        {
            "name": "qa",
            "messages": [{"role": "system", "content": "hi"}, {"role": "user", "content": "{{ question }}"}],
        }
    )
    with pytest.raises(InvalidInputError) as info:
        p.render({"other": 1})
    assert info.value.message == "prompt 'qa' message 2 (user): undefined variable 'question'"
    assert info.value.hint == "given variables: other"


def test_missing_key_of_a_variable_is_named() -> None:
    with pytest.raises(InvalidInputError, match="undefined attribute or key 'title'"):
        prompt("{{ doc.title }}").render({"doc": {}})


@pytest.mark.parametrize(
    "template",
    [
        "{{ ''.__class__ }}",
        "{{ ''.__class__.__mro__[1].__subclasses__() }}",
        "{{ x.__init__.__globals__ }}",
        "{{ cycler.__init__.__globals__.os }}",
    ],
)
def test_the_sandbox_blocks_reaching_python_internals(template: str) -> None:
    with pytest.raises(InvalidInputError) as info:
        prompt(template).render({"x": object()})
    assert "unsafe" in info.value.message or "undefined" in info.value.message


def test_the_sandbox_error_for_dunder_access_says_unsafe() -> None:
    with pytest.raises(
        InvalidInputError, match=r"message 1 \(user\): the template tried an unsafe operation"
    ):
        prompt("{{ ''.__class__ }}").render({})


def test_runtime_template_errors_are_input_errors() -> None:
    with pytest.raises(InvalidInputError, match="template error: division by zero"):
        prompt("{{ 1 / 0 }}").render({})


def test_examples_go_after_the_system_messages_as_pairs() -> None:
    p = Prompt.parse(
        {
            "name": "qa",
            "messages": [
                {"role": "system", "content": "sys"},
                {"role": "user", "content": "{{ q }}"},
            ],
            "examples": [{"input": "2+2?", "output": "4"}, {"input": "in {{ lang }}", "output": "ok"}],
        }
    )
    roles = [(m["role"], m["content"]) for m in p.render({"q": "3+3?", "lang": "fr"})]
    assert roles == [
        ("system", "sys"),
        ("user", "2+2?"),
        ("assistant", "4"),
        ("user", "in fr"),
        ("assistant", "ok"),
        ("user", "3+3?"),
    ]
    with pytest.raises(InvalidInputError, match="example 2 input: undefined variable 'lang'"):
        p.render({"q": "x"})


def test_request_uses_the_prompts_model_params_and_schema_with_overrides() -> None:
    schema = {"type": "object", "properties": {"a": {"type": "string"}}}
    p = prompt(
        "{{ q }}", model="scripted/one", params={"temperature": 0.5, "max_tokens": 9}, response_schema=schema
    )
    req = p.request({"q": "hi"}, params={"max_tokens": 3})
    assert req.model == "scripted/one" and req.params.temperature == 0.5 and req.params.max_tokens == 3
    assert req.response_schema == schema and req.messages[-1]["content"] == "hi"
    assert p.request({"q": "hi"}, model="scripted/two", sample_index=2).model == "scripted/two"
    with pytest.raises(InvalidInputError, match="names no model"):
        prompt("x").request({})
