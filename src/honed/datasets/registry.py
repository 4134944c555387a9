"""Dataset versions in the store: record, import, look up, list.

A dataset version is one content-addressed object of kind "dataset":

    {"format": "honed.dataset/1", "cases": [case.to_dict(), ...]}

so its hash *is* its content, in file order, splits included. One object, not chunks: recording a
10,000-case body (2.5-5 MB of JSON) takes ~0.1 s on SQLite and PostgreSQL alike and a whole import under
a second (parsing dominates), and a single row makes "nothing stored partially" a property of one INSERT
rather than of a protocol over many. Chunks would start to pay off in storage, not speed: each version
stores its whole body, so many small edits to a very large dataset repeat most of it.
Recording content the name already has is a no-op; recording content that matches an *older* version
reports that version (the name's latest does not move back: versions are numbered by first recording).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from pydantic import ValidationError

from honed.datasets.case import STANDARD_SPLITS, UNASSIGNED, Case
from honed.datasets.columns import Columns
from honed.datasets.readers import ParsedFile, check_unique_ids, read_cases
from honed.datasets.splits import SplitPlan, assign_splits
from honed.errors import InvalidInputError, NotFoundError, StoreError
from honed.hashing import short
from honed.store.names import Version, check_name
from honed.userfiles import describe

if TYPE_CHECKING:
    from honed.store import Store

KIND = "dataset"
FORMAT = "honed.dataset/1"

Status = Literal["new", "unchanged", "existing"]


@dataclass(frozen=True, slots=True)
class DatasetVersion:
    """One version of a named dataset and its cases, in file order."""

    name: str
    version: Version
    cases: tuple[Case, ...]

    @property
    def hash(self) -> str:
        return self.version.hash

    @property
    def number(self) -> int:
        return self.version.number

    @property
    def ref(self) -> str:
        """`NAME@vN`: what to write to get this version back."""
        return f"{self.name}@v{self.number}"

    def __len__(self) -> int:
        return len(self.cases)

    def __iter__(self) -> Iterator[Case]:
        return iter(self.cases)

    def split(self, name: str) -> list[Case]:
        """The cases of split `name`. Raises NotFoundError when no case is in it, so that a misspelled
        split fails loudly instead of evaluating nothing."""
        chosen = [c for c in self.cases if c.split == name]
        if not chosen:
            have = ", ".join(k for k in self.split_counts() if k != UNASSIGNED) or "none"
            raise NotFoundError(
                f"dataset {self.ref} has no cases in split {name!r}", hint=f"its splits: {have}"
            )
        return chosen

    def select(self, split: str | None = None) -> list[Case]:
        """The cases of `split`, or all of them for None (what a `--split` option means everywhere)."""
        return list(self.cases) if split is None else self.split(split)

    def split_counts(self) -> dict[str, int]:
        """Cases per split: train, dev, test first, then custom splits by name, then `(none)`."""
        counts: dict[str, int] = {}
        for case in self.cases:
            key = case.split or UNASSIGNED
            counts[key] = counts.get(key, 0) + 1
        order = [s for s in STANDARD_SPLITS if s in counts]
        order += sorted(k for k in counts if k not in STANDARD_SPLITS and k != UNASSIGNED)
        order += [UNASSIGNED] if UNASSIGNED in counts else []
        return {k: counts[k] for k in order}

    def input_names(self) -> list[str]:
        """Every input variable some case has, in order of first appearance."""
        seen: dict[str, None] = {}
        for case in self.cases:
            seen.update(dict.fromkeys(case.inputs))
        return list(seen)

    def summary(self) -> dict[str, Any]:
        """The JSON summary the CLI prints (no cases)."""
        return {
            "name": self.name,
            "version": self.number,
            "hash": self.hash,
            "cases": len(self.cases),
            "splits": self.split_counts(),
            "inputs": self.input_names(),
            "labels": list(self.version.labels),
            "note": self.version.note,
            "created_at": self.version.created_at.isoformat(),
        }


@dataclass(frozen=True, slots=True)
class ImportResult:
    """What an import did: `new` version, `unchanged` (same as latest), or `existing` (same as an older
    version, which it names; latest is unchanged)."""

    dataset: DatasetVersion
    status: Status
    latest: int
    warnings: tuple[str, ...] = field(default=())


def dataset_body(cases: list[Case] | tuple[Case, ...]) -> dict[str, Any]:
    return {"format": FORMAT, "cases": [c.to_dict() for c in cases]}


def record_cases(
    store: Store, name: str, cases: list[Case], *, note: str | None = None, warnings: tuple[str, ...] = ()
) -> ImportResult:
    """Record `cases` as a version of dataset `name` (a new version only if the content changed)."""
    check_name(KIND, name)
    if not cases:
        raise InvalidInputError(f"dataset {name!r} would have no cases", hint="give at least one case")
    check_unique_ids(ParsedFile(f"dataset {name!r}", list(cases)))
    before = store.names.history(KIND, name)
    version, created = store.names.record(KIND, name, dataset_body(cases), note=note)
    if created:
        status: Status = "new"
    elif before and before[-1].hash == version.hash:
        status = "unchanged"
    else:
        status = "existing"
    latest = version.number if created else len(before)
    return ImportResult(DatasetVersion(name, version, tuple(cases)), status, latest, warnings)


def import_file(
    store: Store,
    name: str,
    path: Path,
    *,
    format: str | None = None,
    columns: Columns | None = None,
    plan: SplitPlan | None = None,
    note: str | None = None,
) -> ImportResult:
    """Read `path`, assign splits per `plan`, and record the result as a version of dataset `name`.

    The whole file is read and checked first: a bad row raises InvalidInputError (`FILE:LINE: reason`)
    and nothing is stored."""
    check_name(KIND, name)  # before reading a large file, not after
    parsed = read_cases(path, format=format, columns=columns)
    cases, warnings = parsed.cases, list[str]()
    if plan is not None:
        origins = [parsed.where(i) for i in range(len(cases))]
        cases, warnings = assign_splits(cases, plan, where=origins)
    note = note if note is not None else f"imported from {path.name}"
    return record_cases(store, name, cases, note=note, warnings=tuple(warnings))


def parse_ref(ref: str) -> tuple[str, str | None]:
    """`"NAME@REF"` -> (NAME, REF); `"NAME"` -> (NAME, None), i.e. latest."""
    name, at, version = ref.partition("@")
    if at and not version:
        raise InvalidInputError(f"{ref!r} has nothing after '@'", hint="write NAME@v2, NAME@label or NAME")
    return name, version if at else None


def get_dataset(store: Store, ref: str) -> DatasetVersion:
    """The dataset version `NAME[@REF]` names (REF: latest, vN, a label or a hash prefix)."""
    name, version_ref = parse_ref(ref)
    version, body = store.names.get(KIND, name, version_ref)
    return DatasetVersion(name, version, _cases(body, version))


def dataset_history(store: Store, name: str) -> list[Version]:
    """Every version of dataset `name`, oldest first. Raises NotFoundError for an unknown name."""
    history = store.names.history(KIND, name)
    if not history:
        store.names.resolve(KIND, name)  # raises the NotFoundError that lists the known names
    return history


def list_datasets(store: Store) -> list[DatasetVersion]:
    """The latest version of every dataset, by name (its `.number` is the name's version count)."""
    return [get_dataset(store, name) for name, _, _ in store.names.names(KIND)]


def _cases(body: dict[str, Any], version: Version) -> tuple[Case, ...]:
    if body.get("format") != FORMAT:
        raise StoreError(
            f"dataset version {short(version.hash)} has format {body.get('format')!r}, not {FORMAT!r}",
            hint="it was written by another version of honed; upgrade honed to read it",
        )
    try:
        return tuple(Case.model_validate(raw) for raw in body["cases"])
    except ValidationError as exc:  # pragma: no cover - only bodies written by this module are stored
        raise StoreError(f"dataset version {short(version.hash)} is malformed: {describe(exc)}") from None


#: The audit action of a case added or edited by a named user (see `honed.store.audit`).
EDIT_ACTION = "dataset.edit"


def save_case(
    store: Store,
    name: str,
    case: Case,
    *,
    replaces: str | None = None,
    based_on: int | None = None,
    note: str | None = None,
    by: str | None = None,
) -> ImportResult:
    """Record a new version of dataset `name` with `case` in it: in place of the case whose id is
    `replaces` (an edit; the id itself may change), or added at the end (`replaces` None; a dataset that
    does not exist yet is created). Earlier versions are never changed: they are content-addressed.

    `based_on` is the version number the editor was looking at: when the dataset has moved on since, the
    edit is refused rather than silently dropping the other change. With `by`, the change is recorded in
    the audit log (who, which case, from which version to which)."""
    history = store.names.history(KIND, name)
    latest = get_dataset(store, name) if history else None
    if based_on is not None and latest is not None and latest.number != based_on:
        raise InvalidInputError(
            f"dataset {name!r} changed since you opened v{based_on}: it is at v{latest.number} now",
            hint=f"open {name}@v{latest.number} and make the change again",
        )
    cases = list(latest.cases) if latest is not None else []
    if replaces is None:
        if any(c.id == case.id for c in cases):
            raise InvalidInputError(
                f"dataset {name!r} already has a case {case.id!r}",
                hint="give the new case another id, or edit that case",
            )
        cases.append(case)
    else:
        at = next((i for i, c in enumerate(cases) if c.id == replaces), None)
        if at is None:
            raise NotFoundError(f"dataset {name!r} has no case {replaces!r} in its latest version")
        cases[at] = case
    action = "add" if replaces is None else "edit"
    result = record_cases(store, name, cases, note=note or f"{action} case {case.id}")
    if by is not None and result.status == "new":
        detail = {
            "action": action,
            "case": case.id,
            **({"replaced": replaces} if replaces is not None and replaces != case.id else {}),
            "from": None if latest is None else latest.number,
            "to": result.dataset.number,
        }
        store.audit.record(by, EDIT_ACTION, KIND, name, detail)
    return result


def find_cases(dataset: DatasetVersion, text: str | None = None, *, split: str | None = None) -> list[Case]:
    """The cases of `dataset` in `split` (all for None) whose id, inputs, reference or metadata contain
    `text` (case-insensitive; all for an empty text), in dataset order."""
    chosen: list[Case] = [c for c in dataset.cases if split is None or (c.split or UNASSIGNED) == split]
    needle = (text or "").strip().casefold()
    if not needle:
        return chosen
    # Searched as the stored JSON text, so a value matches whatever its type (a number, a nested list).
    return [c for c in chosen if needle in json.dumps(c.to_dict(), ensure_ascii=False).casefold()]
