"""What the next logged generation should carry: source, trace and session ids, the prompt, metadata.

Held in a `contextvars.ContextVar`, so the fields follow the code that set them: through `await`s, into
tasks created inside the block (asyncio copies the context when a task is made) and not into other
threads' or other requests' work. Blocks nest: an inner block overrides the fields it names and merges
its `metadata` into the outer one's.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar
from types import MappingProxyType
from typing import Any

from honed.errors import InvalidInputError
from honed.logs.record import SOURCES

#: The fields a context can set, in the order they are documented.
FIELDS = ("source", "trace_id", "session_id", "prompt", "prompt_version", "inputs", "metadata")

_EMPTY: Mapping[str, Any] = MappingProxyType({})
_fields: ContextVar[Mapping[str, Any]] = ContextVar("honed_log_context", default=_EMPTY)


@contextmanager
def log_context(
    *,
    source: str | None = None,
    trace_id: str | None = None,
    session_id: str | None = None,
    prompt: str | None = None,
    prompt_version: str | None = None,
    inputs: Mapping[str, Any] | None = None,
    metadata: Mapping[str, Any] | None = None,
) -> Iterator[dict[str, Any]]:
    """Within the block, every generation logged (by honed's model client or `Honed.log`) carries these
    fields unless it sets them itself. `None` leaves a field as the enclosing block had it. Yields the
    fields now in effect."""
    if source is not None and source not in SOURCES:
        raise InvalidInputError(f"unknown log source {source!r}", hint=f"use one of: {', '.join(SOURCES)}")
    outer = _fields.get()
    merged = dict(outer)
    # Field by field rather than through a dict of all of them: every experiment call enters a block.
    if source is not None:
        merged["source"] = source
    if trace_id is not None:
        merged["trace_id"] = trace_id
    if session_id is not None:
        merged["session_id"] = session_id
    if prompt is not None:
        merged["prompt"] = prompt
    if prompt_version is not None:
        merged["prompt_version"] = prompt_version
    if inputs is not None:
        merged["inputs"] = dict(inputs)
    if metadata is not None:
        merged["metadata"] = {**outer.get("metadata", {}), **metadata}
    token = _fields.set(MappingProxyType(merged))
    try:
        yield dict(merged)
    finally:
        _fields.reset(token)


def current() -> dict[str, Any]:
    """The fields of the innermost active `log_context` (empty outside any)."""
    return dict(_fields.get())


def current_view() -> Mapping[str, Any]:
    """`current()` without the copy, for the logging hot path (read-only)."""
    return _fields.get()
