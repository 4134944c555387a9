"""Fine-tuning a local embedder on (query, relevant passage) pairs, on the CPU.

The objective is MultipleNegativesRankingLoss: in a batch of n pairs, each query's own passage is the
positive and the other n-1 passages are its negatives; the logits are 20 x the cosine similarities and the
loss is the cross-entropy against the diagonal. sentence-transformers' trainer needs the `datasets`
package, so this is a plain torch loop over the SentenceTransformer module: tokenize with the model's own
preprocessing, run it forward (mean pooling, normalisation, as `encode` does), step AdamW.

Batches never hold the same query or passage twice (a duplicate would be its own row's negative); pairs
are shuffled with `seed`, so a run is reproducible on the same machine. The model is saved with
`model.save` to `.honed/embedders/NAME` with a `honed.json` manifest (base, pairs' hash, parameters, losses)
and is then `local/NAME` to `build_embedder`; its identity carries a fingerprint of the saved weights.
"""

from __future__ import annotations

import json
import math
import random
import shutil
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from honed.errors import ConfigError, InvalidInputError
from honed.hashing import content_hash
from honed.rag.index.embedders import local

if TYPE_CHECKING:
    from honed.config import Settings

#: MultipleNegativesRankingLoss's default: cosines in [-1, 1] become logits in [-20, 20].
SCALE = 20.0
MAX_GRAD_NORM = 1.0
WEIGHT_DECAY = 0.01

Progress = Callable[[int, int, float], None]
"""`progress(step, total_steps, loss)`, called after each optimizer step."""


@dataclass(frozen=True, slots=True)
class FinetunedEmbedder:
    """A fine-tuned embedder saved in the workspace: use it as `local/{name}` (see `ref`)."""

    name: str
    path: Path
    identity: str
    steps: int
    losses: list[float]
    seconds: float
    pairs: int = 0  # distinct pairs trained on (a pair left alone in a batch has no negatives: skipped)
    tokens: int = 0  # query and passage tokens processed over all epochs
    pairs_per_second: float = 0.0  # training speed: pairs processed (over all epochs) per second
    params: dict[str, Any] = field(default_factory=dict)

    @property
    def ref(self) -> str:
        return f"local/{self.name}"

    @property
    def tokens_per_second(self) -> float:
        return self.tokens / self.seconds if self.seconds > 0 else 0.0


def finetune_embedder(
    pairs: Sequence[tuple[str, str]],
    *,
    name: str,
    settings: Settings,
    base: str = "local/all-MiniLM-L6-v2",
    epochs: int = 1,
    batch_size: int = 16,
    learning_rate: float = 2e-5,
    seed: int = 0,
    progress: Progress | None = None,
    overwrite: bool = False,
    on_start: Callable[[int], None] | None = None,
) -> FinetunedEmbedder:
    """Fine-tune `base` on (query, relevant passage) `pairs` with in-batch negatives, and save it as NAME.

    Refuses a NAME that exists unless `overwrite`, and fewer pairs than `batch_size` (the negatives come
    from the batch). Runs on the CPU: a step of 16 abstract-length pairs (~250 tokens) takes several
    seconds on two cores, so a few hundred pairs take minutes. `on_start(total_steps)` is called once the
    arguments are checked, before the model loads (so a caller can say what is coming), and
    `progress(step, total, loss)` after each step."""
    checked = _check_pairs(pairs)
    _check_params(epochs, batch_size, learning_rate)
    target = _target(name, settings, overwrite)
    if len(checked) < batch_size:
        raise InvalidInputError(
            f"fine-tuning needs at least batch_size={batch_size} pairs, got {len(checked)}",
            hint="give more (query, passage) pairs or a smaller batch_size (in-batch negatives need a batch)",
        )
    base_label, base_folder, base_identity = _base_model(base, settings)
    # Planned before the model loads (the plan is the seed's alone), so `on_start` hears the step count
    # early: loading the model and the first step take a while with nothing else to show.
    rng = random.Random(seed)
    plans = [_batches(checked, batch_size, rng) for _ in range(epochs)]
    total = sum(len(plan) for plan in plans)
    if on_start is not None:
        on_start(total)

    import torch

    torch.manual_seed(seed)
    model = local.load_fresh(base_folder)  # its own copy: the shared instance must keep its weights
    model.to("cpu")
    model.train()
    optimizer = torch.optim.AdamW(model.parameters(), lr=learning_rate, weight_decay=WEIGHT_DECAY, fused=True)
    losses: list[float] = []
    tokens = 0
    started = time.perf_counter()
    for plan in plans:
        for batch in plan:
            queries = model.preprocess([checked[i][0] for i in batch])
            passages = model.preprocess([checked[i][1] for i in batch])
            tokens += int(queries["attention_mask"].sum()) + int(passages["attention_mask"].sum())
            q = torch.nn.functional.normalize(model(queries)["sentence_embedding"], dim=-1)
            p = torch.nn.functional.normalize(model(passages)["sentence_embedding"], dim=-1)
            logits = SCALE * q @ p.T
            loss = torch.nn.functional.cross_entropy(logits, torch.arange(len(batch)))
            optimizer.zero_grad(set_to_none=True)
            loss.backward()  # type: ignore[no-untyped-call]
            torch.nn.utils.clip_grad_norm_(model.parameters(), MAX_GRAD_NORM)
            optimizer.step()
            losses.append(float(loss.detach()))
            if progress is not None:
                progress(len(losses), total, losses[-1])
    seconds = time.perf_counter() - started
    model.eval()

    params = {
        "epochs": epochs,
        "batch_size": batch_size,
        "learning_rate": learning_rate,
        "seed": seed,
        "scale": SCALE,
        "loss": "MultipleNegativesRankingLoss",
    }
    used = len({i for plan in plans for batch in plan for i in batch})
    examples = sum(len(batch) for plan in plans for batch in plan)
    manifest = {
        "name": name,
        "base": base_label,
        "base_identity": base_identity,
        "pairs": len(checked),
        "pairs_used": used,
        "pairs_hash": content_hash([list(p) for p in checked]),
        "params": params,
        "steps": len(losses),
        "losses": losses,
        "tokens": tokens,
        "seconds": round(seconds, 3),
        "created_at": datetime.now(UTC).isoformat(timespec="seconds"),
    }
    _save(model, manifest, target)
    identity = local.folder_identity(name, local.fingerprint(target))
    return FinetunedEmbedder(
        name=name,
        path=target,
        identity=identity,
        steps=len(losses),
        losses=losses,
        seconds=seconds,
        pairs=used,
        tokens=tokens,
        pairs_per_second=examples / seconds if seconds > 0 else 0.0,
        params=params,
    )


def _check_pairs(pairs: Sequence[tuple[str, str]]) -> list[tuple[str, str]]:
    checked: list[tuple[str, str]] = []
    for i, pair in enumerate(pairs):
        if (
            not isinstance(pair, (tuple, list))
            or len(pair) != 2
            or not all(isinstance(t, str) and t.strip() for t in pair)
        ):
            raise InvalidInputError(
                f"fine-tuning pair {i} is {pair!r}, not a (query, passage) pair of non-empty texts",
                hint="give a sequence of (query text, relevant passage text) tuples",
            )
        checked.append((pair[0], pair[1]))
    return checked


def _check_params(epochs: int, batch_size: int, learning_rate: float) -> None:
    if not isinstance(epochs, int) or epochs < 1:
        raise InvalidInputError(f"epochs must be a positive integer, not {epochs!r}")
    if not isinstance(batch_size, int) or batch_size < 2:
        raise InvalidInputError(
            f"batch_size must be an integer of at least 2, not {batch_size!r}",
            hint="each query's negatives are the other passages of its batch",
        )
    if not (isinstance(learning_rate, (int, float)) and math.isfinite(learning_rate) and learning_rate > 0):
        raise InvalidInputError(f"learning_rate must be a positive number, not {learning_rate!r}")


def _target(name: str, settings: Settings, overwrite: bool) -> Path:
    if not isinstance(name, str) or not local.NAME_PATTERN.match(name):
        raise InvalidInputError(
            f"{name!r} is not a valid embedder name",
            hint="use letters, digits, '.', '_' and '-', starting with a letter or digit",
        )
    if name.casefold() == local.DEFAULT_MODEL.casefold():
        raise InvalidInputError(
            f"{name!r} is the packaged model's name", hint="give the fine-tuned model a name of its own"
        )
    root = local.embedders_folder(settings)
    if root is None:
        raise ConfigError(
            "fine-tuned embedders are saved in a honed workspace, and there is none here",
            hint="run `honed init` in your project folder or set HONED_HOME",
        )
    target = root / name
    if target.exists() and not overwrite:
        raise InvalidInputError(
            f"an embedder named {name!r} already exists at {target}",
            hint="choose another name, or pass overwrite=True to replace it",
        )
    return target


def _base_model(base: str, settings: Settings) -> tuple[str, Path, str]:
    """(reference, folder, identity) of the model to start from: a local model only."""
    from honed.rag.index.embedders.registry import default_registry

    ref = default_registry().resolve(base, settings)
    if ref.config.provider != "local":
        raise InvalidInputError(
            f"cannot fine-tune {base!r}: only local sentence-transformers models can be trained here",
            hint=f"start from local/{local.DEFAULT_MODEL} or a local/NAME model",
        )
    if ref.model.casefold() == local.DEFAULT_MODEL.casefold():
        return f"local/{local.DEFAULT_MODEL}", local.packaged_folder(), f"local:{local.DEFAULT_MODEL}"
    label, folder = local.find_model(ref.model, settings)
    return f"local/{ref.model}", folder, local.folder_identity(label, local.fingerprint(folder))


def _batches(pairs: list[tuple[str, str]], batch_size: int, rng: random.Random) -> list[list[int]]:
    """One epoch's batches of pair indices, shuffled, with no query or passage text twice in a batch.

    A pair that would repeat a text waits for a later batch; batches left with one pair (all its
    companions conflicted) are dropped, since a lone pair has no negatives to learn from."""
    remaining = list(range(len(pairs)))
    rng.shuffle(remaining)
    batches: list[list[int]] = []
    while remaining:
        batch: list[int] = []
        seen: set[str] = set()
        later: list[int] = []
        for i in remaining:
            query, passage = pairs[i]
            if len(batch) < batch_size and "q:" + query not in seen and "p:" + passage not in seen:
                batch.append(i)
                seen.update(("q:" + query, "p:" + passage))
            else:
                later.append(i)
        if len(batch) > 1:
            batches.append(batch)
        remaining = later
    return batches


def _save(model: Any, manifest: dict[str, Any], target: Path) -> None:
    """Write the model next to `target`, then swap it in, so a failed save leaves the old model intact."""
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = target.with_name(f".{target.name}.saving")
    old = target.with_name(f".{target.name}.old")
    for leftover in (staging, old):
        shutil.rmtree(leftover, ignore_errors=True)
    try:
        model.save(str(staging), create_model_card=False)
        (staging / local.MANIFEST).write_text(json.dumps(manifest, indent=2) + "\n", encoding="utf-8")
        if target.exists():
            target.rename(old)
        staging.rename(target)
    except OSError as exc:
        raise ConfigError(
            f"cannot save the embedder to {target}: {exc.strerror or exc}",
            hint="check that the workspace's .honed folder is writable and has room (~90 MB)",
        ) from None
    finally:
        shutil.rmtree(staging, ignore_errors=True)
        shutil.rmtree(old, ignore_errors=True)
