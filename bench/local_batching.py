"""Throughput of the embedded local model: one request at a time against dynamic batching.

64 short, different chat prompts (greedy, `--max-tokens` 32) run on SmolLM2-135M-Instruct in this process:

- one-at-a-time: each request awaited before the next is sent (what a sequential loop gets);
- batched: all sent at once with `asyncio.gather`; the engine batches them (`--max-batch`, a comma list
  sweeps several sizes, each with its own provider);
- client: the same through `ModelClient.complete_many` (cache off), i.e. with the endpoint's concurrency
  limit in front of the engine, as experiments run it.

Every mode runs in the same process on the same loaded weights; greedy outputs of the batched modes are
checked against the one-at-a-time outputs. The machine's load average is recorded at start and end: on a
shared 2-core machine another process's work changes the numbers (each row's CPU seconds per wall second
shows it: about 2 when this process had both cores). It prints a table and writes
bench/results/local_batching.json.

    .venv/bin/python bench/local_batching.py [--requests 64] [--max-tokens 32] [--max-batch 8,16,32]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from honed.config import EndpointConfig, LocalConfig, Settings
from honed.models.client import ModelClient
from honed.models.providers import local as local_plugin
from honed.models.providers.local import LocalProvider
from honed.models.registry import Registry
from honed.models.types import ChatRequest, ProviderResult

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "results" / "local_batching.json"
MODEL = "smollm2-135m-instruct"

SUBJECTS = [
    "the sea", "a mountain", "coffee", "a library", "the moon", "rain", "a train", "bread",
    "a garden", "winter", "a violin", "the desert", "a lighthouse", "autumn", "a bicycle", "the city",
]  # fmt: skip
TEMPLATES = [
    "Describe {} in one sentence.",
    "Write a short poem about {}.",
    "Give one fun fact about {}.",
    "What does {} make you think of?",
]


def prompts(n: int) -> list[str]:
    out = [t.format(s) for t in TEMPLATES for s in SUBJECTS]
    return (out * (n // len(out) + 1))[:n]


def settings(cache: str | None, **local: Any) -> Settings:
    return Settings(local=LocalConfig(cache_dir=Path(cache) if cache else None, **local))


def provider(s: Settings) -> LocalProvider:
    return LocalProvider.from_config("local", EndpointConfig(provider="local"), s)


async def timed(
    run: Callable[[], Awaitable[list[ProviderResult]]],
) -> tuple[float, float, list[ProviderResult]]:
    """Wall seconds, this process's CPU seconds, and the results."""
    start, cpu = time.perf_counter(), time.process_time()
    results = await run()
    return time.perf_counter() - start, time.process_time() - cpu, results


async def main(args: argparse.Namespace) -> dict[str, Any]:
    cache = os.environ.get("HONED_MODEL_CACHE")
    requests = [
        ChatRequest.of(f"local/{MODEL}", p, {"max_tokens": args.max_tokens}) for p in prompts(args.requests)
    ]
    rows: list[dict[str, Any]] = []
    load_start = os.getloadavg()

    base = provider(settings(cache, max_batch=1))
    started = time.perf_counter()
    base.model.load()
    timings = {**base.model.timings, "first_load_in_process_s": time.perf_counter() - started}
    await base.complete(MODEL, requests[0])  # warm-up: first-call allocations

    async def sequential() -> list[ProviderResult]:
        return [await base.complete(MODEL, r) for r in requests]

    seconds, cpu, reference = await timed(sequential)
    rows.append(row("one-at-a-time", 1, seconds, cpu, reference, reference, {1: len(requests)}))
    await base.aclose()

    for size in args.max_batch:
        p = provider(settings(cache, max_batch=size, batch_window_ms=args.window_ms))
        p.model.load()

        async def batched(p: LocalProvider = p) -> list[ProviderResult]:
            return list(await asyncio.gather(*(p.complete(MODEL, r) for r in requests)))

        seconds, cpu, results = await timed(batched)
        rows.append(row("batched", size, seconds, cpu, results, reference, dict(p.model.engine.batch_sizes)))
        await p.aclose()

    size = args.max_batch[-1]
    registry = Registry()
    local_plugin.register(registry)
    client = ModelClient(settings(cache, max_batch=size, batch_window_ms=args.window_ms), registry=registry)
    warm, _, _ = client.resolve(requests[0].model)
    assert isinstance(warm, LocalProvider)
    warm.model.load()

    async def via_client() -> list[ProviderResult]:
        done = await client.complete_many(requests)
        out = []
        for c in done:
            if isinstance(c, Exception):
                raise c
            out.append(ProviderResult(c.text, c.usage, c.finish_reason, MODEL))
        return out

    seconds, cpu, results = await timed(via_client)
    rows.append(row("client", size, seconds, cpu, results, reference, dict(warm.model.engine.batch_sizes)))
    await client.aclose()

    base_rate = rows[0]["output_tokens_per_s"]
    for r in rows:
        r["ratio"] = round(r["output_tokens_per_s"] / base_rate, 2)
    return {
        "benchmark": "local_batching",
        "machine": {
            "platform": platform.platform(),
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
        },
        "requests": len(requests),
        "max_tokens": args.max_tokens,
        "window_ms": args.window_ms,
        "load_average_start": [round(x, 2) for x in load_start],
        "load_average_end": [round(x, 2) for x in os.getloadavg()],
        "load_timings_s": {k: round(v, 3) for k, v in timings.items()},
        "results": rows,
    }


def row(
    mode: str,
    max_batch: int,
    seconds: float,
    cpu_seconds: float,
    results: list[ProviderResult],
    reference: list[ProviderResult],
    batches: dict[int, int],
) -> dict[str, Any]:
    tokens = sum(r.usage.output_tokens for r in results)
    return {
        "mode": mode,
        "max_batch": max_batch,
        "requests": len(results),
        "output_tokens": tokens,
        "seconds": round(seconds, 2),
        "output_tokens_per_s": round(tokens / seconds, 1),
        # CPU seconds per wall second: ~2 on an idle 2-core machine; less means other processes competed
        "cpu_per_wall": round(cpu_seconds / seconds, 2),
        "same_text_as_one_at_a_time": sum(a.text == b.text for a, b in zip(results, reference, strict=True)),
        "batch_sizes": {str(k): v for k, v in sorted(batches.items())},
    }


def print_table(result: dict[str, Any]) -> None:
    cells = [("mode", "<14"), ("max_batch", ">9"), ("requests", ">8"), ("out tokens", ">10")]
    cells += [("seconds", ">8"), ("tok/s", ">7"), ("ratio", ">6")]
    head = " ".join(f"{name:{fmt}}" for name, fmt in cells)
    print(head)
    print("-" * len(head))
    for r in result["results"]:
        print(
            f"{r['mode']:<14} {r['max_batch']:>9} {r['requests']:>8} {r['output_tokens']:>10} "
            f"{r['seconds']:>8} {r['output_tokens_per_s']:>7} {r['ratio']:>6}"
            f"   cpu/wall {r['cpu_per_wall']}, same text {r['same_text_as_one_at_a_time']}/{r['requests']},"
            f" batches {r['batch_sizes']}"
        )
    print(f"load average start {result['load_average_start']}, end {result['load_average_end']}")
    print(f"load timings: {result['load_timings_s']}")


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--requests", type=int, default=64)
    parser.add_argument("--max-tokens", type=int, default=32)
    parser.add_argument(
        "--max-batch", type=lambda s: [int(x) for x in s.split(",")], default=[LocalConfig().max_batch]
    )
    parser.add_argument("--window-ms", type=float, default=LocalConfig().batch_window_ms)
    parser.add_argument("--out", type=Path, default=RESULTS)
    return parser.parse_args()


if __name__ == "__main__":
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    arguments = parse_args()
    outcome = asyncio.run(main(arguments))
    print_table(outcome)
    arguments.out.parent.mkdir(parents=True, exist_ok=True)
    arguments.out.write_text(json.dumps(outcome, indent=2) + "\n", encoding="utf-8")
    print(f"wrote {arguments.out}")
