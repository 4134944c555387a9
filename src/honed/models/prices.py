"""Prices in USD per million tokens, by model reference; `[prices."ref"]` in honed.toml overrides them.

The built-in table is a convenience and dated: a price the table does not know is reported as unknown
(None), never guessed. Local models cost nothing.
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
}

FREE_ENDPOINTS = frozenset({"local", "scripted"})


class PriceTable:
    def __init__(self, overrides: Mapping[str, Price] | None = None) -> None:
        self._table: dict[str, tuple[float, float]] = dict(BUILTIN)
        for ref, price in (overrides or {}).items():
            self._table[ref] = (price.input, price.output)

    def price(self, model_ref: str) -> tuple[float, float] | None:
        """(input, output) USD per million tokens, or None when unknown."""
        found = self._table.get(model_ref)
        if found is not None:
            return found
        endpoint, _, name = model_ref.partition("/")
        if endpoint in FREE_ENDPOINTS:
            return (0.0, 0.0)
        # A fine-tune or dated snapshot (`gpt-4o-mini-2024-07-18`) is priced as its base when listed.
        for ref, p in self._table.items():
            if ref.startswith(f"{endpoint}/") and name.startswith(ref.split("/", 1)[1] + "-"):
                return p
        return None

    def cost(self, model_ref: str, usage: Usage) -> float | None:
        p = self.price(model_ref)
        if p is None:
            return None
        return (usage.input_tokens * p[0] + usage.output_tokens * p[1]) / 1_000_000
