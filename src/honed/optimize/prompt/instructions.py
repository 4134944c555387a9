"""Instruction candidates: GEPA's reflective mutation over the prompt's system message, scored by honed.

The `gepa` library runs the search (which candidate to mutate next, minibatch acceptance, the Pareto front
over dev cases); honed is its adapter: `evaluate` runs a candidate's instructions as a stored prompt
version through `Trials` (an experiment per minibatch, charged to the budget), `make_reflective_dataset`
turns each result into input, output and the evaluator's reason, and `propose_new_texts` asks the
proposer model, through the response cache, for better instructions from those failures. GEPA's train set
is the train split and its validation set the dev split, so the search never sees a test case.

GEPA keeps its state in memory; what makes a killed search resumable is honed's: every call is cached and
every trial is a resumable experiment, and GEPA (seeded) takes the same path again over the same scores,
so the rerun repeats no call.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from honed.errors import BudgetExceededError
from honed.prompts.spec import Prompt, PromptMessage

if TYPE_CHECKING:
    from gepa.core.adapter import EvaluationBatch
    from gepa.core.state import GEPAState

    from honed.datasets import Case
    from honed.optimize.prompt.search import Search
    from honed.optimize.prompt.spec import InstructionStrategy
    from honed.optimize.prompt.trials import Version

__all__ = ["PROPOSER", "InstructionSearch", "with_instructions"]

COMPONENT = "instructions"

PROPOSER = Prompt.parse(
    {
        "name": "prompt-search-proposer",
        "params": {"temperature": 0, "max_tokens": 300},
        "messages": [
            {
                "role": "system",
                "content": "You improve the instructions a language model is given for a task.",
            },
            {
                "role": "user",
                "content": "The model was given these instructions:\n```\n{{ instructions }}\n```\n\n"
                "Here is how it did on some inputs, with feedback:\n\n{{ examples }}\n\n"
                "Write new instructions that fix the failures and keep what worked. Reply with only the "
                "new instructions, inside ``` fences.",
            },
        ],
    }
)


def with_instructions(prompt: Prompt, text: str) -> Prompt:
    """`prompt` with `text` as its (first) system message, added when it has none."""
    content = text if not re.search(r"\{[{%#]", text) else "{% raw %}" + text + "{% endraw %}"
    messages = list(prompt.messages)
    if messages and messages[0].role == "system":
        messages[0] = PromptMessage(role="system", content=content)
    else:
        messages.insert(0, PromptMessage(role="system", content=content))
    return prompt.model_copy(update={"messages": messages})


def instructions_of(prompt: Prompt) -> str:
    first = prompt.messages[0]
    if first.role != "system":
        return ""
    return first.content.removeprefix("{% raw %}").removesuffix("{% endraw %}")


def parse_reply(text: str, current: str) -> str:
    """The instructions in a proposer's reply: inside the first ``` fences, else the whole reply."""
    fenced = re.search(r"```[a-zA-Z]*\n?(.*?)```", text, re.S)
    found = (fenced.group(1) if fenced else text).strip()
    return found[:4000] if found else current


@dataclass
class InstructionSearch:
    """One GEPA search from `parent` (see the module docstring); `proposals` and `accepted` count what
    GEPA proposed and what passed its minibatch test."""

    search: Search
    parent: Version
    strategy: InstructionStrategy
    train: Sequence[Case]
    dev: Sequence[Case]
    proposals: int = 0
    stopped: str | None = None
    seen: dict[str, Version] = field(default_factory=dict)

    def run(self) -> None:
        from gepa.api import optimize

        seed = {COMPONENT: instructions_of(self.parent.prompt)}
        try:
            optimize(
                seed_candidate=seed,
                trainset=list(self.train),
                valset=list(self.dev),
                adapter=_Adapter(self),  # type: ignore[arg-type]  # a structural GEPAAdapter
                reflection_minibatch_size=self.strategy.minibatch,
                candidate_selection_strategy="current_best",
                stop_callbacks=[self._should_stop],
                logger=_Quiet(),
                seed=self.search.spec.seed,
                raise_on_exception=True,
                display_progress_bar=False,
            )
        except BudgetExceededError as exc:
            self.stopped = exc.message

    def _should_stop(self, gepa_state: GEPAState[Any, Any]) -> bool:
        # An iteration may propose nothing (GEPA skips a parent perfect on its minibatch): count both.
        if self.proposals >= self.strategy.iterations or gepa_state.i + 1 >= self.strategy.iterations:
            return True
        # One more iteration: a proposal, the parent and the child on a minibatch, the child on dev.
        need = 1 + 2 * self.strategy.minibatch + len(self.dev)
        ledger = self.search.ledger
        if ledger.calls is not None and ledger.calls - ledger.used - ledger.reserve_calls < need:
            self.stopped = f"the budget leaves too few calls for another proposal ({ledger.describe()})"
            return True
        return False

    def version(self, text: str) -> Version:
        if text not in self.seen:
            derived = with_instructions(self.parent.prompt, text)
            self.seen[text] = self.search.candidate(
                derived,
                parent=self.parent,
                change="instructions: proposed by the proposer from failures",
                strategy="instructions",
            )
        return self.seen[text]

    def propose(self, current: str, records: Sequence[Mapping[str, Any]]) -> str:
        self.proposals += 1
        examples = "\n\n".join(
            f"Input: {r.get('Inputs')}\nOutput: {r.get('Generated Outputs')}\nFeedback: {r.get('Feedback')}"
            for r in records
        )
        return parse_reply(self.search.propose(current, examples), current)


class _Quiet:
    """GEPA's log goes nowhere: honed reports the candidates itself, and `--json` keeps stdout clean."""

    def log(self, message: str) -> None:
        pass


class _Adapter:
    """honed as GEPA's `GEPAAdapter` (see the module docstring)."""

    def __init__(self, owner: InstructionSearch) -> None:
        self.owner = owner
        self.propose_new_texts = self._propose

    def evaluate(
        self, batch: list[Case], candidate: dict[str, str], capture_traces: bool = False
    ) -> EvaluationBatch[dict[str, Any], str]:
        from gepa.core.adapter import EvaluationBatch

        owner = self.owner
        version = owner.version(candidate[COMPONENT])
        on_dev = [c.id for c in batch] == [c.id for c in owner.dev]
        phase = "instructions"
        scored = owner.search.trials.score(phase, [version], batch)[version.hash]
        if on_dev:
            owner.search.scored_on_dev(version)
        outputs = [scored[c.id].output or "" for c in batch]
        scores = [scored[c.id].score or 0.0 for c in batch]
        traces = None
        if capture_traces:
            traces = [
                {
                    "inputs": dict(c.inputs),
                    "output": scored[c.id].output,
                    "feedback": f"score {scored[c.id].score}; expected {c.reference!r}; "
                    f"{scored[c.id].reason or ''}".strip(),
                }
                for c in batch
            ]
        return EvaluationBatch(outputs=outputs, scores=scores, trajectories=traces)

    def make_reflective_dataset(
        self,
        candidate: dict[str, str],
        eval_batch: EvaluationBatch[dict[str, Any], str],
        components_to_update: list[str],
    ) -> dict[str, list[dict[str, Any]]]:
        records = [
            {"Inputs": t["inputs"], "Generated Outputs": t["output"], "Feedback": t["feedback"]}
            for t in eval_batch.trajectories or []
        ]
        return {name: records for name in components_to_update}

    def _propose(
        self,
        candidate: dict[str, str],
        reflective_dataset: Mapping[str, Sequence[Mapping[str, Any]]],
        components_to_update: list[str],
    ) -> dict[str, str]:
        out = dict(candidate)
        for name in components_to_update:
            out[name] = self.owner.propose(candidate[name], reflective_dataset.get(name, []))
        return out
