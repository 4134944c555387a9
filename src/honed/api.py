"""`honed.connect()`: the Python entry point. The CLI and the HTTP server use the same object."""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping, Sequence
from contextlib import AbstractContextManager
from pathlib import Path
from typing import TYPE_CHECKING, Any, ParamSpec, TypeVar, overload

from honed.closing import Closing
from honed.config import Settings, load_settings
from honed.logs.context import current_view
from honed.logs.record import FeedbackRecord, LogRecord
from honed.logs.tracing import Tracer, as_text
from honed.models.client import ModelClient
from honed.models.types import ChatRequest, Completion, Message, Params
from honed.userfiles import validate

if TYPE_CHECKING:
    from honed.logs.tracing import Generation
    from honed.logs.writer import LogWriter
    from honed.store import Store

P = ParamSpec("P")
R = TypeVar("R")


class Honed(Closing):
    """A workspace's settings, store and model client, opened lazily.

    Outside a workspace (no honed.toml, no HONED_DATABASE_URL) it still calls models, without a store and
    so without the response cache.
    """

    def __init__(self, settings: Settings, *, use_cache: bool | None = None) -> None:
        self.settings = settings
        self._use_cache = use_cache
        self._store: Store | None = None
        self._client: ModelClient | None = None
        self._writer: LogWriter | None = None
        self._writer_lock = threading.Lock()

    @property
    def has_store(self) -> bool:
        return self.settings.root is not None or self.settings.database_url is not None

    @property
    def store(self) -> Store:
        if self._store is None:
            from honed.store import Store

            self._store = Store.open(self.settings.resolved_database_url())
        return self._store

    @property
    def client(self) -> ModelClient:
        if self._client is None:
            store = self.store if self.has_store else None
            sink = None
            if store is not None and self.settings.logging.enabled:
                from honed.logs.calls import CallLogger

                sink = CallLogger(self.log_writer)
            self._client = ModelClient(self.settings, store=store, use_cache=self._use_cache, log_sink=sink)
        return self._client

    @property
    def log_writer(self) -> LogWriter:
        """The workspace's background log writer (started on first use, closed by `close()`)."""
        with self._writer_lock:
            if self._writer is None:
                from honed.logs.writer import LogWriter

                cfg = self.settings.logging
                self._writer = LogWriter(
                    self.store, batch_size=cfg.batch_size, interval_s=cfg.flush_interval_s
                )
            return self._writer

    def flush_logs(self) -> None:
        """Wait until every generation logged so far in this process is written to the store."""
        with self._writer_lock:
            writer = self._writer
        if writer is not None:
            writer.flush()

    # -- logging the application's own generations ----------------------------------------------------

    def log(
        self,
        *,
        model: str,
        messages: Sequence[Mapping[str, Any]] | None = None,
        inputs: Mapping[str, Any] | None = None,
        output: Any = None,
        **fields: Any,
    ) -> str:
        """Log one generation of your application; returns its id (for `feedback`). Never waits for the
        database: the record is validated here, then queued for the background writer.

        `fields` are the other `LogRecord` fields (prompt, prompt_version, params, input_tokens,
        output_tokens, latency_s, cost_usd, error, trace_id, session_id, metadata, id, created_at,
        source); those not given come from the active `log_context`. Source defaults to "app".
        """
        ctx = current_view()
        data: dict[str, Any] = {k: v for k, v in ctx.items() if k != "metadata" and fields.get(k) is None}
        data.setdefault("source", "app")
        ctx_meta = ctx.get("metadata")
        if ctx_meta or "metadata" in fields:
            data["metadata"] = {**(ctx_meta or {}), **(fields.pop("metadata", None) or {})}
        data.update({k: v for k, v in fields.items() if v is not None})
        data["model"] = model
        if messages is not None:
            data["messages"] = [dict(m) for m in messages]
        if inputs is not None:
            data["inputs"] = dict(inputs)
        data["output"] = as_text(output)
        record = validate(LogRecord, data, where="invalid log", hint=record_hint("log"))
        row = record.model_dump()
        if row["messages"] is not None:  # as LogRecord.row() gives them, in one serializer pass
            row["messages"] = [{k: v for k, v in m.items() if v is not None} for m in row["messages"]]
        self.log_writer.submit(row)
        return record.id

    def feedback(
        self,
        log_id: str,
        kind: str,
        value: float | str | bool | None = None,
        *,
        text: str | None = None,
        source: str | None = None,
    ) -> str:
        """Attach feedback to a logged generation; returns the feedback id. Written before returning;
        an unknown `log_id` is a NotFoundError and writes nothing.

        `kind`: thumbs (value 1/0 or "up"/"down"), rating (value), correction or comment (text), or an
        implicit signal such as copied, regenerated, edited."""
        given = {"log_id": log_id, "kind": kind, "value": value, "text": text, "source": source}
        record = validate(FeedbackRecord, given, where="invalid feedback", hint=record_hint("feedback"))
        self.flush_logs()  # so feedback on an id logged a moment ago finds it
        self.store.logs.add_feedback([record.row()])
        return record.id

    @overload
    def trace(self, fn: Callable[P, R], /) -> Callable[P, R]: ...
    @overload
    def trace(self, /, *, model: str | None = None, **fields: Any) -> Tracer: ...
    def trace(self, fn: Callable[P, R] | None = None, /, *, model: str | None = None, **fields: Any) -> Any:
        """Decorator: log every call of a function (sync or async) with its bound arguments as inputs,
        its return value as output, its latency, and its exception (re-raised). `@h.trace` or
        `@h.trace(model="my-app/answer", prompt="qa")`; model defaults to the function's name."""
        tracer = Tracer(lambda: self.log, model, fields)
        return tracer if fn is None else tracer(fn)

    def generation(self, *, model: str, **fields: Any) -> AbstractContextManager[Generation]:
        """`with h.generation(model=..., inputs=...) as g: ...; g.output = ...` logs the block as one
        generation (timed; an exception is logged and re-raised); `g.log_id` is its id afterwards."""
        from honed.logs.tracing import generation

        return generation(self.log, model=model, **fields)

    def complete(
        self,
        model: str | None,
        messages: Sequence[Message] | str,
        params: Params | Mapping[str, Any] | None = None,
        *,
        response_schema: dict[str, Any] | None = None,
        sample_index: int = 0,
    ) -> Completion:
        """Run one chat request synchronously; raises a `HonedError` on failure."""
        request = ChatRequest.of(
            model or self.settings.default_model,
            messages if isinstance(messages, str) else list(messages),
            params if isinstance(params, Params) or params is None else dict(params),
            response_schema=response_schema,
            sample_index=sample_index,
        )

        return self.client.blocking(lambda: self.client.complete(request), flush=True)

    def close(self) -> None:
        """Write what is buffered (cache entries, queued logs) and close the store."""
        if self._client is not None:
            self._client.flush()
        with self._writer_lock:
            writer, self._writer = self._writer, None
        if writer is not None:
            writer.close()
        self._client = None
        if self._store is not None:
            self._store.close()
            self._store = None


def record_hint(what: str) -> str:
    """How to fix an invalid log or feedback record (see `honed.userfiles.validate` for the message)."""
    return f"see the {what} fields in `help(Honed.{what})`"


def connect(path: str | Path | None = None, *, use_cache: bool | None = None, **overrides: Any) -> Honed:
    """Open the workspace around `path` (default: the current folder, or HONED_HOME).

    `overrides` take precedence over everything else, e.g. `connect(database_url="postgresql://...")`.
    """
    settings = load_settings(overrides, start=Path(path) if path else None)
    return Honed(settings, use_cache=use_cache)


# -- module-level `honed.log`, `honed.feedback`, `honed.trace`: a default workspace opened lazily ----------
# They live here, not in honed.logs.tracing, because opening the workspace is the facade's job: the logging
# package stays below the facade and never imports it.

_default: Honed | None = None


def default_workspace() -> Honed:
    """The workspace `honed.log(...)` and friends use: `honed.connect()` of the current folder (or
    HONED_HOME), opened on first use and closed at exit."""
    global _default
    if _default is None:
        import atexit

        _default = connect()
        atexit.register(close_default_workspace)
    return _default


def close_default_workspace() -> None:
    """Write what the default workspace has queued and close it (the next use opens it again)."""
    global _default
    if _default is not None:
        found, _default = _default, None
        found.close()


def log(**fields: Any) -> str:
    """`Honed.log` on the default workspace."""
    return default_workspace().log(**fields)


def feedback(
    log_id: str, kind: str, value: Any = None, text: str | None = None, source: str | None = None
) -> str:
    """`Honed.feedback` on the default workspace."""
    return default_workspace().feedback(log_id, kind, value, text=text, source=source)


@overload
def trace(fn: Callable[P, R], /) -> Callable[P, R]: ...
@overload
def trace(*, model: str | None = None, **fields: Any) -> Tracer: ...
def trace(fn: Callable[P, R] | None = None, /, *, model: str | None = None, **fields: Any) -> Any:
    """`@honed.trace` / `@honed.trace(model=..., prompt=...)`: `Honed.trace` on the default workspace
    (opened at the first call, not when the function is decorated)."""
    tracer = Tracer(lambda: default_workspace().log, model, fields)
    return tracer if fn is None else tracer(fn)
