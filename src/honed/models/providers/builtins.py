"""The built-in providers, registered as a plugin would be (`honed.providers` entry point `builtin`)."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from honed.models.registry import ProviderRegistry


def register(registry: ProviderRegistry) -> None:
    """Add the OpenAI-compatible, local and scripted providers (their modules import nothing heavy)."""
    from honed.models.providers import local, openai_compat, scripted

    for module in (openai_compat, local, scripted):
        module.register(registry)
