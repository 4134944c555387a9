"""One batched `generate` call for several jobs, each keeping its own decoding settings.

transformers' `generate` takes one set of decoding parameters per call, which would split a batch whenever
requests differ in temperature, top_p, seed, max_tokens or stop strings. Instead the batch runs in greedy
mode and two per-row hooks do the rest:

- `RowSampler` (a logits processor) samples each sampled row itself, with that row's temperature, top_p
  and its own random generator, and forces the chosen token; greedy rows pass through untouched. Because
  a row's random stream is its own, a seeded request gives the same output whether it runs alone or in a
  batch (up to the tiny float differences left padding can cause, as for greedy rows).
- `RowStops` (a stopping criterion) ends a row at its own max_tokens or when its text contains one of its
  stop strings; `generate` then pads that row, and the whole batch ends once every row is done. It also
  hands a streaming row's text so far to the row's job after each step.

This module imports torch and transformers at the top: only the engine thread imports it.
"""

from __future__ import annotations

import dataclasses
import secrets
import time
from collections.abc import Callable, Sequence
from typing import Any

import torch
from transformers import LogitsProcessor, LogitsProcessorList, StoppingCriteria, StoppingCriteriaList

from honed.models.local.jobs import Generation, Job

Decode = Callable[[list[int]], str]


class RowSampler(LogitsProcessor):
    """Temperature + nucleus sampling per row, each row with its own `torch.Generator`."""

    def __init__(self, jobs: Sequence[Job]) -> None:
        self.rows: dict[int, tuple[float, float, torch.Generator]] = {}
        for i, job in enumerate(jobs):
            if job.temperature is not None:
                gen = torch.Generator().manual_seed(
                    job.seed if job.seed is not None else secrets.randbits(63)
                )
                self.rows[i] = (job.temperature, job.top_p or 1.0, gen)

    def __call__(self, input_ids: torch.LongTensor, scores: torch.FloatTensor) -> torch.FloatTensor:
        for i, (temperature, top_p, gen) in self.rows.items():
            logits = scores[i].float() / temperature
            if top_p < 1.0:
                # Keep the smallest set of most likely tokens whose probability reaches top_p (as HF does).
                ordered, order = torch.sort(logits)
                drop = ordered.softmax(-1).cumsum(-1) <= 1 - top_p
                drop[-1] = False
                logits = logits.masked_fill(drop.scatter(0, order, drop), float("-inf"))
            token = torch.multinomial(logits.softmax(-1), 1, generator=gen)
            scores[i] = float("-inf")
            scores[i, token] = 0.0
        return scores


class RowStops(StoppingCriteria):
    """Ends each row at its own max_tokens or at the first of its stop strings, and notes when each row
    ended (eos included), so a short answer in a batch with a long one is not charged the long one's time."""

    def __init__(self, jobs: Sequence[Job], prompt_len: int, decode: Decode, eos_id: int) -> None:
        self.jobs = jobs
        self.prompt_len = prompt_len
        self.decode = decode
        self.eos_id = eos_id
        self.done = [False] * len(jobs)
        #: perf_counter() when each row produced its last token (None: still running)
        self.ended: list[float | None] = [None] * len(jobs)

    def __call__(self, input_ids: torch.LongTensor, scores: Any, **kwargs: Any) -> torch.BoolTensor:
        generated = input_ids[:, self.prompt_len :]
        n = generated.shape[1]
        now = time.perf_counter()
        for i, job in enumerate(self.jobs):
            if self.done[i]:
                continue
            if job.on_text is not None:
                row = generated[i].tolist()
                job.on_text(self.decode(row[: row.index(self.eos_id)] if self.eos_id in row else row))
            if n >= job.max_tokens or int(generated[i, -1]) == self.eos_id:
                self.done[i] = True
            elif job.stop:
                text = self.decode(generated[i].tolist())
                self.done[i] = any(s in text for s in job.stop)
            if self.done[i]:
                self.ended[i] = now
        return torch.tensor(self.done, dtype=torch.bool, device=input_ids.device)  # type: ignore[return-value]


def generate_batch(
    model: Any, prompts: Sequence[list[int]], jobs: Sequence[Job], eos_id: int, decode: Decode
) -> list[Generation]:
    """Run `jobs` (with their encoded `prompts`) as one left-padded batch and cut each row's output."""
    width = max(len(p) for p in prompts)
    input_ids = torch.full((len(prompts), width), eos_id, dtype=torch.long)
    attention = torch.zeros((len(prompts), width), dtype=torch.long)
    for i, prompt in enumerate(prompts):  # left padding: every row's next token lands in the last column
        input_ids[i, width - len(prompt) :] = torch.tensor(prompt, dtype=torch.long)
        attention[i, width - len(prompt) :] = 1
    stops = RowStops(jobs, width, decode, eos_id)
    started = time.perf_counter()
    with torch.inference_mode():
        output = model.generate(
            input_ids=input_ids,
            attention_mask=attention,
            max_new_tokens=max(job.max_tokens for job in jobs),
            do_sample=False,
            pad_token_id=eos_id,
            eos_token_id=eos_id,
            logits_processor=LogitsProcessorList([RowSampler(jobs)]),
            stopping_criteria=StoppingCriteriaList([stops]),
        )
    ended = time.perf_counter()
    rows = output[:, width:].tolist()
    return [
        dataclasses.replace(finish(job, len(prompt), row, eos_id, decode), model_s=(end or ended) - started)
        for job, prompt, row, end in zip(jobs, prompts, rows, stops.ended, strict=True)
    ]


def finish(job: Job, input_tokens: int, generated: list[int], eos_id: int, decode: Decode) -> Generation:
    """Cut one row at its first eos, its first stop string or its max_tokens, and count what was kept."""
    tokens = generated[: job.max_tokens]
    if eos_id in tokens:  # a real eos, or the padding after a row ended on a stop string
        end = tokens.index(eos_id)
        body, used, reason = tokens[:end], end + 1, "stop"
    else:
        body, used, reason = tokens, len(tokens), "length"
    text = decode(body)
    cut = min((i for i in (text.find(s) for s in job.stop) if i >= 0), default=-1)
    if cut >= 0:
        # Count tokens up to the one that completed the stop string (the row ended right after it).
        used = len(body)
        while used > 1 and any(s in decode(body[: used - 1]) for s in job.stop):
            used -= 1
        text, reason = text[:cut], "stop"
    return Generation(text=text, input_tokens=input_tokens, output_tokens=used, finish_reason=reason)
