"""What the pointwise and pairwise LLM judges share: the model call, the case shown to the judge, and
robust parsing of the judge's JSON reply.

Parsing takes the reply's JSON object (whole, in a ``` fence, or the first `{...}` that decodes), and never
grabs a stray digit from prose: "I'd give it a 4, maybe 5" is an unparseable judgment, kept as an error
with the raw text, because a guessed number is worse than a missing one.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from honed.errors import HonedError, InvalidInputError
from honed.evals.evaluators.base import EvalInput, Evaluator
from honed.logs.context import log_context
from honed.models.client import ModelClient
from honed.models.types import ChatRequest, Completion, Message, Params

UNPARSEABLE = "unparseable judgment"
CALL_FAILED = "judge call failed"

_FENCED = re.compile(r"```[a-zA-Z]*\s*(.*?)```", re.DOTALL)


def extract_json_object(text: str) -> dict[str, Any] | None:
    """The JSON object in a judge's reply, or None when there is none."""
    for candidate in [text.strip(), *(m.group(1).strip() for m in _FENCED.finditer(text))]:
        try:
            value = json.loads(candidate)
        except json.JSONDecodeError:
            continue
        if isinstance(value, dict):
            return value
    decoder = json.JSONDecoder()
    for i, ch in enumerate(text):
        if ch == "{":
            try:
                value, _ = decoder.raw_decode(text, i)
            except json.JSONDecodeError:
                continue
            if isinstance(value, dict):
                return value
    return None


def _block(title: str, body: Any) -> str:
    text = body if isinstance(body, str) else json.dumps(body, ensure_ascii=False, indent=2)
    return f"[{title}]\n{text}\n"


def call_cost(results: Sequence[Completion | HonedError]) -> dict[str, Any]:
    """Tokens and cost the judge spent on one item (cost None when any price is unknown)."""
    done = [r for r in results if isinstance(r, Completion)]
    costs = [r.cost_usd for r in done]
    return {
        "judge_input_tokens": sum(r.usage.input_tokens for r in done),
        "judge_output_tokens": sum(r.usage.output_tokens for r in done),
        "judge_cost_usd": None if any(c is None for c in costs) else sum(c for c in costs if c is not None),
    }


@dataclass(frozen=True, kw_only=True, eq=False)
class JudgeBase(Evaluator):
    """A model-backed evaluator. `client` comes from the build context (the workspace's `ModelClient`, so
    judgments are cached and costed like every other call)."""

    model: str
    rubric: str
    temperature: float | None = None
    max_tokens: int = 512
    use_inputs: bool = True
    use_reference: bool = True
    use_context: bool = True
    client: ModelClient | None = field(
        default=None, metadata={"context": "client"}, repr=False, compare=False
    )

    def __post_init__(self) -> None:
        super().__post_init__()
        if not self.rubric.strip():
            raise InvalidInputError(
                f"evaluator {self.name!r}: the rubric is empty", hint="say what a good answer is"
            )
        if "/" not in self.model:
            raise InvalidInputError(
                f"evaluator {self.name!r}: model {self.model!r} is not ENDPOINT/MODEL",
                hint="e.g. openai/gpt-4o-mini",
            )
        Params(temperature=self.temperature, max_tokens=self.max_tokens).validate()

    def _client(self) -> ModelClient:
        if self.client is None:
            raise InvalidInputError(
                f"evaluator {self.name!r} needs a model client",
                hint="build it with build_evaluator(spec, context=BuildContext(client=...)) or pass client=",
            )
        return self.client

    def case_text(self, item: EvalInput) -> str:
        """The parts of the case the judge sees before the response(s)."""
        parts: list[str] = []
        if self.use_inputs and item.inputs:
            parts.append(_block("Input", item.inputs))
        if self.use_context and item.context:
            parts.append(_block("Context", "\n\n".join(item.context)))
        if self.use_reference and item.reference is not None:
            parts.append(_block("Reference answer", item.reference))
        return "\n".join(parts)

    def request(self, system: str, user: str, *, sample_index: int = 0) -> ChatRequest:
        messages: tuple[Message, ...] = (
            {"role": "system", "content": system},
            {"role": "user", "content": user},
        )
        params = Params(temperature=self.temperature, max_tokens=self.max_tokens)
        return ChatRequest(self.model, messages, params, sample_index=sample_index)

    async def call(self, requests: Sequence[ChatRequest]) -> list[Completion | HonedError]:
        with log_context(source="judge", metadata={"evaluator": self.name}):
            return await self._client().complete_many(requests)

    async def aclose(self) -> None:
        if self.client is not None:
            await self.client.aclose_providers()
