"""Prompts and chains in the store: push versions, fetch `NAME[@REF]`, list, history, labels.

Versions and labels live in `store.names` under the kinds "prompt" and "chain"; this module adds the
`NAME@REF` syntax (`qa`, `qa@v2`, `qa@production`, `qa@3f2a9c`) and turns bodies back into `Prompt` and
`Chain` values. A push validates every name and the label before it records anything, so a bad argument
cannot leave half a push behind.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from honed.errors import InvalidInputError, NotFoundError
from honed.prompts.chain import Chain
from honed.prompts.spec import Prompt
from honed.store.names import ANY, RESERVED_LABELS, Version, check_name

if TYPE_CHECKING:
    from honed.store import Store
    from honed.store.audit import AuditEvent

PROMPT = "prompt"
CHAIN = "chain"
_LABEL = re.compile(r"^[A-Za-z][A-Za-z0-9._-]{0,99}$")
#: Audit actions recorded when a change names its author (`by`): see `honed.store.audit`.
SAVE_ACTION = "prompt.save"
LABEL_ACTION = "label.move"


@dataclass(frozen=True, slots=True)
class Pushed:
    """One item of a push: its stored version and whether that version is new under the name."""

    kind: str
    version: Version
    created: bool


@dataclass(frozen=True, slots=True)
class Summary:
    """One name in a listing."""

    kind: str
    name: str
    versions: int
    latest: Version
    labels: dict[str, int]  # label -> version number


def kind_of(item: Prompt | Chain) -> str:
    return CHAIN if isinstance(item, Chain) else PROMPT


def parse_ref(text: str) -> tuple[str, str | None]:
    """`qa@production` -> ("qa", "production"); `qa` -> ("qa", None)."""
    name, sep, ref = text.partition("@")
    if not name or (sep and not ref):
        raise InvalidInputError(f"{text!r} is not a reference", hint="use NAME or NAME@REF, e.g. qa@v2")
    return name, ref or None


def check_label(label: str) -> None:
    if not _LABEL.match(label) or label in RESERVED_LABELS or re.fullmatch(r"v[0-9]+", label):
        raise InvalidInputError(
            f"{label!r} cannot be a label",
            hint="start with a letter; use letters, digits, '.', '_', '-'; not 'latest' or vN",
        )


def push(
    store: Store,
    items: Sequence[Prompt | Chain],
    *,
    note: str | None = None,
    label: str | None = None,
    by: str | None = None,
) -> list[Pushed]:
    """Record each item as a version of its name (a no-op for content the name already has) and, with
    `label`, point that label at it. With `by` (a user), each new version and each label move is
    recorded in the audit log under that user."""
    if label is not None:
        check_label(label)
    check_push(store, items)
    out: list[Pushed] = []
    for item in items:
        kind = kind_of(item)
        version, created = store.names.record(kind, item.name, item.body(), note=note)
        if by is not None and created:
            detail = {"version": version.number, "hash": version.hash, "note": note}
            store.audit.record(by, SAVE_ACTION, kind, item.name, detail)
        if label is not None:
            version = _move_label(store, kind, item.name, label, version.hash, by)
        out.append(Pushed(kind, version, created))
    return out


def check_push(store: Store, items: Sequence[Prompt | Chain]) -> None:
    """What `push` checks before it records anything: valid names, none twice, none taken by the other
    kind. Callers that store later (an experiment stores its prompt files once it has planned every
    call) check here first."""
    names = [(kind_of(item), item.name) for item in items]
    dupes = sorted({f"{k} {n!r}" for k, n in names if names.count((k, n)) > 1})
    if dupes:
        raise InvalidInputError(f"pushed twice in one push: {', '.join(dupes)}")
    for kind, name in names:
        check_name(kind, name)
        other = CHAIN if kind == PROMPT else PROMPT
        # `show NAME` and `run NAME` look a name up across both kinds, so one name is one thing.
        if store.names.history(other, name):
            raise InvalidInputError(
                f"{name!r} is already the name of a {other}", hint=f"give the {kind} another `name:`"
            )


def get_prompt(store: Store, ref: str) -> tuple[Version, Prompt]:
    """The prompt `NAME[@REF]` names, with its version."""
    name, at = parse_ref(ref)
    version, body = store.names.get(PROMPT, name, at)
    return version, Prompt.from_body(name, body)


def get_chain(store: Store, ref: str) -> tuple[Version, Chain]:
    name, at = parse_ref(ref)
    version, body = store.names.get(CHAIN, name, at)
    return version, Chain.from_body(name, body)


def get_item(store: Store, ref: str) -> tuple[Version, Prompt | Chain]:
    """A prompt or, when no prompt has the name, a chain."""
    kind = kind_named(store, parse_ref(ref)[0])
    return get_chain(store, ref) if kind == CHAIN else get_prompt(store, ref)


def kind_named(store: Store, name: str) -> str:
    """Which kind, "prompt" or "chain", has `name` (prompts first). Raises NotFoundError."""
    for kind in (PROMPT, CHAIN):
        if store.names.history(kind, name):
            return kind
    known = [n for kind in (PROMPT, CHAIN) for n, _, _ in store.names.names(kind)]
    raise NotFoundError(
        f"no prompt or chain named {name!r}",
        hint=f"known: {', '.join(known[:10])}" if known else "push one with `honed prompts push FILE`",
    )


def history(store: Store, name: str, kind: str | None = None) -> list[Version]:
    """Every version of `name`, oldest first."""
    return store.names.history(kind or kind_named(store, name), name)


def list_all(store: Store, kinds: Sequence[str] = (PROMPT, CHAIN)) -> list[Summary]:
    out: list[Summary] = []
    for kind in kinds:
        for name, count, _ in store.names.names(kind):
            versions = store.names.history(kind, name)
            labels = {lb: v.number for v in versions for lb in v.labels}
            out.append(Summary(kind, name, count, versions[-1], dict(sorted(labels.items()))))
    return out


def set_label(
    store: Store, ref: str, label: str, *, by: str | None = None, expect: str | object | None = ANY
) -> Version:
    """Point `label` at the version `NAME@REF` names (moving it from wherever it was). With `by`, the move
    is recorded in the audit log: who, and from which version to which. With `expect` (the hash the label
    pointed at when the caller looked, None when it did not exist), a label someone moved since is not
    moved again: InvalidInputError says where it is now."""
    check_label(label)
    name, at = parse_ref(ref)
    return _move_label(store, kind_named(store, name), name, label, at or "latest", by, expect)


def _move_label(
    store: Store, kind: str, name: str, label: str, ref: str, by: str | None, expect: object = ANY
) -> Version:
    # The version the label left is read in the move's transaction, so the audit says where it was.
    before, version = store.names.set_label(kind, name, label, ref, expect=expect)
    if by is not None and before != version.hash:
        numbers = {v.hash: v.number for v in store.names.history(kind, name)}
        detail = {
            "label": label,
            "from": None if before is None else numbers.get(before),
            "from_hash": before,
            "to": version.number,
            "to_hash": version.hash,
        }
        store.audit.record(by, LABEL_ACTION, kind, name, detail)
    return version


def label_moves(store: Store, name: str, *, limit: int = 100) -> list[AuditEvent]:
    """The recorded label moves of prompt or chain `name`, newest first (at most `limit`): the audit
    events of changes that named their author (the web UI's user, the CLI's system user; a library call
    without `by=` is not recorded)."""
    kind = kind_named(store, name)
    moves: list[AuditEvent] = []
    cursor = None
    # The audit log is paged by (kind, name), not by action; saves are skipped page by page.
    while len(moves) < limit:
        events, cursor = store.audit.page(200, cursor, kind=kind, name=name)
        moves += [e for e in events if e.action == LABEL_ACTION]
        if cursor is None:
            break
    return moves[:limit]


def remove_label(store: Store, ref: str, label: str) -> None:
    """Delete `label` from the name in `ref` (`qa` or `qa@anything`)."""
    name = parse_ref(ref)[0]
    store.names.remove_label(kind_named(store, name), name, label)
