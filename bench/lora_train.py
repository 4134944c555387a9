"""Training throughput of the local LoRA backend against a plain peft training loop on the same batches.

Both train SmolLM2-135M-Instruct in this process for the same number of steps (`--steps`, 20), with the
same examples, hyperparameters (the backend's defaults: r=16, alpha=32, all linear projections, AdamW at
1e-3 decaying linearly, batch 8) and the same batches in the same order:

- plain: the model, `get_peft_model`, AdamW and a bare `loss.backward(); step()` loop, written here;
- honed: the `local` backend run by the job worker (`run_job`) on a job in a temporary SQLite workspace,
  i.e. with everything a real job does per step: the cancel check, a metric event in the database, the
  heartbeat thread and a checkpoint every 10 steps.

Each side's clock covers its training loop only (not the model load, which both pay alike). The runs
alternate (plain, honed, plain, honed ... with `--repeats`) and the best of each is compared, so a burst of
load from another process hurts one run, not the ratio. Target: honed's tokens/s at least 90% of the
plain loop's (overhead <= 10%). It prints a table and writes bench/results/lora_train.json.

    .venv/bin/python bench/lora_train.py [--steps 20] [--repeats 2] [--examples 64]
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import platform
import tempfile
import time
from dataclasses import asdict
from pathlib import Path
from typing import Any

import honed
from honed.config import init_workspace, load_settings
from honed.finetune.backend import FinetuneSpec
from honed.finetune.jobs import create_job
from honed.finetune.local import (
    LocalHyperparameters,
    batch_indices,
    collate,
    encode_example,
    lora_config,
    quiet_peft,
)
from honed.finetune.worker import run_job
from honed.models.local import weights

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "results" / "lora_train.json"
SYSTEM = "Answer with one line of JSON."
PRODUCTS = ["kettle", "lamp", "drill", "router", "blender", "scanner", "heater", "camera"]
ASPECTS = ["price", "warranty", "product code", "weight"]


def examples(n: int) -> list[dict[str, Any]]:
    out = []
    for i in range(n):
        product, aspect = PRODUCTS[i % len(PRODUCTS)], ASPECTS[(i // len(PRODUCTS)) % len(ASPECTS)]
        out.append(
            {
                "messages": [
                    {"role": "system", "content": SYSTEM},
                    {"role": "user", "content": f"Facts: item {i} is a {product}. What is its {aspect}?"},
                    {"role": "assistant", "content": json.dumps({"answer": f"{aspect} {i * 7 % 100}"})},
                ]
            }
        )
    return out


def plain_loop(
    data: list[dict[str, Any]], hp: LocalHyperparameters, steps: int, cache: Path
) -> dict[str, Any]:
    import torch
    from peft import get_peft_model

    folder = weights.ensure_converted(cache)
    tok = weights.load_tokenizer(folder)
    rows = [encode_example(tok, e, hp.max_seq_len) for e in data]
    with quiet_peft():
        torch.manual_seed(hp.seed)
        model = get_peft_model(weights.load_model(folder), lora_config(hp))
        optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=hp.learning_rate)
        scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda s: max(0.0, 1 - s / steps))
        model.train()
        tokens, losses, ends = 0, [], []
        start = time.perf_counter()
        for step in range(steps):
            batch = collate(
                [rows[i] for i in batch_indices(hp.seed, step, len(rows), hp.batch_size)], tok.eos_token_id
            )
            loss = model(**batch).loss
            loss.backward()
            optimizer.step()
            scheduler.step()
            optimizer.zero_grad(set_to_none=True)
            tokens += int(batch["attention_mask"].sum())
            losses.append(float(loss.detach()))
            ends.append(time.perf_counter() - start)
        seconds = time.perf_counter() - start
    return {
        "seconds": seconds,
        "tokens": tokens,
        "tokens_per_s": tokens / seconds,
        "losses": losses,
        "step_s": _diffs(ends),
    }


def _diffs(ends: list[float]) -> list[float]:
    return [round(b - a, 3) for a, b in zip([0.0, *ends], ends, strict=False)]


def honed_job(data: list[dict[str, Any]], hp: dict[str, Any], root: Path) -> dict[str, Any]:
    init_workspace(root)
    with honed.connect(root) as h:
        spec = FinetuneSpec(
            backend="local", base_model="local/smollm2-135m-instruct", training="", hyperparameters=hp
        )
        job = create_job(h, spec, data, start=False)
        code = run_job(job.id, h.settings)
        job.refresh()
        if code != 0:
            raise SystemExit(f"the honed job failed: {job.error}")
        m = job.metrics
        steps = [e for e in job.events(kind="metric") if "loss" in e["data"]]
        losses = [e["data"]["loss"] for e in steps]

    return {
        "seconds": m["train_seconds"],
        "tokens": m["tokens"],
        "tokens_per_s": m["tokens"] / m["train_seconds"],
        "losses": losses,
        "step_s": [round(e["data"]["seconds"], 3) for e in steps],
    }


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--examples", type=int, default=64)
    parser.add_argument("--max-seq-len", type=int, default=128)
    args = parser.parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    data = examples(args.examples)
    hp = {"max_steps": args.steps, "epochs": 100, "max_seq_len": args.max_seq_len}
    params = LocalHyperparameters.from_dict(hp)
    load_start = os.getloadavg()
    plain: list[dict[str, Any]] = []
    ours: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="honed-bench-lora-") as tmp:
        cache = load_settings({}).local.resolved_cache_dir()
        for r in range(args.repeats):
            plain.append(plain_loop(data, params, args.steps, cache))
            gc.collect()  # the previous model's memory, before the next one loads
            ours.append(honed_job(data, hp, Path(tmp) / f"run{r}"))
            gc.collect()
            print(
                f"repeat {r + 1}: plain {plain[-1]['tokens_per_s']:.1f} tok/s, "
                f"honed {ours[-1]['tokens_per_s']:.1f} tok/s; seconds per step: plain {plain[-1]['step_s']}, "
                f"honed {ours[-1]['step_s']}",
                flush=True,
            )
    # Contention from other processes only ever adds time, so the fastest of the repeats at each step
    # estimates what that step costs on an idle machine (checkpoint steps included: same index each run).
    floor_plain = sum(min(r["step_s"][i] for r in plain) for i in range(args.steps))
    floor_ours = sum(min(r["step_s"][i] for r in ours) for i in range(args.steps))
    step_ratio = floor_plain / floor_ours
    best_plain = max(plain, key=lambda x: x["tokens_per_s"])
    best_ours = max(ours, key=lambda x: x["tokens_per_s"])
    ratio = best_ours["tokens_per_s"] / best_plain["tokens_per_s"]
    same_losses = all(
        abs(a - b) <= 1e-3 * max(1.0, abs(a))
        for a, b in zip(plain[0]["losses"], ours[0]["losses"], strict=True)
    )
    print(f"\n{'':8} {'steps':>6} {'tokens':>8} {'seconds':>8} {'tok/s':>8}")
    for name, row in (("plain", best_plain), ("honed", best_ours)):
        print(
            f"{name:8} {args.steps:>6} {row['tokens']:>8} {row['seconds']:>8.2f} {row['tokens_per_s']:>8.1f}"
        )
    overhead = 1 - step_ratio
    ok = overhead <= 0.10
    print(f"\nwhole runs, best of {args.repeats}: honed / plain tokens/s = {ratio:.3f}")
    print(f"fastest repeat of each step: plain {floor_plain:.2f} s, honed {floor_ours:.2f} s")
    verdict = "PASS" if ok else "FAIL"
    print(f"honed / plain = {step_ratio:.3f} (overhead {overhead * 100:.1f}%; target <= 10%: {verdict})")
    print(f"same losses step by step: {same_losses}")
    result = {
        "benchmark": "lora_train",
        "steps": args.steps,
        "examples": args.examples,
        "hyperparameters": asdict(params),
        "plain": plain,
        "honed": ours,
        "ratio_best_runs": ratio,
        "step_floor_s": {"plain": floor_plain, "honed": floor_ours},
        "ratio": step_ratio,
        "overhead": overhead,
        "target_overhead": 0.10,
        "pass": ok,
        "same_losses": same_losses,
        "machine": {
            "cpus": os.cpu_count(),
            "platform": platform.platform(),
            "load_start": load_start,
            "load_end": os.getloadavg(),
        },
    }
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(result, indent=2))
    print(f"wrote {RESULTS}")
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
