"""The `local` training backend: LoRA on the embedded SmolLM2-135M-Instruct with peft, on the CPU.

A plain torch loop (no `Trainer`: it is slow to import and hides the loop that must be checkpointed).
The defaults are the recipe measured in ../shared/OFFLINE.md: r=16, alpha=32, every linear projection,
lr 1e-3 decaying linearly, batch 8, 2 epochs, loss on the assistant's tokens only. Examples are
right-padded with the end-of-turn token and padding is masked out of the labels, so the model learns to
stop. The chat template is applied as at inference: an example without a system message gets the
template's own default one, exactly as a request without one will.

Resumable: every `checkpoint_every` steps the adapter, optimizer, scheduler, step, RNG state and the
epoch's data order are written to `<workdir>/checkpoints/step-N` (a temporary folder renamed into place,
so a kill never leaves a half-written checkpoint). The data order of an epoch is a function of the seed
and the epoch, so a resumed run takes exactly the batches the uninterrupted run would have.

With validation examples, the validation loss is computed every `eval_every` steps; the best adapter so
far is kept, and training stops early after `patience` evaluations without improvement. The adapter
published at the end (`<workspace>/.honed/adapters/ft-<job id>`) is the best one.
"""

from __future__ import annotations

import contextlib
import math
import os
import random
import shutil
import tempfile
import time
import warnings
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any

from honed.config import Settings
from honed.errors import FinetuneCancelled, FinetuneError, InvalidInputError
from honed.finetune.backend import ChatExample, FinetuneSpec, JobContext, TrainResult
from honed.finetune.jobs import example_problem
from honed.models.local import weights
from honed.models.local.adapters import ADAPTERS_FOLDER

PROVIDER = "local"
BASE_MODELS = frozenset({weights.BASE_MODEL, f"{PROVIDER}/{weights.BASE_MODEL}"})
CHECKPOINTS = "checkpoints"
BEST = "best"
_KEEP_CHECKPOINTS = 2
IGNORE = -100  # the label value torch's cross-entropy skips


@dataclass(frozen=True, slots=True)
class LocalHyperparameters:
    """The local backend's settings; every one can be given in `FinetuneSpec.hyperparameters`."""

    epochs: int = 2
    batch_size: int = 8
    learning_rate: float = 1e-3
    lora_r: int = 16
    lora_alpha: int = 32
    lora_dropout: float = 0.0
    max_seq_len: int = 512
    eval_every: int | None = None  # steps between validation losses; default: once per epoch
    checkpoint_every: int = 10
    patience: int | None = 3  # evaluations without improvement before stopping; None: never stop early
    seed: int = 0
    max_steps: int | None = None

    @classmethod
    def from_dict(cls, raw: dict[str, Any]) -> LocalHyperparameters:
        """Validate user-given hyperparameters: unknown names and wrong types are InvalidInputError."""
        known = {f.name: f for f in fields(cls)}
        unknown = sorted(set(raw) - set(known))
        if unknown:
            raise InvalidInputError(
                f"the local backend has no hyperparameter {', '.join(map(repr, unknown))}",
                hint=f"use: {', '.join(known)}",
            )
        values: dict[str, Any] = {}
        for name, value in raw.items():
            default = getattr(cls(), name)
            is_float = name in ("learning_rate", "lora_dropout")
            ok = (
                (value is None and default is None and name != "seed")
                or (is_float and isinstance(value, int | float) and not isinstance(value, bool))
                or (not is_float and isinstance(value, int) and not isinstance(value, bool))
            )
            if not ok:
                kind = "a number" if is_float else "an integer"
                raise InvalidInputError(
                    f"hyperparameter {name} must be {kind}, got {value!r}",
                    hint="see `honed finetune create --help`",
                )
            values[name] = float(value) if is_float else value
        hp = cls(**values)
        positive = ("epochs", "batch_size", "lora_r", "lora_alpha", "max_seq_len", "checkpoint_every")
        for name in (*positive, "eval_every", "patience", "max_steps"):
            value = getattr(hp, name)
            if value is not None and value < 1:
                raise InvalidInputError(f"hyperparameter {name} must be at least 1, got {value}")
        if hp.learning_rate <= 0 or not 0 <= hp.lora_dropout < 1:
            raise InvalidInputError(
                "learning_rate must be positive and lora_dropout in [0, 1)", hint="e.g. learning_rate=1e-3"
            )
        return hp


@dataclass(slots=True)
class _Progress:
    """What a checkpoint carries besides the tensors."""

    step: int = 0
    best_val: float | None = None
    best_step: int | None = None
    bad_evals: int = 0
    early_stopped: bool = False
    tokens: int = 0
    last_loss: float | None = None


class LocalBackend:
    """LoRA fine-tuning of the embedded model in the worker process."""

    name = PROVIDER

    def probe(self, settings: Settings, base_model: str) -> None:
        _require_base(base_model)

    def check(
        self, spec: FinetuneSpec, training: list[ChatExample], validation: list[ChatExample] | None
    ) -> None:
        _require_base(spec.base_model)
        LocalHyperparameters.from_dict(spec.hyperparameters)
        for what, examples in (("training", training), ("validation", validation or [])):
            for i, example in enumerate(examples, 1):
                problem = example_problem(example)
                if problem:
                    raise InvalidInputError(
                        f"{what} example {i}: {problem}", hint="examples use OpenAI's chat fine-tuning format"
                    )
        if not training:
            raise InvalidInputError("there are no training examples", hint="give at least one chat example")

    def cancel(self, ctx: JobContext) -> None:
        """Nothing to do: the training loop polls `ctx.cancel_requested()` at every step."""

    def run(self, ctx: JobContext) -> TrainResult:
        hp = LocalHyperparameters.from_dict(ctx.spec.hyperparameters)
        data_folder = ctx.settings.data_folder
        if data_folder is None:
            raise FinetuneError("the local backend needs a workspace", hint="run `honed init`")
        if ctx.settings.local.threads:
            import torch

            torch.set_num_threads(ctx.settings.local.threads)
        with quiet_peft():
            trainer = Trainer(ctx, hp)
            progress = trainer.train()
            name = f"ft-{ctx.job_id}"
            publish_adapter(trainer.final_adapter(), data_folder / ADAPTERS_FOLDER / name)
        metrics: dict[str, Any] = {
            **asdict(progress),
            "train_seconds": round(trainer.train_seconds, 3),
            "tokens_per_s": round(trainer.trained_tokens / trainer.train_seconds, 1)
            if trainer.train_seconds
            else None,
            "total_steps": trainer.total_steps,
            "resumed_from": trainer.resumed_from,
        }
        ctx.event(f"adapter published as {name}", kind="message", data={"adapter": name})
        return TrainResult(model=f"{PROVIDER}/{weights.BASE_MODEL}+{name}", metrics=metrics)


@contextlib.contextmanager
def quiet_peft() -> Iterator[None]:
    """peft 0.21 calls a transformers property that warns it is deprecated; nothing for us to act on."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*is_gradient_checkpointing", category=FutureWarning)
        yield


# -- data -------------------------------------------------------------------------------------------------


def encode_example(tokenizer: Any, example: ChatExample, max_seq_len: int) -> tuple[list[int], list[int]]:
    """Token ids and labels: the prompt (chat template up to the assistant's turn) is masked out, the
    assistant's reply and its end-of-turn token are learned. Truncated to `max_seq_len`."""
    messages = example["messages"]
    text = tokenizer.apply_chat_template(messages[:-1], tokenize=False, add_generation_prompt=True)
    prompt = list(tokenizer.encode(text, add_special_tokens=False))
    target = [*tokenizer.encode(messages[-1]["content"], add_special_tokens=False), tokenizer.eos_token_id]
    ids = (prompt + target)[:max_seq_len]
    labels = ([IGNORE] * len(prompt) + target)[:max_seq_len]
    return ids, labels


def collate(rows: Sequence[tuple[list[int], list[int]]], pad_id: int) -> dict[str, Any]:
    """A right-padded batch: `input_ids`, `attention_mask`, and `labels` with padding masked."""
    import torch

    width = max(len(ids) for ids, _ in rows)
    ids = torch.full((len(rows), width), pad_id, dtype=torch.long)
    mask = torch.zeros((len(rows), width), dtype=torch.long)
    labels = torch.full((len(rows), width), IGNORE, dtype=torch.long)
    for i, (row_ids, row_labels) in enumerate(rows):
        n = len(row_ids)
        ids[i, :n] = torch.tensor(row_ids)
        mask[i, :n] = 1
        labels[i, :n] = torch.tensor(row_labels)
    return {"input_ids": ids, "attention_mask": mask, "labels": labels}


def epoch_order(seed: int, epoch: int, n: int) -> list[int]:
    """The order of the examples in `epoch`: fixed by the seed, so a resumed run repeats it."""
    order = list(range(n))
    random.Random(seed * 1_000_003 + epoch).shuffle(order)
    return order


def batch_indices(seed: int, step: int, n: int, batch_size: int) -> list[int]:
    """The examples of training step `step` (0-based)."""
    per_epoch = math.ceil(n / batch_size)
    epoch, index = divmod(step, per_epoch)
    return epoch_order(seed, epoch, n)[index * batch_size : (index + 1) * batch_size]


def lora_config(hp: LocalHyperparameters) -> Any:
    from peft import LoraConfig

    return LoraConfig(
        r=hp.lora_r,
        lora_alpha=hp.lora_alpha,
        lora_dropout=hp.lora_dropout,
        target_modules="all-linear",
        task_type="CAUSAL_LM",
    )


# -- the loop ---------------------------------------------------------------------------------------------


class Trainer:
    """One job's training: model, data, optimizer and checkpoints. Heavy imports happen here."""

    def __init__(self, ctx: JobContext, hp: LocalHyperparameters) -> None:
        self.ctx = ctx
        self.hp = hp
        self.workdir = ctx.workdir
        self.train_seconds = 0.0
        self.trained_tokens = 0
        self.resumed_from = 0
        self.model: Any = None
        folder = weights.ensure_converted(ctx.settings.local.resolved_cache_dir())
        self.tokenizer = weights.load_tokenizer(folder)
        self.base = weights.load_model(folder)
        self.train_rows = [encode_example(self.tokenizer, e, hp.max_seq_len) for e in ctx.training_examples()]
        validation = ctx.validation_examples() or []
        self.val_rows = [encode_example(self.tokenizer, e, hp.max_seq_len) for e in validation]
        per_epoch = math.ceil(len(self.train_rows) / hp.batch_size)
        self.total_steps = hp.epochs * per_epoch
        if hp.max_steps is not None:
            self.total_steps = min(self.total_steps, hp.max_steps)
        self.eval_every = hp.eval_every or per_epoch

    def train(self) -> _Progress:
        import torch
        from peft import PeftModel, get_peft_model

        hp, ctx = self.hp, self.ctx
        latest = latest_checkpoint(self.workdir / CHECKPOINTS)
        torch.manual_seed(hp.seed)  # the LoRA weights' initialisation
        if latest is None:
            model = get_peft_model(self.base, lora_config(hp))
        else:
            model = PeftModel.from_pretrained(self.base, str(latest / "adapter"), is_trainable=True)
        params = [p for p in model.parameters() if p.requires_grad]
        optimizer = torch.optim.AdamW(params, lr=hp.learning_rate)
        total = self.total_steps
        scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda s: max(0.0, 1.0 - s / total))
        progress = _Progress()
        if latest is not None:
            state = torch.load(latest / "state.pt", weights_only=True)
            optimizer.load_state_dict(state["optimizer"])
            scheduler.load_state_dict(state["scheduler"])
            torch.set_rng_state(state["rng"])
            progress = _Progress(**state["progress"])
            self.resumed_from = progress.step
            ctx.event(
                f"resumed from the checkpoint at step {progress.step}",
                kind="checkpoint",
                data={"resume_step": progress.step, "path": str(latest)},
            )
        else:
            ctx.event(
                f"training {total} steps on {len(self.train_rows)} examples",
                data={"total_steps": total, "examples": len(self.train_rows), **asdict(hp)},
            )
        model.train()
        start = last = time.perf_counter()
        while progress.step < total and not progress.early_stopped:
            if ctx.cancel_requested():
                self.train_seconds += time.perf_counter() - start
                raise FinetuneCancelled(f"cancelled at step {progress.step} of {total}")
            idx = batch_indices(hp.seed, progress.step, len(self.train_rows), hp.batch_size)
            batch = collate([self.train_rows[i] for i in idx], self.tokenizer.eos_token_id)
            lr = float(scheduler.get_last_lr()[0])
            loss = model(**batch).loss
            loss.backward()
            optimizer.step()
            scheduler.step()
            optimizer.zero_grad(set_to_none=True)
            tokens = int(batch["attention_mask"].sum())
            progress.step += 1
            progress.tokens += tokens
            progress.last_loss = float(loss.detach())
            self.trained_tokens += tokens
            # seconds: since the previous step ended, so a checkpoint's cost shows in the step after it
            now = time.perf_counter()
            ctx.metric(progress.step, loss=progress.last_loss, lr=lr, tokens=tokens, seconds=now - last)
            last = now
            if self.val_rows and (progress.step % self.eval_every == 0 or progress.step == total):
                self._evaluate(model, progress)
            if progress.step % hp.checkpoint_every == 0 and progress.step < total:
                self._checkpoint(model, optimizer, scheduler, progress)
        self.train_seconds += time.perf_counter() - start
        self.model = model
        return progress

    def _evaluate(self, model: Any, progress: _Progress) -> None:
        import torch

        model.eval()
        total_loss, total_tokens = 0.0, 0
        with torch.no_grad():
            for i in range(0, len(self.val_rows), self.hp.batch_size):
                batch = collate(self.val_rows[i : i + self.hp.batch_size], self.tokenizer.eos_token_id)
                n = int((batch["labels"][:, 1:] != IGNORE).sum())  # the shifted targets the loss averages
                total_loss += float(model(**batch).loss) * n
                total_tokens += n
        model.train()
        val_loss = total_loss / max(total_tokens, 1)
        self.ctx.metric(progress.step, val_loss=val_loss)
        if progress.best_val is None or val_loss < progress.best_val:
            progress.best_val, progress.best_step, progress.bad_evals = val_loss, progress.step, 0
            atomic_save(model, self.workdir / BEST)
            return
        progress.bad_evals += 1
        if self.hp.patience is not None and progress.bad_evals >= self.hp.patience:
            progress.early_stopped = True
            self.ctx.event(
                f"early stop at step {progress.step}: no better validation loss for {progress.bad_evals} "
                f"evaluations; keeping step {progress.best_step}'s adapter",
                data={"early_stop_step": progress.step, "best_step": progress.best_step},
            )

    def _checkpoint(self, model: Any, optimizer: Any, scheduler: Any, progress: _Progress) -> None:
        import torch

        root = self.workdir / CHECKPOINTS
        root.mkdir(parents=True, exist_ok=True)
        final = root / f"step-{progress.step:08d}"
        tmp = Path(tempfile.mkdtemp(prefix=f".tmp-{final.name}-", dir=root))
        try:
            model.save_pretrained(str(tmp / "adapter"))
            epoch = progress.step // math.ceil(len(self.train_rows) / self.hp.batch_size)
            state = {
                "optimizer": optimizer.state_dict(),
                "scheduler": scheduler.state_dict(),
                "rng": torch.get_rng_state(),
                "progress": asdict(progress),
                "order": epoch_order(self.hp.seed, epoch, len(self.train_rows)),
            }
            torch.save(state, tmp / "state.pt")
            if final.exists():  # a resumed run re-reaching a step it had saved before
                shutil.rmtree(final)
            os.rename(tmp, final)
        finally:
            if tmp.exists():
                shutil.rmtree(tmp, ignore_errors=True)
        for old in sorted(_checkpoints(root))[:-_KEEP_CHECKPOINTS]:
            shutil.rmtree(old, ignore_errors=True)
        self.ctx.event(f"checkpoint at step {progress.step}", kind="checkpoint", data={"step": progress.step})

    def final_adapter(self) -> Path:
        """The folder of the adapter to publish: the best by validation loss, else the last one."""
        if self.val_rows and (self.workdir / BEST).is_dir():
            return self.workdir / BEST
        last = self.workdir / "final"
        atomic_save(self.model, last)
        return last


def _checkpoints(root: Path) -> list[Path]:
    if not root.is_dir():
        return []
    return [p for p in root.iterdir() if p.name.startswith("step-") and (p / "state.pt").is_file()]


def latest_checkpoint(root: Path) -> Path | None:
    """The newest complete checkpoint in `root`, if any."""
    found = sorted(_checkpoints(root))
    return found[-1] if found else None


def atomic_save(model: Any, folder: Path) -> None:
    """Save the model's adapter into `folder`, replacing what was there only once it is fully written."""
    folder.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".tmp-{folder.name}-", dir=folder.parent))
    try:
        model.save_pretrained(str(tmp))
        _replace(tmp, folder)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)


def publish_adapter(source: Path, target: Path) -> None:
    """Copy a trained adapter to where `local/...+NAME` finds it, atomically."""
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".tmp-{target.name}-", dir=target.parent))
    try:
        for f in source.iterdir():
            if f.is_file():
                shutil.copy2(f, tmp / f.name)
        tmp.chmod(0o755)
        _replace(tmp, target)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)


def _replace(tmp: Path, folder: Path) -> None:
    old: Path | None = None
    if folder.exists():
        old = folder.with_name(f".old-{folder.name}-{os.getpid()}")
        os.rename(folder, old)
    os.rename(tmp, folder)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)


def _require_base(base_model: str) -> None:
    if base_model not in BASE_MODELS:
        raise InvalidInputError(
            f"the local backend trains only {PROVIDER}/{weights.BASE_MODEL}, not {base_model!r}",
            hint=f"use --model {PROVIDER}/{weights.BASE_MODEL}, or --backend openai for API models",
        )
