"""`honed finetune create|list|show|cancel|resume|wait`: formatting only; the work is in `honed.finetune`."""

from __future__ import annotations

import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer

from honed.cli.common import JsonOption, console, fits_whole, open_honed, print_json, print_table
from honed.errors import InvalidInputError

if TYPE_CHECKING:
    from honed.api import Honed
    from honed.finetune.backend import ChatExample
    from honed.finetune.jobs import FinetuneJob

app = typer.Typer(
    help="Fine-tuning jobs: LoRA on the local model or OpenAI's API. Jobs run in the background.",
    no_args_is_help=True,
)

LOCAL_MODEL = "local/smollm2-135m-instruct"
JobArgument = typer.Argument(..., help="The job id or a unique prefix of it (see `honed finetune list`).")


@app.command("create")
def create(
    file: Path | None = typer.Option(None, "--file", help="Training data: OpenAI chat fine-tuning JSONL."),
    dataset: str | None = typer.Option(None, "--dataset", help="Training data: a dataset, NAME[@VERSION]."),
    split: str = typer.Option("train", "--split", help="The dataset split to train on."),
    validation_split: str | None = typer.Option(
        None, "--validation-split", help="A dataset split for validation loss and early stopping (e.g. dev)."
    ),
    validation_file: Path | None = typer.Option(None, "--validation-file", help="Validation data: JSONL."),
    mode: str = typer.Option(
        "full", "--mode", help="Dataset cases as examples: full (logged messages) or input-output."
    ),
    system: str | None = typer.Option(None, "--system", help="The system message of dataset examples."),
    backend: str = typer.Option("local", "--backend", help="local (LoRA on this machine) or openai."),
    model: str | None = typer.Option(None, "--model", help=f"The base model (local: {LOCAL_MODEL})."),
    epochs: int | None = typer.Option(None, "--epochs", help="Passes over the training data."),
    batch_size: int | None = typer.Option(None, "--batch-size", help="Examples per training step."),
    learning_rate: float | None = typer.Option(None, "--learning-rate", help="Local: peak learning rate."),
    lora_r: int | None = typer.Option(None, "--lora-r", help="Local: LoRA rank."),
    lora_alpha: int | None = typer.Option(None, "--lora-alpha", help="Local: LoRA alpha."),
    max_seq_len: int | None = typer.Option(None, "--max-seq-len", help="Local: tokens kept per example."),
    eval_every: int | None = typer.Option(None, "--eval-every", help="Local: steps between validations."),
    checkpoint_every: int | None = typer.Option(
        None, "--checkpoint-every", help="Local: steps between checkpoints."
    ),
    patience: int | None = typer.Option(
        None, "--patience", help="Local: validations without improvement before stopping early."
    ),
    seed: int | None = typer.Option(None, "--seed", help="Seed for initialisation and data order."),
    max_steps: int | None = typer.Option(None, "--max-steps", help="Local: stop after this many steps."),
    hyperparameter: list[str] = typer.Option(
        [], "--hyperparameter", "-H", help="Any backend hyperparameter as KEY=VALUE (repeatable)."
    ),
    suffix: str | None = typer.Option(None, "--suffix", help="OpenAI: a suffix for the model's name."),
    wait: bool = typer.Option(False, "--wait", help="Wait for the job to finish, printing its progress."),
    json_out: bool = JsonOption,
) -> None:
    """Create a fine-tuning job and start it in the background.

    Examples:
      honed finetune create --file train.jsonl --validation-file dev.jsonl --wait
      honed finetune create --dataset support@v3 --validation-split dev --mode input-output --system "Answer."
    """
    from honed.finetune.backend import FinetuneSpec
    from honed.finetune.jobs import create_job

    if (file is None) == (dataset is None):
        raise InvalidInputError("give the training data", hint="use exactly one of --file or --dataset")
    if validation_split is not None and validation_file is not None:
        raise InvalidInputError(
            "give one validation source", hint="use --validation-split or --validation-file, not both"
        )
    if validation_split is not None and dataset is None:
        raise InvalidInputError("--validation-split needs --dataset", hint="or use --validation-file")
    hp: dict[str, Any] = {
        name: value
        for name, value in (
            ("epochs", epochs),
            ("batch_size", batch_size),
            ("learning_rate", learning_rate),
            ("lora_r", lora_r),
            ("lora_alpha", lora_alpha),
            ("max_seq_len", max_seq_len),
            ("eval_every", eval_every),
            ("checkpoint_every", checkpoint_every),
            ("patience", patience),
            ("seed", seed),
            ("max_steps", max_steps),
        )
        if value is not None
    }
    if backend == "openai" and "epochs" in hp:
        hp["n_epochs"] = hp.pop("epochs")  # the API's name for it
    hp.update(_parse_hyperparameters(hyperparameter))
    if model is None:
        if backend != "local":
            raise InvalidInputError(
                f"the {backend} backend needs a base model", hint="add --model ENDPOINT/MODEL"
            )
        model = LOCAL_MODEL
    with open_honed() as h:
        training, validation, source = _examples(
            h, file, dataset, split, validation_split, validation_file, mode, system
        )
        spec = FinetuneSpec(
            backend=backend, base_model=model, training="", hyperparameters=hp, suffix=suffix, source=source
        )
        job = create_job(h, spec, training, validation)
        said = f"created fine-tuning job {job.id} ({backend}, {model}); worker pid {job.pid}"
        _started(job, said, wait=wait, json_out=json_out)


@app.command("list")
def list_(
    limit: int | None = typer.Option(None, "--limit", "-n", help="Show only the newest N jobs."),
    json_out: bool = JsonOption,
) -> None:
    """List fine-tuning jobs, newest first."""
    from honed.finetune.jobs import list_jobs

    with open_honed() as h:
        jobs = list_jobs(h, limit=limit)
        if json_out:
            print_json([j.summary() for j in jobs])
            return
        if not jobs:
            console.print("no fine-tuning jobs yet: create one with `honed finetune create`")
            return
        this_year = datetime.now(UTC).year
        stamp = "%m-%d %H:%M" if all(j.created_at.year == this_year for j in jobs) else "%Y-%m-%d %H:%M"
        rows = []
        for j in jobs:
            curve = j.summary()["curve"]
            rows.append(
                [
                    j.id,
                    j.status,
                    j.backend,
                    j.model or j.spec.base_model,
                    curve["steps"] or "",
                    _num(curve.get("last_loss")),
                    j.created_at.strftime(stamp),
                ]
            )
        columns = ["id", "status", "backend", "model", "steps", "loss", "created"]
        # Model names are copied into other commands, so never broken over lines: when the table cannot
        # hold them whole they go under it, one per line, after the job that made them.
        whole = {"id", "model"}
        if fits_whole(columns, rows, whole=whole):
            print_table(None, columns, rows, whole=whole)
            return
        columns.remove("model")
        print_table(None, columns, [row[:3] + row[4:] for row in rows], whole=whole)
        made = [(j.id, j.model) for j in jobs if j.model]
        if made:
            console.print("models (call them by these names):", highlight=False)
            for job_id, name in made:
                console.print(f"  {job_id}  {name}", markup=False, highlight=False, soft_wrap=True)


@app.command("show")
def show(job_id: str = JobArgument, json_out: bool = JsonOption) -> None:
    """Show a job: status, model, and a summary of its loss curve (`--json` adds every event)."""
    with _open_job(job_id) as job:
        summary = job.summary()
        if json_out:
            print_json({**summary, "events": job.events()})
            return
        curve = summary["curve"]
        rows: list[tuple[str, Any]] = [
            ("status", job.status),
            ("backend", job.backend),
            ("base model", job.spec.base_model),
            ("model", job.model or ""),
            ("steps", curve["steps"]),
            ("loss first / last / best", " / ".join(_num(curve.get(k)) for k in _LOSSES)),
        ]
        if "best_val_loss" in curve:
            rows.append(
                (
                    "val loss last / best (step)",
                    f"{_num(curve['last_val_loss'])} / {_num(curve['best_val_loss'])} "
                    f"({curve['best_val_step']})",
                )
            )
        if job.error:
            rows.append(("error", job.error))
        if job.spec.source:
            rows.append(("data", ", ".join(f"{k}={v}" for k, v in job.spec.source.items())))
        rows.append(("created", job.created_at.isoformat(timespec="seconds")))
        print_table(f"fine-tuning job {job.id}", ["field", "value"], rows)
        if job.status == "interrupted":
            console.print(f"its worker stopped: continue it with `honed finetune resume {job.id}`")


@app.command("cancel")
def cancel(job_id: str = JobArgument, json_out: bool = JsonOption) -> None:
    """Cancel a job: a running worker stops at its next step; a remote job is cancelled remotely."""
    with _open_job(job_id) as job:
        asked = job.cancel()
        if json_out:
            print_json({"id": job.id, "status": job.status, "cancel_requested": asked})
        elif not asked:
            console.print(f"job {job.id} had already finished ({job.status})")
        else:
            console.print(f"job {job.id}: cancel requested ({job.status})")


@app.command("resume")
def resume(
    job_id: str = JobArgument,
    wait: bool = typer.Option(False, "--wait", help="Wait for the job to finish."),
    json_out: bool = JsonOption,
) -> None:
    """Start an interrupted (or failed) job again; it continues from its last checkpoint."""
    with _open_job(job_id) as stopped:
        job = stopped.resume()
        _started(job, f"resumed job {job.id}; worker pid {job.pid}", wait=wait, json_out=json_out)


@app.command("wait")
def wait_(
    job_id: str = JobArgument,
    timeout: float | None = typer.Option(None, "--timeout", help="Give up after this many seconds."),
    json_out: bool = JsonOption,
) -> None:
    """Wait for a job, printing its progress; exits non-zero unless it succeeded."""
    with _open_job(job_id) as job:
        _follow(job, quiet=json_out, timeout=timeout)
        if json_out:
            print_json(job.refresh().summary())
        model = job.result(timeout=0)
        if not json_out:
            console.print(f"job {job.id} succeeded: {model}")


# -- helpers ------------------------------------------------------------------------------------------------


@contextmanager
def _open_job(job_id: str) -> Iterator[FinetuneJob]:
    """The job `job_id` (or a unique prefix), with its workspace open while the block runs."""
    from honed.finetune.jobs import get_job

    with open_honed() as h:
        yield get_job(h, job_id)


def _started(job: FinetuneJob, said: str, *, wait: bool, json_out: bool) -> None:
    """What `create` and `resume` do once a worker runs the job: say `said`, follow it with --wait, print
    its summary with --json."""
    if not json_out:
        console.print(said)
    if wait:
        _follow(job, quiet=json_out)
    if json_out:
        print_json(job.refresh().summary())
    if wait:
        job.result()  # a failed or cancelled job is an error (and a non-zero exit)


_LOSSES = ("first_loss", "last_loss", "best_loss")


def _num(value: Any) -> str:
    return f"{value:.4f}" if isinstance(value, float) else ("" if value is None else str(value))


def _parse_hyperparameters(items: list[str]) -> dict[str, Any]:
    import json

    out: dict[str, Any] = {}
    for item in items:
        key, eq, raw = item.partition("=")
        if not eq or not key.strip():
            raise InvalidInputError(f"--hyperparameter {item!r} is not KEY=VALUE", hint="e.g. -H seed=3")
        try:
            out[key.strip()] = json.loads(raw)
        except json.JSONDecodeError:
            out[key.strip()] = raw
    return out


def _examples(
    h: Honed,
    file: Path | None,
    dataset: str | None,
    split: str,
    validation_split: str | None,
    validation_file: Path | None,
    mode: str,
    system: str | None,
) -> tuple[list[ChatExample], list[ChatExample] | None, dict[str, Any]]:
    from honed.finetune.jobs import read_chat_jsonl

    validation = read_chat_jsonl(validation_file) if validation_file is not None else None
    if file is not None:
        source: dict[str, Any] = {"file": str(file)}
        if validation_file is not None:
            source["validation_file"] = str(validation_file)
        return read_chat_jsonl(file), validation, source
    assert dataset is not None
    from honed.datasets import get_dataset
    from honed.finetune.export import chat_examples

    version = get_dataset(h.store, dataset)
    export_mode: Any = mode.replace("-", "_")
    training = chat_examples(version.split(split), mode=export_mode, system=system)
    if validation_split is not None:
        validation = chat_examples(version.split(validation_split), mode=export_mode, system=system)
    source = {"dataset": version.ref, "split": split, "mode": export_mode}
    if validation_split is not None:
        source["validation_split"] = validation_split
    if system is not None:
        source["system"] = system
    return training, validation, source


def _follow(job: FinetuneJob, *, quiet: bool, timeout: float | None = None) -> None:
    """Print the job's new events until it is done (on stderr, so `--json` output stays clean)."""
    deadline = None if timeout is None else time.monotonic() + timeout
    seq = 0
    while True:
        finished = job.done()
        for event in job.events(after_seq=seq):
            seq = event["seq"]
            if not quiet:
                sys.stderr.write(_event_line(event) + "\n")
        if finished:
            return
        if deadline is not None and time.monotonic() >= deadline:
            return
        time.sleep(1.0)


def _event_line(event: dict[str, Any]) -> str:
    data = event.get("data") or {}
    if event["kind"] == "metric":
        values = ", ".join(f"{k} {_num(v)}" for k, v in data.items() if k != "step")
        return f"step {data.get('step')}: {values}"
    return f"[{event['kind']}] {event.get('message') or ''}"
