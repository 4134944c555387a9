"""Tiny LoRA training data and settings shared by the local fine-tuning tests (a few seconds per step)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

SYSTEM = "You answer with the product code as JSON."
BASE = "local/smollm2-135m-instruct"
#: 12 examples in batches of 4: 3 steps an epoch, 6 in all; checkpoints at steps 2 and 4
TINY: dict[str, Any] = {"batch_size": 4, "max_seq_len": 64, "checkpoint_every": 2, "epochs": 2}


def example(i: int) -> dict[str, Any]:
    return {
        "messages": [
            {"role": "system", "content": SYSTEM},
            {"role": "user", "content": f"What is the code of the item number {i}?"},
            {"role": "assistant", "content": json.dumps({"code": f"QX-{i:02d}"})},
        ]
    }


def examples(n: int = 12, start: int = 0) -> list[dict[str, Any]]:
    return [example(i) for i in range(start, start + n)]


def write_jsonl(path: Path, rows: list[dict[str, Any]]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path
