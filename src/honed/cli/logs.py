"""`honed logs list|show|feedback|eval`: logged generations, what users said about them, online scores."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime, timedelta
from typing import Any

import typer

from honed.cli.common import JsonOption, console, fmt_cost, fmt_latency, open_honed, print_json, print_table
from honed.errors import InvalidInputError
from honed.store.logs import LogFilter

app = typer.Typer(
    help="Logged generations: list and filter them, add feedback, score them with evaluators.",
    no_args_is_help=True,
)

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


def _thumbs(value: str | None) -> int | None:
    if value is None:
        return None
    if value.lower() not in ("up", "down"):
        raise InvalidInputError(f"--thumbs {value!r}: use up or down")
    return 1 if value.lower() == "up" else 0


def build_filter(
    *,
    prompt: str | None = None,
    model: str | None = None,
    source: str | None = None,
    since: str | None = None,
    until: str | None = None,
    feedback: str | None = None,
    thumbs: str | None = None,
    approved: bool = False,
    min_score: list[str] | None = None,
    session: str | None = None,
    trace: str | None = None,
    errors: bool | None = None,
    limit: int | None = None,
) -> LogFilter:
    """A `LogFilter` from the command-line options (shared by `list` and `eval`)."""
    return LogFilter(
        prompt=prompt,
        model=model,
        source=source,
        since=parse_time(since) if since else None,
        until=parse_time(until) if until else None,
        trace_id=trace,
        session_id=session,
        has_error=errors,
        feedback=feedback,
        thumbs=_thumbs(thumbs),
        approved=approved,
        min_scores=_min_scores(min_score or []),
        limit=limit,
    )


PromptOpt = typer.Option(None, "--prompt", help="Only logs of this prompt.")
ModelOpt = typer.Option(None, "--model", help="Only logs of this model reference.")
SourceOpt = typer.Option(None, "--source", help="Only logs from app, serve, experiment, api or judge.")
SinceOpt = typer.Option(None, "--since", help="Logged at or after: ISO time or a span back (1h, 7d).")
UntilOpt = typer.Option(None, "--until", help="Logged before: ISO time or a span back (1h, 7d).")
FeedbackOpt = typer.Option(None, "--feedback", help="Only logs with feedback of this kind (e.g. correction).")
ThumbsOpt = typer.Option(None, "--thumbs", help="Only logs whose latest thumbs is up or down.")
ApprovedOpt = typer.Option(
    False, "--approved", help="Only logs a person vouched for: latest thumbs up, or corrected."
)
MinScoreOpt = typer.Option(
    None, "--min-score", help="EVALUATOR=X: only logs it scored at least X (repeatable)."
)
SessionOpt = typer.Option(None, "--session", help="Only logs of this session id.")
TraceOpt = typer.Option(None, "--trace", help="Only logs of this trace id.")
ErrorsOpt = typer.Option(None, "--errors/--no-errors", help="Only failed calls / only successful ones.")


def _short(text: Any, width: int = 60) -> str:
    flat = " ".join(str(text or "").split())
    return flat if len(flat) <= width else flat[: width - 1] + "…"


@app.command("list")
def list_logs(
    prompt: str | None = PromptOpt,
    model: str | None = ModelOpt,
    source: str | None = SourceOpt,
    since: str | None = SinceOpt,
    until: str | None = UntilOpt,
    feedback: str | None = FeedbackOpt,
    thumbs: str | None = ThumbsOpt,
    min_score: list[str] | None = MinScoreOpt,
    session: str | None = SessionOpt,
    trace: str | None = TraceOpt,
    errors: bool | None = ErrorsOpt,
    limit: int = typer.Option(50, "--limit", "-n", min=1, help="At most this many, newest first."),
    json_out: bool = JsonOption,
) -> None:
    """List logged generations, newest first.

    Examples:
      honed logs list --since 1h --model local/smollm2-135m-instruct
      honed logs list --thumbs down --prompt qa --json
      honed logs list --min-score helpfulness=4 --no-errors
    """
    where = build_filter(
        prompt=prompt,
        model=model,
        source=source,
        since=since,
        until=until,
        feedback=feedback,
        thumbs=thumbs,
        min_score=min_score,
        session=session,
        trace=trace,
        errors=errors,
        limit=limit,
    )
    with open_honed(require_workspace=True) as h:
        rows = h.store.logs.query(where)
        ids = [r["id"] for r in rows]
        fb = h.store.logs.feedback_for(ids)
        scores = h.store.logs.scores_for(ids)
    if json_out:
        print_json(
            [
                {**r, "feedback": fb[r["id"]], "scores": {k: v["value"] for k, v in scores[r["id"]].items()}}
                for r in rows
            ]
        )
        return
    table = []
    for r in rows:
        kinds = sorted({f["kind"] for f in fb[r["id"]]})
        table.append(
            (
                r["id"],
                r["created_at"].strftime("%Y-%m-%d %H:%M:%S"),
                r["source"],
                r["model"] + (f" ({r['prompt']})" if r["prompt"] else ""),
                "ERROR: " + _short(r["error"], 50) if r["error"] else _short(r["output"]),
                fmt_latency(r["latency_s"]) if r["latency_s"] is not None else "",
                ", ".join(kinds),
                ", ".join(
                    f"{k}={v['value']:g}" for k, v in scores[r["id"]].items() if v["value"] is not None
                ),
            )
        )
    print_table(
        f"{len(rows)} log(s)",
        ["id", "time", "source", "model", "output", "latency", "feedback", "scores"],
        table,
    )


@app.command("show")
def show(log_id: str = typer.Argument(..., help="The log id."), json_out: bool = JsonOption) -> None:
    """Show one logged generation: its messages, output, feedback and scores."""
    with open_honed(require_workspace=True) as h:
        entry = h.store.logs.get(log_id)
    if json_out:
        print_json({**entry.log, "feedback": entry.feedback, "scores": entry.scores})
        return
    log = entry.log
    facts = [
        ("id", log["id"]),
        ("time", log["created_at"].isoformat()),
        ("source", log["source"]),
        ("model", log["model"]),
        ("prompt", f"{log['prompt']} @ {log['prompt_version']}" if log["prompt"] else None),
        ("tokens", f"{log['input_tokens']} in / {log['output_tokens']} out" if log["input_tokens"] else None),
        ("latency", fmt_latency(log["latency_s"]) if log["latency_s"] is not None else None),
        ("cost", fmt_cost(log["cost_usd"]) if log["cost_usd"] is not None else None),
        ("trace", log["trace_id"]),
        ("session", log["session_id"]),
        ("params", json.dumps(log["params"]) if log["params"] else None),
        ("metadata", json.dumps(log["metadata"], default=str) if log["metadata"] else None),
        ("inputs", json.dumps(log["inputs"], ensure_ascii=False, default=str) if log["inputs"] else None),
    ]
    print_table(None, ["field", "value"], [(k, v) for k, v in facts if v is not None], show_header=False)
    for m in log.get("messages") or []:
        console.print(f"[bold]{m.get('role')}[/bold]", highlight=False)
        console.print(str(m.get("content") or ""), markup=False, highlight=False)
    if log["error"]:
        console.print("[bold red]error[/bold red]")
        console.print(log["error"], markup=False, highlight=False)
    else:
        console.print("[bold]output[/bold]")
        console.print(log["output"] or "", markup=False, highlight=False)
    if entry.feedback:
        print_table(
            "feedback",
            ["time", "kind", "value", "text", "source"],
            [
                (f["created_at"].strftime("%Y-%m-%d %H:%M:%S"), f["kind"], f["value"], f["text"], f["source"])
                for f in entry.feedback
            ],
        )
    if entry.scores:
        print_table(
            "scores",
            ["evaluator", "value", "passed", "reason"],
            [(s["evaluator"], s["value"], s["passed"], s["error"] or s["reason"]) for s in entry.scores],
        )


@app.command("feedback")
def add_feedback(
    log_id: str = typer.Argument(..., help="The log id."),
    thumbs: str | None = typer.Option(None, "--thumbs", help="up or down."),
    rating: float | None = typer.Option(None, "--rating", help="A numeric rating (e.g. 1-5)."),
    correction: str | None = typer.Option(None, "--correction", help="The output it should have been."),
    comment: str | None = typer.Option(None, "--comment", help="A comment."),
    signal: str | None = typer.Option(
        None, "--signal", help="An implicit signal: copied, regenerated, edited."
    ),
    source: str | None = typer.Option(None, "--source", help="Who gave it (a user id, a reviewer)."),
    json_out: bool = JsonOption,
) -> None:
    """Attach feedback to a logged generation (one or more kinds at once, all or none written).

    Examples:
      honed logs feedback log-1a2b --thumbs up
      honed logs feedback log-1a2b --rating 4 --comment "right, but long"
      honed logs feedback log-1a2b --correction "Paris." --signal edited
    """
    from pydantic import ValidationError

    from honed.api import record_error
    from honed.logs.record import FeedbackRecord

    given: list[dict[str, Any]] = []
    if thumbs is not None:
        given.append({"kind": "thumbs", "value": float(_thumbs(thumbs) or 0)})
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
            hint="use --thumbs up|down, --rating N, --correction TEXT, --comment TEXT or --signal NAME",
        )
    try:
        rows = [FeedbackRecord(log_id=log_id, source=source, **g).row() for g in given]
    except ValidationError as exc:
        raise record_error("feedback", exc) from None
    with open_honed(require_workspace=True) as h:
        h.store.logs.add_feedback(rows)
    if json_out:
        print_json(rows)
    else:
        typer.echo(f"added {', '.join(r['kind'] for r in rows)} to {log_id}")


@app.command("eval")
def evaluate(
    evaluator: str = typer.Argument(
        ..., help='An evaluator type (e.g. "exact") or a JSON spec as in eval specs.'
    ),
    sample: float = typer.Option(
        1.0, "--sample", help="Fraction of matching logs to score (same logs each run)."
    ),
    prompt: str | None = PromptOpt,
    model: str | None = ModelOpt,
    source: str | None = SourceOpt,
    since: str | None = SinceOpt,
    until: str | None = UntilOpt,
    feedback: str | None = FeedbackOpt,
    session: str | None = SessionOpt,
    trace: str | None = TraceOpt,
    json_out: bool = JsonOption,
) -> None:
    """Score a deterministic sample of logged generations with an evaluator; logs this evaluator version
    already scored are skipped. A `correction` feedback is the reference.

    Examples:
      honed logs eval '{"type": "regex", "pattern": "^[A-Z]"}' --sample 0.2 --since 1d
      honed logs eval '{"type": "llm_judge", "name": "helpful", "model": "openai/gpt-4o-mini"}' --prompt qa
    """
    from honed.logs.online import evaluate_logs

    spec: str | dict[str, Any] = evaluator
    if evaluator.lstrip().startswith("{"):
        try:
            spec = json.loads(evaluator)
        except json.JSONDecodeError as exc:
            raise InvalidInputError(
                f"evaluator spec is not valid JSON ({exc.msg})", hint='e.g. {"type": "exact"}'
            ) from None
    where = build_filter(
        prompt=prompt,
        model=model,
        source=source,
        since=since,
        until=until,
        feedback=feedback,
        session=session,
        trace=trace,
    )
    with open_honed(require_workspace=True) as h:
        result = evaluate_logs(h, spec, where=where, sample=sample)
    if json_out:
        print_json(result.to_dict())
        return
    mean = f"{result.mean:.3f}" if result.mean is not None else "-"
    typer.echo(
        f"{result.evaluator}: {result.matched} matching, {result.sampled} in the sample, "
        f"{result.skipped} already scored, {result.scored} scored now ({result.errors} could not be judged), "
        f"mean {mean}"
    )
