"""Turning honed's own model calls into log rows: the `ModelClient` log sink.

This runs on the caller's thread for every call, so it builds the row directly (its fields come from
typed values honed made itself, and the context was validated when it was entered) instead of through
`LogRecord` validation, and hands it to the writer without touching the store.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from honed.errors import HonedError
from honed.logs.context import current_view
from honed.logs.record import new_log_id
from honed.logs.writer import LogWriter
from honed.models.types import ChatRequest, Completion


class CallLogger:
    """`ModelClient(log_sink=CallLogger(writer))`: logs each call with the active log context. Errors are
    logged masked (`HonedError.one_line` passes them through `honed.secrets.mask`)."""

    def __init__(self, writer: LogWriter) -> None:
        self.writer = writer

    def __call__(self, request: ChatRequest, outcome: Completion | HonedError, latency_s: float) -> str:
        ctx = current_view()
        params = request.params.to_dict()
        if request.response_schema is not None:
            params["response_schema"] = request.response_schema
        if request.tools:
            params["tools"] = list(request.tools)
        metadata: dict[str, Any] = dict(ctx.get("metadata") or {})
        row: dict[str, Any] = {
            "id": new_log_id(),
            "created_at": datetime.now(UTC),
            "source": ctx.get("source", "api"),
            "model": request.model,
            "prompt": ctx.get("prompt"),
            "prompt_version": ctx.get("prompt_version"),
            "inputs": ctx.get("inputs"),
            "messages": [dict(m) for m in request.messages],
            "params": params,
            "latency_s": latency_s,
            "queue_s": outcome.queue_s if isinstance(outcome, Completion) else None,
            "trace_id": ctx.get("trace_id"),
            "session_id": ctx.get("session_id"),
            "metadata": metadata,
        }
        if request.sample_index:
            metadata["sample_index"] = request.sample_index
        if isinstance(outcome, Completion):
            row.update(
                output=outcome.text,
                input_tokens=outcome.usage.input_tokens,
                output_tokens=outcome.usage.output_tokens,
                cost_usd=outcome.cost_usd,
                error=None,
            )
            if outcome.tool_calls:
                metadata["tool_calls"] = list(outcome.tool_calls)
        else:
            row.update(
                output=None,
                input_tokens=None,
                output_tokens=None,
                cost_usd=None,
                error=outcome.one_line(),  # masked: HonedError.one_line
            )
        self.writer.submit(row)
        return str(row["id"])
