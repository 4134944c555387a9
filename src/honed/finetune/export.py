"""Dataset cases -> chat fine-tuning examples, written as OpenAI JSONL or a Hugging Face dataset.

Two modes. `full` trains on exactly what the model saw in production: the logged prompt messages (system
instructions, few-shot examples, the question) and then the reference as the assistant reply. It teaches
behaviour while keeping the long prompt. `input_output` keeps only the input and the reference (plus an
optional short system line): the fine-tuned model learns the task from the examples themselves, so it
can be called *without* the long prompt, which is where fine-tuning saves tokens, latency and cost.

Files are checked against OpenAI's format rules before anything is written, and written to a temporary
name that is renamed into place, so a failed export never leaves a half-written file behind.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from honed.datasets.case import Case
from honed.errors import InvalidInputError
from honed.finetune.chat_format import (
    MAX_TOKENS,
    MIN_EXAMPLES,
    count_example_tokens,
    require_chat_examples,
)
from honed.logs.dedupe import input_text, value_text

if TYPE_CHECKING:
    from datasets import Dataset, DatasetDict
    from honed.prompts.spec import Prompt

Mode = Literal["full", "input_output"]
MODES: tuple[str, ...] = ("full", "input_output")
_MESSAGE_KEYS = ("role", "content", "name", "tool_calls", "tool_call_id")


@dataclass(frozen=True, slots=True)
class ExportResult:
    """What an export wrote: where, how many examples (per split for a Hugging Face DatasetDict), and
    their tokens (o200k_base, OpenAI's chat accounting)."""

    path: Path
    format: str
    examples: int
    tokens: int
    splits: dict[str, int] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "path": str(self.path)}


def chat_examples(
    cases: Sequence[Case],
    *,
    mode: Mode = "full",
    system: str | None = None,
    template: str | None = None,
    prompt: Prompt | None = None,
) -> list[dict[str, Any]]:
    """One `{"messages": [...]}` example per case, ending with the case's reference as the assistant reply.

    `full`: the case's logged messages (`metadata.messages`), or `prompt` rendered with its inputs for a
    case that has none; `system` replaces the leading system message when given. `input_output`: an
    optional `system` line, the input as the user message (one input: its text; several: `name: value`
    lines; or `template`, a Jinja template over the inputs), and the reference."""
    if mode not in MODES:
        raise InvalidInputError(f"unknown export mode {mode!r}", hint="use full or input_output")
    if template is not None and mode != "input_output":
        raise InvalidInputError(
            "a template only applies to the input_output mode", hint="add --mode input-output"
        )
    return [_example(case, mode, system, template, prompt) for case in cases]


def _example(
    case: Case, mode: Mode, system: str | None, template: str | None, prompt: Prompt | None
) -> dict[str, Any]:
    if case.reference is None or (isinstance(case.reference, str) and not case.reference.strip()):
        raise InvalidInputError(
            f"case {case.id!r} has no reference to train on",
            hint="give every case a reference (the target reply)",
        )
    reply = {"role": "assistant", "content": value_text(case.reference)}
    if mode == "input_output":
        lead = [{"role": "system", "content": system}] if system else []
        if template is not None:
            from honed.prompts.template import render

            user = render(template, case.inputs, where=f"export template (case {case.id!r})")
        else:
            user = input_text(case.inputs)
        return {"messages": [*lead, {"role": "user", "content": user}, reply]}
    logged = case.metadata.get("messages")
    if logged:
        messages = [_message(m) for m in logged]
    elif prompt is not None:
        messages = [dict(m) for m in prompt.render(case.inputs)]
    else:
        raise InvalidInputError(
            f"case {case.id!r} has no logged prompt messages to export in full mode",
            hint="pass the prompt it was made with (--prompt NAME), or use --mode input-output",
        )
    if system is not None:
        messages = [m for m in messages if m.get("role") != "system"]
        messages.insert(0, {"role": "system", "content": system})
    return {"messages": [*messages, reply]}


def _message(raw: Any) -> dict[str, Any]:
    if not isinstance(raw, Mapping):
        raise InvalidInputError(f"a logged message is {type(raw).__name__}, not an object")
    out = {k: raw[k] for k in _MESSAGE_KEYS if k in raw and raw[k] is not None}
    # OpenAI's newer `developer` role is the system role under another name; the format knows `system`.
    if out.get("role") == "developer":
        out["role"] = "system"
    content = out.get("content")
    if isinstance(content, list) and all(isinstance(p, Mapping) and p.get("type") == "text" for p in content):
        out["content"] = "\n".join(str(p.get("text", "")) for p in content)
    return out


def export_openai_jsonl(
    examples: Sequence[Mapping[str, Any]],
    path: Path,
    *,
    max_tokens: int = MAX_TOKENS,
    min_examples: int = MIN_EXAMPLES,
) -> ExportResult:
    """Write `examples` as OpenAI chat fine-tuning JSONL, after checking every rule (InvalidInputError
    names the line and the rule, and nothing is written)."""
    require_chat_examples(examples, max_tokens=max_tokens, min_examples=min_examples)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    try:
        with tmp.open("w", encoding="utf-8", newline="\n") as handle:
            for example in examples:
                handle.write(json.dumps(example, ensure_ascii=False) + "\n")
        tmp.replace(path)
    finally:
        tmp.unlink(missing_ok=True)
    tokens = sum(count_example_tokens(e) for e in examples)
    return ExportResult(path, "openai", len(examples), tokens)


def export_hf(
    items: Sequence[Case] | Sequence[Mapping[str, Any]],
    path: Path,
    *,
    split: str | None = None,
    mode: Mode = "full",
    system: str | None = None,
    template: str | None = None,
    prompt: Prompt | None = None,
) -> tuple[Dataset | DatasetDict, ExportResult]:
    """Save a Hugging Face dataset (columns `messages`, `id`, `split`) with `save_to_disk` at `path`.

    `items` are cases (turned into examples as `chat_examples` does) or examples that may carry their
    own `id` and `split`. With `split`, only that split's rows are saved, as one Dataset; without it,
    rows that have splits are saved as a DatasetDict keyed by split (a Dataset if none has one).
    `datasets.load_from_disk(path)` reads it back. Replaces an earlier saved dataset at `path`, never
    any other folder."""
    rows = _rows(items, mode=mode, system=system, template=template, prompt=prompt)
    if split is not None:
        rows = [r for r in rows if r["split"] == split]
        if not rows:
            raise InvalidInputError(f"no rows in split {split!r} to export", hint="check --split")
    if not rows:
        raise InvalidInputError("nothing to export: no rows", hint="export a dataset with cases")
    _check_target(path)
    with _quiet_datasets():
        return _save_hf(rows, path, split)


@contextlib.contextmanager
def _quiet_datasets() -> Iterator[None]:
    """`datasets` draws a tqdm bar per save (a 250-character line redrawn with carriage returns, noise in
    a terminal and garbage in a log) for a save that takes a moment: off while honed saves, then as before."""
    import datasets

    if datasets.are_progress_bars_disabled():
        yield
        return
    datasets.disable_progress_bars()
    try:
        yield
    finally:
        datasets.enable_progress_bars()


def _save_hf(
    rows: list[dict[str, Any]], path: Path, split: str | None
) -> tuple[Dataset | DatasetDict, ExportResult]:
    from datasets import Dataset, DatasetDict

    names = sorted({r["split"] for r in rows if r["split"] is not None})
    data: Dataset | DatasetDict
    if split is None and names:
        if any(r["split"] is None for r in rows):
            raise InvalidInputError(
                "some rows have a split and some do not",
                hint="export one split with --split, or split all rows",
            )
        data = DatasetDict(
            {name: Dataset.from_list([r for r in rows if r["split"] == name]) for name in names}
        )
        counts = {name: len(data[name]) for name in names}
    else:
        data = Dataset.from_list(rows)
        counts = {split: len(rows)} if split is not None else {}
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    old = path.with_name(f".{path.name}.old-{os.getpid()}")
    try:
        data.save_to_disk(str(tmp))
        if path.exists():
            path.rename(old)
        tmp.rename(path)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
        shutil.rmtree(old, ignore_errors=True)
    tokens = sum(count_example_tokens(r) for r in rows)
    return data, ExportResult(path, "hf", len(rows), tokens, counts)


def _rows(
    items: Sequence[Case] | Sequence[Mapping[str, Any]],
    *,
    mode: Mode,
    system: str | None,
    template: str | None,
    prompt: Prompt | None,
) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []
    for n, item in enumerate(items, 1):
        if isinstance(item, Case):
            example = _example(item, mode, system, template, prompt)
            rows.append({"id": item.id, "split": item.split, "messages": example["messages"]})
        elif isinstance(item, Mapping) and isinstance(item.get("messages"), list):
            rows.append(
                {
                    "id": str(item.get("id", n)),
                    "split": item.get("split"),
                    "messages": [_message(m) for m in item["messages"]],
                }
            )
        else:
            raise InvalidInputError(f"example {n} has no `messages` list", hint="give cases or chat examples")
    return rows


#: Names that say "a file": `save_to_disk` would make a folder of that name, which no reader expects.
_FILE_SUFFIXES = frozenset({".json", ".jsonl", ".parquet", ".csv"})


def _check_target(path: Path) -> None:
    if path.suffix.lower() in _FILE_SUFFIXES:
        raise InvalidInputError(
            f"{path} is a file name, but a Hugging Face dataset is saved as a folder",
            hint=f"give a folder name, e.g. --out {path.with_suffix('')} (--format openai writes JSONL)",
        )
    if not path.exists():
        return
    saved = (path / "dataset_info.json").exists() or (path / "dataset_dict.json").exists()
    if not path.is_dir() or not saved:
        raise InvalidInputError(
            f"{path} exists and is not a saved dataset",
            hint="choose a new folder for --out; honed won't replace it",
        )
