"""Rendering a prompt for its inputs: the one place a prompt's retrieval, dynamic examples and resources
are prepared (`honed.rag.retrieve.augment.Augmenter` is built here and nowhere else).

Every path that sends a prompt to a model renders it with a `Renderer`: `honed prompts run`, chains,
experiments (and their latency probe), the ladder's fine-tuning data and the playground. A prompt that
does not retrieve renders as `Prompt.render` does; one that retrieves opens the knowledge bases, datasets
and databases it names once per renderer, and renders inside it, because resources (a SQL source, a
knowledge-base search) are called while the template renders.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from honed.closing import Closing
from honed.models.types import ChatRequest, Message, Params
from honed.prompts.spec import Prompt

if TYPE_CHECKING:
    from honed.rag.retrieve.augment import Augmented, Augmenter
    from honed.workspace import Workspace

ParamsArg = Params | Mapping[str, Any] | None


@dataclass(frozen=True, slots=True)
class Rendered:
    """A prompt rendered for one call: the messages to send and, for a prompt that retrieves, what was
    retrieved (one entry per retrieval or resource: knowledge base, version, query, chunk ids, scores)."""

    messages: list[Message]
    retrieved: list[dict[str, Any]] | None = None

    def request(self, prompt: Prompt, model: str, params: Params, *, sample_index: int = 0) -> ChatRequest:
        """The request of one call with these messages: `prompt`'s response schema and tools, `params`
        as given (already laid over the prompt's: an experiment merges them once per variant)."""
        return ChatRequest.of(
            model,
            self.messages,
            params,
            response_schema=prompt.response_schema,
            sample_index=sample_index,
            tools=prompt.tools,
        )


class Renderer(Closing):
    """Renders prompts for a workspace; a context manager (it holds open what retrieving prompts read).

    `base` is the folder a prompt file's `file` and `sql` resources are relative to (the file's folder;
    None for stored prompts: the workspace root)."""

    def __init__(self, h: Workspace, *, base: Path | None = None) -> None:
        self._h = h
        self._base = base
        self._augmenter: Augmenter | None = None

    def close(self) -> None:
        if self._augmenter is not None:
            self._augmenter.close()
            self._augmenter = None

    def prepare(self, prompt: Prompt, *, base: Path | None = None) -> None:
        """Open what `prompt` retrieves from, so a missing knowledge base, dataset or file fails before
        any call (nothing to do for a prompt that does not retrieve)."""
        if prompt.augmented:
            self._augment().prepare(prompt, base=base or self._base)

    def model(self, prompt: Prompt, model: str | None = None) -> str | None:
        """The model a call runs on: `model` (a flag beats the file), else the prompt's, else the
        workspace's default."""
        return model or prompt.model or self._h.settings.default_model

    def render(
        self,
        prompt: Prompt,
        inputs: Mapping[str, Any] | None = None,
        *,
        case_id: str | None = None,
        base: Path | None = None,
        gold: Sequence[str] = (),
    ) -> Rendered:
        """The messages for `inputs`. `case_id` keeps a dataset case out of its own dynamic examples;
        `gold` is the case's gold context ids (`mode: gold` retrieval)."""
        if not prompt.augmented:
            return Rendered(prompt.render(inputs))
        aug = self.augment(prompt, inputs, case_id=case_id, base=base, gold=gold)
        return Rendered(prompt.render(aug.variables, examples=aug.examples), aug.trace)

    def request(
        self,
        prompt: Prompt,
        inputs: Mapping[str, Any] | None = None,
        *,
        model: str | None = None,
        params: ParamsArg = None,
        sample_index: int = 0,
        base: Path | None = None,
    ) -> tuple[ChatRequest, list[dict[str, Any]] | None]:
        """The request one call sends (`params` laid over the prompt's) and what was retrieved for it."""
        chosen = self.model(prompt, model)
        if not prompt.augmented:
            return prompt.request(inputs, model=chosen, params=params, sample_index=sample_index), None
        aug = self.augment(prompt, inputs, base=base)
        request = prompt.request(
            aug.variables, model=chosen, params=params, sample_index=sample_index, examples=aug.examples
        )
        return request, aug.trace

    def augment(
        self,
        prompt: Prompt,
        inputs: Mapping[str, Any] | None,
        *,
        case_id: str | None = None,
        base: Path | None = None,
        gold: Sequence[str] = (),
    ) -> Augmented:
        """What a retrieving prompt renders with: the inputs plus what retrieval filled, the dynamic
        examples, and the trace."""
        return self._augment().augment(
            prompt, dict(inputs or {}), case_id=case_id, base=base or self._base, gold=gold
        )

    def _augment(self) -> Augmenter:
        if self._augmenter is None:
            from honed.rag.retrieve.augment import (
                Augmenter,  # the RAG stack loads only for prompts that retrieve
            )

            self._augmenter = Augmenter(self._h, base=self._base)
        return self._augmenter
