"""Human review: a person labels model outputs on a scale; the labels become scores.

The loop (`review_loop`) is separate from the terminal: it takes callbacks to show an item, ask for a reply
and record a label, so it is tested with scripted replies and the CLI (`honed review`) only draws and reads.

Labels go to an append-only JSONL log, one record a line: `{"id", "label", "value", "scale", "reviewer",
"at"}`, and an undo appends `{"id", "undo": true, "at"}`. Nothing is ever rewritten, so an interrupted
session loses at most the label being typed, and a resumed one skips ids already labelled. `read_labels`
replays the log (the last word on an id wins). Storing labels in the database comes with the experiments
store; the log format is what that import will read.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from honed.errors import InvalidInputError
from honed.evals.evaluators.scale import Scale
from honed.userfiles import json_lines


@dataclass(frozen=True, slots=True)
class ReviewItem:
    """One output to label."""

    id: str
    output: str
    input: Any = None
    reference: Any = None


@dataclass(frozen=True, slots=True)
class Label:
    id: str
    label: str
    value: float
    scale: str
    reviewer: str | None = None
    at: str = ""

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "label": self.label,
            "value": self.value,
            "scale": self.scale,
            "reviewer": self.reviewer,
            "at": self.at,
        }


def _lines(path: Path) -> list[tuple[int, dict[str, Any]]]:
    out: list[tuple[int, dict[str, Any]]] = []
    for n, obj in json_lines(path, path.read_text(encoding="utf-8"), hint="one JSON object per line"):
        if not isinstance(obj, dict):
            raise InvalidInputError(f"{path}:{n}: expected a JSON object", hint="one JSON object per line")
        out.append((n, obj))
    return out


def read_review_items(path: Path) -> list[ReviewItem]:
    """Items from a JSONL file of `{"id", "input"?, "output", "reference"?}` (other keys are ignored)."""
    if not path.is_file():
        raise InvalidInputError(f"{path} does not exist", hint="give a JSONL file of outputs to review")
    items: list[ReviewItem] = []
    seen: set[str] = set()
    for n, obj in _lines(path):
        if "id" not in obj or not isinstance(obj.get("output"), str):
            raise InvalidInputError(
                f"{path}:{n}: each line needs an 'id' and a string 'output'",
                hint='e.g. {"id": "q1", "input": "...", "output": "...", "reference": "..."}',
            )
        item_id = str(obj["id"])
        if item_id in seen:
            raise InvalidInputError(f"{path}:{n}: duplicate id {item_id!r}", hint="ids must be unique")
        seen.add(item_id)
        items.append(ReviewItem(item_id, obj["output"], obj.get("input"), obj.get("reference")))
    return items


def read_labels(path: Path) -> dict[str, Label]:
    """The current labels in a label log (an absent file has none): later records and undos win."""
    labels: dict[str, Label] = {}
    if not path.exists():
        return labels
    for n, obj in _lines(path):
        try:
            if obj.get("undo"):
                labels.pop(str(obj["id"]), None)
                continue
            labels[str(obj["id"])] = Label(
                str(obj["id"]),
                str(obj["label"]),
                float(obj["value"]),
                str(obj["scale"]),
                obj.get("reviewer"),
                str(obj.get("at", "")),
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise InvalidInputError(
                f"{path}:{n}: not a label record ({exc})", hint="label logs are written by `honed review`"
            ) from None
    return labels


def append_record(path: Path, record: dict[str, Any]) -> None:
    """Append one record as one line, flushed, so a crash leaves every earlier line intact."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a", encoding="utf-8") as f:
        f.write(json.dumps(record, ensure_ascii=False) + "\n")
        f.flush()


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


@dataclass(frozen=True, slots=True)
class Progress:
    position: int  # 1-based among the items still to label when the session began
    total: int
    labelled: int  # in this session
    already: int  # labelled before this session


@dataclass
class ReviewSummary:
    labelled: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    undone: list[str] = field(default_factory=list)
    already: int = 0
    total: int = 0
    quit: bool = False

    @property
    def remaining(self) -> int:
        return self.total - self.already - len(self.labelled)


def help_text(scale: Scale) -> str:
    return f"label ({scale.keys_hint()}), s=skip, u=undo, q=quit"


def review_loop(
    items: Sequence[ReviewItem],
    scale: Scale,
    *,
    show: Callable[[ReviewItem, Progress], None],
    ask: Callable[[str], str],
    record: Callable[[dict[str, Any]], None],
    already: Collection[str] = (),
    reviewer: str | None = None,
    notify: Callable[[str], None] = lambda message: None,
    now: Callable[[], str] = _now,
) -> ReviewSummary:
    """Walk through the items not in `already`, asking for a label for each.

    Replies: a label on the scale, `s` skip (shown again next session), `u` undo the last label of this
    session (an undo record is written and that item is shown again), `q` quit. Anything else is
    explained via `notify` and asked again. `record` receives each label and undo record, in order.
    """
    pending = [item for item in items if item.id not in already]
    summary = ReviewSummary(already=len(items) - len(pending), total=len(items))
    history: list[int] = []  # indexes into `pending` labelled this session, for undo
    i = 0
    while i < len(pending):
        item = pending[i]
        show(item, Progress(i + 1, len(pending), len(summary.labelled), summary.already))
        while True:
            reply = ask(help_text(scale)).strip()
            key = reply.lower()
            if key in ("q", "quit"):
                summary.quit = True
                return summary
            if key in ("s", "skip"):
                if item.id not in summary.skipped:
                    summary.skipped.append(item.id)
                i += 1
                break
            if key in ("u", "undo"):
                if not history:
                    notify("nothing to undo in this session")
                    continue
                i = history.pop()
                undone = pending[i].id
                record({"id": undone, "undo": True, "at": now()})
                summary.labelled.remove(undone)
                summary.undone.append(undone)
                notify(f"undid the label of {undone}")
                break
            value = scale.label_value(reply)
            if value is None:
                notify(f"{reply!r} is not a label; use {help_text(scale)}")
                continue
            label = Label(item.id, scale.label_text(value), value, str(scale), reviewer, now())
            record(label.to_dict())
            history.append(i)
            summary.labelled.append(item.id)
            if item.id in summary.skipped:
                summary.skipped.remove(item.id)
            i += 1
            break
    return summary
