"""Logging the user's own code: a decorator for any function and a context manager for any block.

Both give the work a trace id (the enclosing one if there is one), so honed model calls made inside
share it and `honed logs list --trace ID` shows a request's whole story. Both log the error and re-raise
it: observing code never changes what it does. Inputs and outputs that are not JSON are logged as
their `repr`.

Both take the log function to call, never a workspace: the module-level `honed.log`, `honed.trace` and
`honed.feedback`, which open a default workspace, live in `honed.api`, so logging does not import the facade.
"""

from __future__ import annotations

import functools
import inspect
import json
import time
import uuid
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, ParamSpec, Protocol, TypeVar

from honed.logs.context import current_view, log_context

P = ParamSpec("P")
R = TypeVar("R")


class LogFunction(Protocol):
    """`Honed.log`: validates and queues one record, returns its id."""

    def __call__(self, *, model: str, **fields: Any) -> str: ...


def jsonable(value: Any) -> Any:
    """`value` if it is JSON as it is, else its `repr` (a log must never fail on an odd argument)."""
    try:
        json.dumps(value)
    except (TypeError, ValueError):
        return repr(value)
    return value


def as_text(value: Any) -> str | None:
    """A return value as the log's output text: strings as they are, JSON where it is JSON, else repr."""
    if value is None or isinstance(value, str):
        return value
    try:
        return json.dumps(value, ensure_ascii=False)
    except (TypeError, ValueError):
        return repr(value)


def _error_text(exc: BaseException) -> str:
    text = str(exc)
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def _bound_inputs(sig: inspect.Signature, args: tuple[Any, ...], kwargs: dict[str, Any]) -> dict[str, Any]:
    try:
        bound = sig.bind(*args, **kwargs)
    except TypeError:  # the call itself will fail the same way; log what was passed
        return {"args": jsonable(list(args)), "kwargs": {k: jsonable(v) for k, v in kwargs.items()}}
    bound.apply_defaults()
    out: dict[str, Any] = {}
    for name, value in bound.arguments.items():
        kind = sig.parameters[name].kind
        if kind is inspect.Parameter.VAR_KEYWORD:
            out.update({k: jsonable(v) for k, v in value.items()})
        elif name not in ("self", "cls"):
            out[name] = jsonable(list(value) if kind is inspect.Parameter.VAR_POSITIONAL else value)
    return out


def _trace_id() -> str:
    found = current_view().get("trace_id")
    return str(found) if found else "trace-" + uuid.uuid4().hex


class Tracer:
    """What `Honed.trace` returns: `tracer(fn)` wraps `fn` so each call is logged."""

    def __init__(self, log: Callable[[], LogFunction], model: str | None, fields: Mapping[str, Any]) -> None:
        self._log = log
        self._model = model
        self._fields = dict(fields)

    def __call__(self, fn: Callable[P, R]) -> Callable[P, R]:
        sig = inspect.signature(fn)
        model = self._model or f"{fn.__module__}.{fn.__qualname__}"
        fields = self._fields

        def record(inputs: dict[str, Any], started: float, output: Any, error: BaseException | None) -> None:
            self._log()(
                model=model,
                inputs=inputs,
                output=None if error is not None else as_text(output),
                error=None if error is None else _error_text(error),
                latency_s=time.perf_counter() - started,
                **fields,
            )

        if inspect.iscoroutinefunction(fn):

            @functools.wraps(fn)
            async def traced_async(*args: P.args, **kwargs: P.kwargs) -> Any:
                inputs = _bound_inputs(sig, args, kwargs)
                with log_context(trace_id=_trace_id()):
                    started = time.perf_counter()
                    try:
                        result = await fn(*args, **kwargs)
                    except BaseException as exc:
                        record(inputs, started, None, exc)
                        raise
                    record(inputs, started, result, None)
                    return result

            return traced_async  # type: ignore[return-value]

        @functools.wraps(fn)
        def traced(*args: P.args, **kwargs: P.kwargs) -> R:
            inputs = _bound_inputs(sig, args, kwargs)
            with log_context(trace_id=_trace_id()):
                started = time.perf_counter()
                try:
                    result = fn(*args, **kwargs)
                except BaseException as exc:
                    record(inputs, started, None, exc)
                    raise
                record(inputs, started, result, None)
                return result

        return traced


@dataclass
class Generation:
    """The record a `Honed.generation(...)` block fills in: set `output` (and tokens, cost, metadata if
    known) inside the block; after it, `log_id` is the id it was logged under."""

    model: str
    inputs: dict[str, Any] | None = None
    messages: list[dict[str, Any]] | None = None
    output: Any = None
    input_tokens: int | None = None
    output_tokens: int | None = None
    cost_usd: float | None = None
    metadata: dict[str, Any] = field(default_factory=dict)
    log_id: str | None = None


@contextmanager
def generation(log: LogFunction, *, model: str, **fields: Any) -> Iterator[Generation]:
    """Time the block and log it as one generation (with its error, re-raised, if it fails)."""
    g = Generation(
        model=model,
        inputs=fields.pop("inputs", None),
        messages=fields.pop("messages", None),
        metadata=dict(fields.pop("metadata", None) or {}),
    )
    error: BaseException | None = None
    with log_context(trace_id=_trace_id()):
        started = time.perf_counter()
        try:
            yield g
        except BaseException as exc:
            error = exc
            raise
        finally:
            extra = {
                k: v
                for k, v in (
                    ("input_tokens", g.input_tokens),
                    ("output_tokens", g.output_tokens),
                    ("cost_usd", g.cost_usd),
                )
                if v is not None
            }
            g.log_id = log(
                model=g.model,
                inputs=None if g.inputs is None else {k: jsonable(v) for k, v in g.inputs.items()},
                messages=g.messages,
                output=as_text(g.output),
                error=None if error is None else _error_text(error),
                latency_s=time.perf_counter() - started,
                metadata=g.metadata,
                **extra,
                **fields,
            )
