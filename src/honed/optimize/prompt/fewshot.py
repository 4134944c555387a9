"""Few-shot candidates: the prompt with demonstrations, as DSPy's BootstrapFewShot and dynamic few-shot.

`bootstrapped`: the start prompt runs on some train cases; those it gets right (by the primary evaluator)
become demonstrations with the model's own replies, which show the model a reply it can produce. When
fewer pass than `k` (an instruction-only prompt a small model ignores passes none), labelled train cases
fill the rest, their replies rendered from the spec's `target`, as DSPy tops up with labelled demos.
`similar`: per case, the `k` train cases most similar to it, replies from `target` (`examples_from`).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from honed.optimize.derive import last_user, with_few_shot, without_few_shot
from honed.prompts.spec import Example, Prompt
from honed.prompts.template import render

if TYPE_CHECKING:
    from honed.datasets import Case, DatasetVersion
    from honed.optimize.prompt.trials import CaseScore

__all__ = ["bootstrapped", "similar"]


def bootstrapped(
    prompt: Prompt, k: int, train: Sequence[Case], scored: dict[str, CaseScore], *, target: str
) -> tuple[Prompt, str]:
    """`prompt` with `k` static demonstrations: the train cases it passed (in id order) with its own
    replies, then labelled ones; and the change in words."""
    template = prompt.messages[last_user(prompt)].content
    passed = [c for c in train if _passed(scored.get(c.id))]
    labelled = [c for c in train if c not in passed]
    examples = []
    for c in passed[:k]:
        reply = scored[c.id].output or ""
        examples.append(
            Example(
                input=_literal(render(template, c.inputs, where=f"demonstration {c.id!r}")),
                output=_literal(reply),
            )
        )
    for c in labelled[: k - len(examples)]:
        fields = {**c.inputs, "reference": c.reference}
        reply = render(target, fields, where=f"target (case {c.id!r})")
        examples.append(
            Example(
                input=_literal(render(template, c.inputs, where=f"demonstration {c.id!r}")),
                output=_literal(reply),
            )
        )
    own = min(k, len(passed))
    change = f"few-shot: {len(examples)} bootstrapped demonstrations ({own} own replies"
    change += f", {len(examples) - own} labelled)"
    return without_few_shot(prompt).model_copy(update={"examples": examples}), change


def similar(
    prompt: Prompt, k: int, dataset: DatasetVersion, split: str, *, target: str
) -> tuple[Prompt, str]:
    """`prompt` with the `k` train cases most similar to each case as demonstrations (replies from
    `target`)."""
    # Imported here: the plan module imports the search's spec (a ladder step can be a search), so a
    # module-level import would be circular.
    from honed.optimize.plan import FewShot

    derived = with_few_shot(prompt, FewShot(split=split, k=k, select="similar"), dataset, target=target)
    return derived, f"few-shot: {k} similar demonstrations of {split}"


def _passed(score: CaseScore | None) -> bool:
    if score is None or score.score is None:
        return False
    return bool(score.passed) if score.passed is not None else score.score >= 1.0


def _literal(text: str) -> str:
    """Text as a template that renders to itself (demonstrations are templates)."""
    if "{{" in text or "{%" in text or "{#" in text:
        return "{% raw %}" + text + "{% endraw %}"
    return text
