"""The embedded model of one provider instance: loaded lazily, once, from any thread.

Nothing happens at construction. The tokenizer loads on the first token count or request; the model loads
in the engine thread on the first request, so an event loop awaiting its first answer is never blocked by
the one-time conversion (~20 s) or the load (~0.3-1 s). Each load happens once, under a lock.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from honed.config import LocalConfig
from honed.errors import HonedError, InvalidInputError
from honed.models.local import weights
from honed.models.local.adapters import AdapterSlots
from honed.models.local.engine import Engine
from honed.models.local.jobs import Generation, Job
from honed.models.types import Message


class ChatTokenizer:
    """The model's own tokenizer behind a lock: the Rust tokenizer must not be used by two threads at once.

    SmolLM2's chat template adds its own system prompt ("You are a helpful AI assistant named SmolLM ...")
    when the messages have none. That is the model's documented behaviour and is kept; give a system
    message to replace it.
    """

    def __init__(self, tokenizer: Any) -> None:
        self._tok = tokenizer
        self._lock = threading.Lock()
        self.eos_id: int = int(tokenizer.eos_token_id)

    def encode_chat(self, messages: Sequence[Message]) -> list[int]:
        """The prompt tokens for `messages`, ending with the assistant turn's opening."""
        with self._lock:
            text = self._tok.apply_chat_template(list(messages), tokenize=False, add_generation_prompt=True)
            return list(self._tok.encode(text, add_special_tokens=False))

    def encode(self, text: str) -> list[int]:
        with self._lock:
            return list(self._tok.encode(text, add_special_tokens=False))

    def decode(self, ids: list[int]) -> str:
        with self._lock:
            return str(self._tok.decode(ids, skip_special_tokens=True))


class LocalModel:
    """SmolLM2-135M-Instruct for one provider: token counting and batched generation."""

    def __init__(self, config: LocalConfig, *, name: str = "local") -> None:
        self.config = config
        self.name = name
        self._lock = threading.RLock()  # held through loading, which can take ~20 s on first use
        self._engine_lock = threading.Lock()  # never held long: the event loop takes it on every request
        self._folder: Path | None = None
        self._tokenizer: ChatTokenizer | None = None
        self._model: Any = None
        self._slots: AdapterSlots | None = None
        self._engine: Engine | None = None
        #: seconds spent on one-time work: "convert_s" (only when this process converted), "load_s"
        self.timings: dict[str, float] = {}

    # -- lazy loading ---------------------------------------------------------------------------------

    def folder(self) -> Path:
        """The converted model's folder, converting the GGUF file first if this machine has no copy."""
        with self._lock:
            if self._folder is None:
                root = self.config.resolved_cache_dir()
                start = time.perf_counter()
                had_copy = weights.is_complete(weights.cache_folder(weights.locate_gguf(), root))
                self._folder = weights.ensure_converted(root)
                if not had_copy:
                    self.timings["convert_s"] = time.perf_counter() - start
            return self._folder

    def tokenizer(self) -> ChatTokenizer:
        with self._lock:
            if self._tokenizer is None:
                self._tokenizer = ChatTokenizer(weights.load_tokenizer(self.folder()))
            return self._tokenizer

    def _loaded(self) -> tuple[Any, AdapterSlots]:
        with self._lock:
            if self._model is None or self._slots is None:
                folder = self.folder()
                start = time.perf_counter()
                self.tokenizer()
                self._model = weights.load_model(folder)
                self._slots = AdapterSlots(self._model)
                self.timings["load_s"] = time.perf_counter() - start
            return self._model, self._slots

    def load(self) -> None:
        """Load everything now (the first request would otherwise pay for it)."""
        self._loaded()

    @property
    def engine(self) -> Engine:
        with self._engine_lock:
            if self._engine is None:
                window = self.config.batch_window_ms / 1000
                self._engine = Engine(
                    self._run_batch, max_batch=self.config.max_batch, window_s=window, name=self.name
                )
            return self._engine

    # -- the public operations ------------------------------------------------------------------------

    def count_messages(self, messages: Sequence[Message]) -> int:
        """Prompt tokens for `messages` once the chat template is applied."""
        return len(self.tokenizer().encode_chat(messages))

    def count_text(self, text: str) -> int:
        return len(self.tokenizer().encode(text))

    async def generate(self, job: Job) -> Generation:
        """Run `job` in the next batch the engine forms."""
        return await self.engine.run(job)

    def close(self) -> None:
        """Stop the engine thread and drop the model (a later request starts and loads them again)."""
        with self._engine_lock:
            engine, self._engine = self._engine, None
        if engine is not None:
            engine.close()
        with self._lock:
            self._model = self._slots = None

    # -- the engine thread ----------------------------------------------------------------------------

    def _run_batch(self, jobs: Sequence[Job]) -> list[Generation | HonedError]:
        """The engine's runner: encode each prompt, reject those that don't fit, generate the rest."""
        from honed.models.local.decoding import generate_batch

        if self.config.threads:
            import torch

            torch.set_num_threads(self.config.threads)  # per thread: the engine thread does the work
        model, slots = self._loaded()
        tok = self.tokenizer()
        context = int(model.config.max_position_embeddings)
        results: list[Generation | HonedError | None] = []
        prompts: list[list[int]] = []
        runnable: list[Job] = []
        for job in jobs:
            prompt = tok.encode_chat(job.messages)
            if len(prompt) + job.max_tokens > context:
                results.append(
                    InvalidInputError(
                        f"the prompt ({len(prompt)} tokens) plus max_tokens ({job.max_tokens}) exceeds the "
                        f"model's context of {context} tokens",
                        hint="shorten the prompt or lower max_tokens",
                    )
                )
                continue
            results.append(None)
            prompts.append(prompt)
            runnable.append(job)
        if runnable:
            with slots.use(runnable[0].adapter):
                done = iter(generate_batch(model, prompts, runnable, tok.eos_id, tok.decode))
            results = [r if r is not None else next(done) for r in results]
        return [r for r in results if r is not None]
