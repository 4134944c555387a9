"""A logged trace as what an agent did (`Trajectory`), for the evaluators of whole traces.

Trace evaluators (`tool_calls`, `trajectory`, `trace_steps`, `final_answer`; see
`honed.evals.evaluators.agent`) score a trace once, on its last generation: of the logs to score, only
those that end their trace are kept, each with the trace's trajectory. The tool calls are those its
generations asked for, in time order; a trace whose generations carry none (an app that logs its tool
executions as spans but not the model's requests) takes them from its tool spans instead. A trace still
arriving is scored on the generation that ends it so far, and again, as a new version of the trace, if
a later one comes (online evaluation skips only what the same evaluator version scored).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from honed.evals.evaluators.base import Trajectory
from honed.store.logs import LogFilter

if TYPE_CHECKING:
    from honed.store import Store

__all__ = ["ends_of_traces", "trajectory"]

#: The most logs and spans of one trace read (a runaway agent loop can log thousands).
MAX_STEPS = 5000


def trajectory(logs: Sequence[dict[str, Any]], spans: Sequence[dict[str, Any]] = ()) -> Trajectory:
    """The trajectory of a trace's logs (oldest first) and stored spans."""
    calls = [dict(c) for log in logs for c in ((log.get("metadata") or {}).get("tool_calls") or [])]
    if not calls:
        for span in spans:
            if span["kind"] != "tool":
                continue
            attributes = span.get("attributes") or {}
            args = attributes.get("input")
            calls.append(
                {
                    "id": span["span_id"],
                    "name": str(attributes.get("tool") or span["name"]),
                    "arguments": args
                    if isinstance(args, str)
                    else json.dumps(args or {}, ensure_ascii=False),
                }
            )
    inputs = [log["input_tokens"] for log in logs if log.get("input_tokens") is not None]
    outputs = [log["output_tokens"] for log in logs if log.get("output_tokens") is not None]
    return Trajectory(
        tool_calls=tuple(calls),
        steps=len(logs),
        input_tokens=sum(inputs) if inputs else None,
        output_tokens=sum(outputs) if outputs else None,
        final_output=str((logs[-1].get("output") if logs else "") or ""),
    )


def ends_of_traces(
    store: Store, logs: Sequence[dict[str, Any]]
) -> tuple[list[dict[str, Any]], dict[str, Trajectory]]:
    """Those of `logs` that are the last generation of their trace (a log without a trace is a trace of
    its own), and each one's trajectory by log id."""
    kept: list[dict[str, Any]] = []
    found: dict[str, Trajectory] = {}
    traces: dict[str, tuple[list[dict[str, Any]], list[dict[str, Any]]]] = {}
    for log in logs:
        trace_id = log.get("trace_id")
        if not trace_id:
            kept.append(log)
            found[log["id"]] = trajectory([log])
            continue
        if trace_id not in traces:
            whole = store.logs.query(LogFilter(trace_id=trace_id, newest_first=False, limit=MAX_STEPS))
            traces[trace_id] = (whole, store.spans.for_trace(trace_id, MAX_STEPS))
        whole, spans = traces[trace_id]
        if whole and whole[-1]["id"] == log["id"]:
            kept.append(log)
            found[log["id"]] = trajectory(whole, spans)
    return kept, found
