"""The built-in training backends: `local` (LoRA on the embedded model) and `openai` (the fine-tuning API)."""

from __future__ import annotations

import importlib.util
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from honed.finetune.registry import TrainerRegistry


def register(registry: TrainerRegistry) -> None:
    """Entry point of the `honed.trainers` group for honed's own backends."""
    from honed.finetune.local import LocalBackend

    registry.add(LocalBackend())
    # The OpenAI backend lives in its own module; a build without it still has the local one.
    if importlib.util.find_spec("honed.finetune.openai") is not None:
        module = importlib.import_module("honed.finetune.openai")
        registry.add(module.OpenAIBackend())
