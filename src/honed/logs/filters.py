"""Log filters as people write them: `--since 7d`, `--thumbs down`, `--min-score judge=4`, turned into a
`LogFilter` the store runs. Shared by `honed logs list|eval`, `honed logs curate` and the HTTP API."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

from honed.errors import InvalidInputError
from honed.store.logs import LogFilter

__all__ = ["build_filter", "parse_thumbs", "parse_time"]

_RELATIVE = re.compile(r"^(\d+(?:\.\d+)?)\s*([smhdw])$")
_UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days", "w": "weeks"}


def parse_time(text: str, *, now: datetime | None = None) -> datetime:
    """An ISO time (naive means UTC) or a span back from now: `30m`, `1h`, `7d`, `2w`."""
    m = _RELATIVE.match(text.strip())
    if m:
        return (now or datetime.now(UTC)) - timedelta(**{_UNITS[m.group(2)]: float(m.group(1))})
    try:
        value = datetime.fromisoformat(text.strip())
    except ValueError:
        raise InvalidInputError(
            f"{text!r} is not a time", hint="use ISO (2026-01-31 or 2026-01-31T12:00) or a span: 30m, 1h, 7d"
        ) from None
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def _min_scores(pairs: list[str]) -> dict[str, float]:
    out: dict[str, float] = {}
    for pair in pairs:
        name, sep, value = pair.partition("=")
        try:
            out[name] = float(value)
        except ValueError:
            sep = ""
        if not sep or not name:
            raise InvalidInputError(
                f"--min-score {pair!r} is not EVALUATOR=NUMBER", hint="e.g. --min-score judge=4"
            )
    return out


def parse_thumbs(value: str | None) -> int | None:
    if value is None:
        return None
    if value.lower() not in ("up", "down"):
        raise InvalidInputError(f"--thumbs {value!r}: use up or down")
    return 1 if value.lower() == "up" else 0


def build_filter(
    *,
    prompt: str | None = None,
    prompt_version: str | None = None,
    model: str | None = None,
    source: str | None = None,
    since: str | None = None,
    until: str | None = None,
    feedback: str | None = None,
    thumbs: str | None = None,
    approved: bool = False,
    min_rating: float | None = None,
    min_score: list[str] | None = None,
    session: str | None = None,
    trace: str | None = None,
    errors: bool | None = None,
    limit: int | None = None,
) -> LogFilter:
    """A `LogFilter` from options as a person types them (the CLI's, a web form's): times as ISO or a
    span back (`7d`), thumbs as up/down, scores as `EVALUATOR=X`; a bad one is a one-line error."""
    return LogFilter(
        prompt=prompt,
        prompt_version=prompt_version,
        model=model,
        source=source,
        since=parse_time(since) if since else None,
        until=parse_time(until) if until else None,
        trace_id=trace,
        session_id=session,
        has_error=errors,
        feedback=feedback,
        thumbs=parse_thumbs(thumbs),
        approved=approved,
        min_rating=min_rating,
        min_scores=_min_scores(min_score or []),
        limit=limit,
    )
