"""Deriving a step's prompt from the one it inherits: few-shot demonstrations on or off, retrieval added.

A ladder step says what it changes ("add three similar demonstrations", "retrieve three facts"), not a
whole new prompt file, and the result is an ordinary prompt version: pushed under the base prompt's name,
content-hashed, visible in `honed prompts show`, so every step's exact prompt is on record.

Retrieval needs a place in the messages. When the prompt's templates already read the retrieval
variable, that is where the context goes; when they do not, the context is put before the last user
message under the variable's name (`Facts:\\n{{ facts }}\\n\\n` + the message), which is what prompt
stuffing means and keeps the instructions as they were.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from honed.errors import InvalidInputError
from honed.prompts.spec import Example, ExamplesFrom, Prompt, PromptMessage, RetrieveStep
from honed.prompts.template import render, template_variables

if TYPE_CHECKING:
    from honed.datasets import DatasetVersion
    from honed.optimize.plan import FewShot

__all__ = ["last_user", "with_context", "with_few_shot", "without_few_shot"]


def last_user(prompt: Prompt) -> int:
    """The index of the prompt's last user message."""
    for i in range(len(prompt.messages) - 1, -1, -1):
        if prompt.messages[i].role == "user":
            return i
    raise InvalidInputError(
        f"prompt {prompt.name!r} has no user message", hint="a step derives from the last user message"
    )


def without_few_shot(prompt: Prompt) -> Prompt:
    """The prompt with no demonstrations: neither static `examples` nor `examples_from`."""
    return prompt.model_copy(update={"examples": [], "examples_from": None})


def with_few_shot(prompt: Prompt, few_shot: FewShot, dataset: DatasetVersion, *, target: str) -> Prompt:
    """The prompt with `few_shot.k` demonstrations from `dataset`'s `few_shot.split` instead of its own:
    chosen per case by similarity (`select="similar"`) or the first `k` cases by id (`"fixed"`, rendered
    into static examples). A demonstration's reply is `target` rendered over the example case."""
    split, k = few_shot.split, few_shot.k
    template = few_shot.input or _case_input(prompt)
    provided = template_variables(template) & prompt.provided()
    if provided:
        raise InvalidInputError(
            f"few_shot: the demonstrations' input would read {', '.join(sorted(provided))}, which example "
            "cases do not have",
            hint="give few_shot.input, a template over a case's inputs (e.g. '{{ question }}')",
        )
    base = without_few_shot(prompt)
    if few_shot.select == "similar":
        spec = ExamplesFrom(
            dataset=dataset.ref, split=split, k=k, query=template, input=template, output=target
        )
        return base.model_copy(update={"examples_from": spec})
    cases = sorted(dataset.split(split), key=lambda c: c.id)[:k]
    if len(cases) < k:
        raise InvalidInputError(
            f"few_shot: split {split!r} of {dataset.ref} has {len(cases)} cases, fewer than k={k}",
            hint="lower k or use another split",
        )
    examples = []
    for c in cases:
        fields = {**c.inputs, "reference": c.reference}
        where = f"few_shot example {c.id!r}"
        examples.append(
            Example(
                input=_literal(render(template, c.inputs, where=f"{where} input")),
                output=_literal(render(target, fields, where=f"{where} output")),
            )
        )
    return base.model_copy(update={"examples": examples})


def _case_input(prompt: Prompt) -> str:
    """A demonstration's default user turn: the one the prompt's dynamic few-shot already uses, else its
    last user message without the context `with_context` put before it."""
    if prompt.examples_from is not None:
        return prompt.examples_from.input
    content = prompt.messages[last_user(prompt)].content
    for step in prompt.retrieve or []:
        content = content.removeprefix(_context_block(step.into))
    return content


def _context_block(into: str) -> str:
    return f"{into.replace('_', ' ').capitalize()}:\n{{{{ {into} }}}}\n\n"


def with_context(prompt: Prompt, step: RetrieveStep) -> Prompt:
    """The prompt retrieving with `step` instead of whatever it retrieved before; the context goes where
    the templates read `step.into`, or before the last user message (see the module docstring)."""
    reads = set().union(*(template_variables(m.content) for m in prompt.messages))
    messages = list(prompt.messages)
    if step.into not in reads:
        i = last_user(prompt)
        content = _context_block(step.into) + messages[i].content
        messages[i] = PromptMessage(role="user", content=content)
    return prompt.model_copy(update={"retrieve": [step], "messages": messages})


def _literal(text: str) -> str:
    """Rendered text as a template that renders to itself (demonstrations are templates too)."""
    if "{{" in text or "{%" in text or "{#" in text:
        return "{% raw %}" + text + "{% endraw %}"
    return text
