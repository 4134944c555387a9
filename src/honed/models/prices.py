"""Prices in USD per million tokens, by model reference; `[prices."ref"]` in honed.toml overrides them.

The built-in table is a convenience and dated: a price the table does not know is reported as unknown
(None), never guessed. Local models cost nothing. A price marked `notional` is never charged; comparisons
(the ladder's cost per step) may show it, saying so, where the real price would be a flat $0.
"""

from __future__ import annotations

from collections.abc import Mapping

from honed.config import Price
from honed.models.types import Usage

PRICES_AS_OF = "2026-11"

#: (input, output) USD per 1M tokens, for the endpoint `openai`.
BUILTIN: dict[str, tuple[float, float]] = {
    "openai/gpt-4o": (2.50, 10.00),
    "openai/gpt-4o-mini": (0.15, 0.60),
    "openai/gpt-4.1": (2.00, 8.00),
    "openai/gpt-4.1-mini": (0.40, 1.60),
    "openai/gpt-4.1-nano": (0.10, 0.40),
    "openai/o3-mini": (1.10, 4.40),
    "openai/gpt-3.5-turbo": (0.50, 1.50),
    # Embedding models bill their input tokens only.
    "openai/text-embedding-3-small": (0.02, 0.0),
    "openai/text-embedding-3-large": (0.13, 0.0),
    "openai/text-embedding-ada-002": (0.10, 0.0),
}

FREE_ENDPOINTS = frozenset({"local", "scripted"})


class PriceTable:
    def __init__(self, overrides: Mapping[str, Price] | None = None) -> None:
        self._table: dict[str, tuple[float, float]] = dict(BUILTIN)
        #: prices shown in comparisons but never charged (`notional = true`)
        self._notional: dict[str, tuple[float, float]] = {}
        for ref, price in (overrides or {}).items():
            (self._notional if price.notional else self._table)[ref] = (price.input, price.output)

    def price(self, model_ref: str) -> tuple[float, float] | None:
        """(input, output) USD per million tokens, or None when unknown."""
        found = _lookup(self._table, model_ref)
        if found is not None:
            return found
        if model_ref.partition("/")[0] in FREE_ENDPOINTS:
            return (0.0, 0.0)
        return None

    def notional(self, model_ref: str) -> tuple[float, float] | None:
        """The notional price set for `model_ref` (or its base model), or None: what its tokens would cost
        at a comparable hosted model's rate, for comparisons only."""
        return _lookup(self._notional, model_ref)

    def cost(self, model_ref: str, usage: Usage) -> float | None:
        p = self.price(model_ref)
        if p is None:
            return None
        return (usage.input_tokens * p[0] + usage.output_tokens * p[1]) / 1_000_000


def _lookup(table: Mapping[str, tuple[float, float]], model_ref: str) -> tuple[float, float] | None:
    found = table.get(model_ref)
    if found is not None:
        return found
    endpoint, _, name = model_ref.partition("/")
    # A fine-tune or dated snapshot (`gpt-4o-mini-2024-07-18`) is priced as its base when listed, and so
    # is a local LoRA adapter (`local/BASE+ADAPTER`).
    for ref, p in table.items():
        base = ref.split("/", 1)[1] if ref.startswith(f"{endpoint}/") else None
        if base is not None and (name.startswith(base + "-") or name.startswith(base + "+")):
            return p
    return None
