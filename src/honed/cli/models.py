"""`honed models list|run`."""

from __future__ import annotations

import itertools
import time
from pathlib import Path
from typing import Any

import typer

from honed.cli.common import (
    JsonOption,
    NoCacheOption,
    console,
    err_console,
    fmt_cost,
    fmt_latency,
    open_honed,
    print_json,
    print_table,
    progress_bars,
)
from honed.errors import HonedError, InvalidInputError
from honed.models.types import ChatRequest, Completion, Message, Params
from honed.userfiles import json_lines

app = typer.Typer(help="Call models: list the models you can call and run prompts.", no_args_is_help=True)


@app.command("list")
def list_models(
    endpoint: str | None = typer.Option(None, "--endpoint", help="Only the models of this endpoint."),
    endpoints: bool = typer.Option(
        False, "--endpoints", help="List the configured endpoints (where calls go) instead of models."
    ),
    json_out: bool = JsonOption,
) -> None:
    """List the models you can call: the embedded model, each fine-tuned adapter (with its job and base),
    and what each OpenAI-compatible endpoint reports at /v1/models (an endpoint that does not answer
    within a few seconds, or has no key, is shown as such).

    Examples: honed models list;  honed models list --endpoint vllm --json;  honed models list --endpoints
    """
    from honed.models.catalog import list_models as catalog

    h = open_honed()
    if endpoints:
        _list_endpoints(h, json_out=json_out)
        return
    entries = catalog(h.client, h.store if h.has_store else None, endpoint=endpoint)
    h.close()
    if json_out:
        print_json([e.to_dict() for e in entries])
        return
    columns = ["model", "kind", "base", "job", "status"]
    rows = [
        [
            e.model + (" (default)" if e.default else ""),
            e.kind,
            _base_shown(e.model, e.base),
            e.job or "",
            e.status if e.status == "ready" or not e.detail else f"{e.status}: {e.detail}",
        ]
        for e in entries
    ]
    if not any(row[2] for row in rows):
        columns.remove("base")
        rows = [row[:2] + row[3:] for row in rows]
    # The names are what a user copies into other commands: never broken over lines (the rest wraps).
    print_table("models (call them by the name in the first column)", columns, rows, whole={"model", "job"})
    if not any(e.default for e in entries) and endpoint is None:
        console.print(f"default model: {h.settings.default_model} (not listed by its endpoint)")


def _base_shown(model: str, base: str | None) -> str:
    """The base model, unless the name already starts with it (an adapter is named BASE+ADAPTER)."""
    return "" if not base or model.startswith(base + "+") else base


def _list_endpoints(h: Any, *, json_out: bool) -> None:
    rows: list[dict[str, Any]] = []
    for name, cfg in sorted(h.client.endpoints().items()):
        rows.append(
            {
                "endpoint": name,
                "provider": cfg.provider,
                "base_url": cfg.base_url,
                "api_key_env": cfg.api_key_env,
                "max_concurrency": cfg.max_concurrency,
            }
        )
    if json_out:
        print_json(rows)
        return
    print_table(
        "endpoints (use as ENDPOINT/MODEL)",
        ["endpoint", "provider", "base_url", "key from"],
        [
            (r["endpoint"], r["provider"], r["base_url"] or "(in process)", r["api_key_env"] or "-")
            for r in rows
        ],
    )
    console.print(f"default model: {h.settings.default_model}")


def _read_prompt_file(path: Path) -> list[tuple[str, list[Message], dict[str, Any]]]:
    """JSONL: one object per line with `prompt` (a string) or `messages`, and optional `id` and `params`."""
    if not path.is_file():
        raise InvalidInputError(f"{path}: no such file", hint="give a JSONL file with one prompt per line")
    items: list[tuple[str, list[Message], dict[str, Any]]] = []
    for lineno, row in json_lines(path, path.read_text(encoding="utf-8")):
        where = f"{path}:{lineno}"
        if not isinstance(row, dict):
            raise InvalidInputError(f"{where}: expected a JSON object")
        unknown = sorted(set(row) - {"id", "prompt", "messages", "params", "system"})
        if unknown:
            raise InvalidInputError(
                f"{where}: unknown key(s) {', '.join(unknown)}",
                hint="use id, prompt, messages, system, params",
            )
        if ("prompt" in row) == ("messages" in row):
            raise InvalidInputError(f"{where}: give exactly one of 'prompt' or 'messages'")
        messages: list[Message] = []
        if "system" in row:
            messages.append({"role": "system", "content": str(row["system"])})
        if "prompt" in row:
            messages.append({"role": "user", "content": str(row["prompt"])})
        else:
            messages.extend(row["messages"])
        items.append((str(row.get("id", len(items) + 1)), messages, dict(row.get("params") or {})))
    if not items:
        raise InvalidInputError(f"{path}: has no prompts")
    return items


@app.command("run")
def run(
    model: str = typer.Argument(
        ..., help="Model reference, e.g. local/smollm2-135m-instruct or openai/gpt-4o-mini."
    ),
    prompt: str | None = typer.Argument(None, help="The user message (or use --file)."),
    file: Path | None = typer.Option(
        None, "--file", "-f", help='JSONL of prompts: {"prompt": ...} per line.'
    ),
    system: str | None = typer.Option(None, "--system", "-s", help="A system message."),
    temperature: float | None = typer.Option(None, "--temperature", "-t"),
    max_tokens: int | None = typer.Option(None, "--max-tokens"),
    stop: list[str] = typer.Option([], "--stop", help="A stop sequence (repeatable)."),
    seed: int | None = typer.Option(None, "--seed"),
    samples: int = typer.Option(1, "--samples", "-n", min=1, help="Independent samples per prompt."),
    no_cache: bool = NoCacheOption,
    json_out: bool = JsonOption,
) -> None:
    """Run a prompt, or a file of prompts, and show outputs, tokens, latency and cost.

    Examples:
      honed models run local/smollm2-135m-instruct "What is the capital of France?"
      honed models run local/smollm2-135m-instruct --file prompts.jsonl --max-tokens 64
    """
    if (prompt is None) == (file is None):
        raise InvalidInputError(
            "give a prompt or --file, not both or neither", hint='e.g. honed models run MODEL "Hi"'
        )
    base = {"temperature": temperature, "max_tokens": max_tokens, "stop": stop or None, "seed": seed}
    base = {k: v for k, v in base.items() if v is not None}
    if file is not None:
        items = _read_prompt_file(file)
    else:
        msgs: list[Message] = [{"role": "system", "content": system}] if system else []
        msgs.append({"role": "user", "content": prompt or ""})
        items = [("1", msgs, {})]
    if system and file is not None:
        items = [(i, [{"role": "system", "content": system}, *m], p) for i, m, p in items]
    requests = [
        ChatRequest.of(model, m, Params.from_dict({**base, **p}), sample_index=s)
        for _, m, p in items
        for s in range(samples)
    ]
    ids = [i for i, _, _ in items for _ in range(samples)]
    h = open_honed(no_cache=no_cache)
    client = h.client
    provider, _, endpoint = client.resolve(model)
    provider.preflight()  # unknown endpoint / missing key fail before any work
    if samples > 1 and _greedy(requests, endpoint.provider):
        shown = f"temperature {temperature:g}" if temperature is not None else "no --temperature"
        err_console.print(
            f"warning: --samples {samples} with {shown} (greedy decoding) gives the same answer each "
            "time: pass --temperature 0.7",
            markup=False,
            highlight=False,
            soft_wrap=True,
        )
    # Load weights before timing, so the first row's latency is the call's, not the model load's (and
    # not at all when the cache answers every request).
    client.warm(requests)
    show_progress = len(requests) > 1 and not json_out
    phase, done = f"running {model}", itertools.count(1)
    with progress_bars(disable=not show_progress) as progress:
        progress(phase, 0, len(requests))  # the bar shows from the start, not from the first result
        started = time.perf_counter()
        results = client.run(requests, on_result=lambda i, r: progress(phase, next(done), len(requests)))
        wall_s = time.perf_counter() - started
    h.close()
    single = prompt is not None and samples == 1
    _report(model, ids, requests, results, json_out=json_out, single=single, wall_s=wall_s)


def _greedy(requests: list[ChatRequest], provider: str) -> bool:
    """Whether some request decodes greedily: temperature 0, or none given to the local model, which then
    decodes greedily (hosted APIs sample at their default temperature, 1 for OpenAI's)."""
    return any(
        r.params.temperature == 0 or (r.params.temperature is None and provider == "local") for r in requests
    )


def _report(
    model: str,
    ids: list[str],
    requests: list[ChatRequest],
    results: list[Completion | HonedError],
    *,
    json_out: bool,
    single: bool,
    wall_s: float,
) -> None:
    failures = [r for r in results if isinstance(r, HonedError)]
    if single and failures:
        raise failures[0]
    if json_out:
        rows = []
        for i, req, r in zip(ids, requests, results, strict=True):
            base = {"id": i, "sample": req.sample_index}
            rows.append(
                {**base, **r.to_dict()} if isinstance(r, Completion) else {**base, "error": r.one_line()}
            )
        print_json(rows)
    elif single and not failures:
        c = results[0]
        assert isinstance(c, Completion)
        console.print(c.text, markup=False, highlight=False)
        err_console.print(
            f"[dim]{c.model} · {c.usage.input_tokens} in / {c.usage.output_tokens} out tokens · "
            f"{fmt_latency(c.latency_s)} · {fmt_cost(c.cost_usd)}{' · cached' if c.cached else ''}[/dim]"
        )
    else:
        rows_out: list[tuple[object, ...]] = []
        n = 0
        for i, req, r in zip(ids, requests, results, strict=True):
            # `#` numbers the prompts (and their samples) so it stays narrow; an id from the file, which
            # may be long, leads the prompt instead, and a prompt's further samples leave it blank.
            if req.sample_index == 0:
                n += 1
            number = str(n)
            label = number if req.sample_index == 0 else f"{number}.{req.sample_index}"
            prompt = "" if req.sample_index else req.messages[-1]["content"]
            if prompt and i != number:
                prompt = f"{i} · {prompt}"
            if isinstance(r, Completion):
                rows_out.append(
                    (
                        label,
                        _clip(prompt, 60),
                        _clip(r.text, 120),
                        r.usage.input_tokens,
                        r.usage.output_tokens,
                        fmt_latency(r.latency_s),
                        fmt_cost(r.cost_usd) + (" (cached)" if r.cached else ""),
                    )
                )
            else:
                rows_out.append((label, _clip(prompt, 60), f"ERROR: {r.one_line()}", "", "", "", ""))
        print_table(
            model,
            ["#", "prompt", "output", "in tok", "out tok", "latency", "cost"],
            rows_out,
            ratios={"prompt": 1, "output": 2},
            max_widths={"#": 7},
        )
        done = [r for r in results if isinstance(r, Completion)]
        out_tokens = sum(r.usage.output_tokens for r in done)
        costs = [r.cost_usd for r in done]
        total_cost = None if any(c is None for c in costs) else sum(c or 0.0 for c in costs)
        rate = f" · {out_tokens / wall_s:.1f} out tok/s" if wall_s > 0 and out_tokens else ""
        console.print(
            f"{len(done)} ok, {len(failures)} failed · {sum(r.usage.input_tokens for r in done)} in / "
            f"{out_tokens} out tokens · cost {fmt_cost(total_cost)} · wall {fmt_latency(wall_s)}{rate}"
        )
    if failures:
        raise typer.Exit(1)


def _clip(text: str, n: int) -> str:
    text = " ".join(text.split())
    return text if len(text) <= n else text[: n - 1] + "…"
