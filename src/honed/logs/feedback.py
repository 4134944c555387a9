"""Feedback on a logged generation as a person gives it: thumbs, a rating, a correction, a comment, a signal.

`honed logs feedback` and the web UI's log page both give feedback through these two functions, so what a
person may say (and how it is checked) is the same whichever they use. Validation (`feedback_rows`) is
apart from writing (`record_feedback`): the CLI checks what was typed before it opens a workspace.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from honed.errors import InvalidInputError
from honed.logs.filters import parse_thumbs
from honed.logs.record import FeedbackRecord
from honed.userfiles import validate

if TYPE_CHECKING:
    from honed.store.database import Store

__all__ = ["feedback_rows", "record_feedback"]

_HINT = "see the feedback fields in `help(Honed.feedback)`"


def feedback_rows(
    log_ref: str,
    *,
    thumbs: str | None = None,
    rating: float | None = None,
    correction: str | None = None,
    comment: str | None = None,
    signal: str | None = None,
    source: str | None = None,
    hint: str = _HINT,
) -> list[dict[str, Any]]:
    """The feedback rows (`FeedbackRecord.row()`) for what was given, one per kind, all checked; at least
    one kind must be given. `thumbs` is `up` or `down`; `log_ref` may still be an id prefix."""
    given: list[dict[str, Any]] = []
    if thumbs is not None:
        given.append({"kind": "thumbs", "value": float(parse_thumbs(thumbs) or 0)})
    if rating is not None:
        given.append({"kind": "rating", "value": rating})
    if correction is not None:
        given.append({"kind": "correction", "text": correction})
    if comment is not None:
        given.append({"kind": "comment", "text": comment})
    if signal is not None:
        given.append({"kind": signal})
    if not given:
        raise InvalidInputError(
            "no feedback given",
            hint="give thumbs up|down, a rating, a correction, a comment or a signal (copied, edited ...)",
        )
    return [
        validate(
            FeedbackRecord, {"log_id": log_ref, "source": source, **g}, where="invalid feedback", hint=hint
        ).row()
        for g in given
    ]


def record_feedback(
    store: Store, log_ref: str, rows: list[dict[str, Any]], *, by: str | None = None
) -> tuple[str, list[dict[str, Any]]]:
    """Write `rows` (from `feedback_rows`) on the log `log_ref` names (its id or a unique prefix), all or
    none; returns the log's id and the rows as written. `by` (a web UI user) is recorded in the audit log,
    so a team can see who said what about which output."""
    log_id = store.logs.resolve_id(log_ref)
    rows = [{**r, "log_id": log_id} for r in rows]
    store.logs.add_feedback(rows)
    if by is not None:
        store.audit.record(by, "log.feedback", "log", log_id, {"kinds": [r["kind"] for r in rows]})
    return log_id, rows
