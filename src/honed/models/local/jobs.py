"""The value types that cross from the provider to the engine thread and back (torch-free)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from honed.models.local.adapters import AdapterRef
from honed.models.types import Message, Params

DEFAULT_MAX_TOKENS = 256


@dataclass(frozen=True, slots=True)
class Job:
    """One chat request as the engine runs it.

    `temperature` is None for greedy decoding (the request's temperature was None or 0). Jobs with any
    decoding settings share a batch: sampling is done per row (see `decoding.RowSampler`), so only the
    adapter splits batches.
    """

    messages: tuple[Message, ...]
    max_tokens: int = DEFAULT_MAX_TOKENS
    stop: tuple[str, ...] = ()
    temperature: float | None = None
    top_p: float | None = None
    seed: int | None = None
    adapter: AdapterRef | None = None
    #: called on the engine thread after each decoding step with the row's text so far (eos and padding
    #: left out, stop strings not yet cut), for a caller that streams; it must not block
    on_text: Callable[[str], None] | None = field(default=None, compare=False)

    @classmethod
    def of(cls, messages: tuple[Message, ...], params: Params, adapter: AdapterRef | None = None) -> Job:
        return cls(
            messages=messages,
            max_tokens=params.max_tokens or DEFAULT_MAX_TOKENS,
            stop=tuple(s for s in params.stop if s),
            temperature=params.temperature or None,
            top_p=params.top_p,
            seed=params.seed,
            adapter=adapter,
        )

    @property
    def group(self) -> str:
        """Jobs with the same group can run in one `generate` call."""
        return self.adapter.key if self.adapter else ""


@dataclass(frozen=True, slots=True)
class Generation:
    """One job's result: the text cut at eos, a stop string or max_tokens, and its token counts.

    `output_tokens` counts the tokens the model generated up to the cut, including the eos token or the
    token that completed a stop string (as vLLM counts them). `model_s + queue_s` is the whole time from
    `submit` to the result.
    """

    text: str
    input_tokens: int
    output_tokens: int
    finish_reason: str  # "stop" (eos or a stop string) or "length" (max_tokens)
    #: seconds from the start of its batch's generation to this row's last token (None: not measured,
    #: then the whole batch counts); the time in the model a caller of this row sees
    model_s: float | None = field(default=None, compare=False)
    #: seconds the job waited for a batch, then for the rest of its batch after its own row ended (set
    #: by the engine)
    queue_s: float = field(default=0.0, compare=False)
