"""`honed logs list|show|feedback|eval`: logged generations, what users said about them, online scores."""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import typer

from honed.cli.common import (
    JsonOption,
    WideOption,
    console,
    fmt_cost,
    fmt_latency,
    open_honed,
    parse_json_option,
    print_json,
    print_table,
    short_ids,
)
from honed.cli.option_sets import OptionSet, unset
from honed.errors import InvalidInputError
from honed.hashing import short
from honed.logs.filters import build_filter

if TYPE_CHECKING:
    from honed.api import Honed
    from honed.logs.online import OnlineEvalResult
    from honed.store.logs import LogFilter

app = typer.Typer(
    help="Logged generations: list and filter them, add feedback, score them with evaluators.",
    no_args_is_help=True,
)


#: The log filters of `logs list|eval` and `logs curate`, parsed by `build_filter` as the web UI's are.
LOG_FILTERS = OptionSet(
    {
        "prompt": unset("--prompt", "Only logs of this prompt."),
        "prompt_version": unset("--prompt-version", "Only logs of this version."),
        "model": unset("--model", "Only logs of this model reference."),
        "source": unset("--source", "Only logs from app, serve, experiment, api or judge."),
        "since": unset("--since", "Logged at or after: ISO time or a span back (1h, 7d)."),
        "until": unset("--until", "Logged before: ISO time or a span back (1h, 7d)."),
        "feedback": unset("--feedback", "Only logs with feedback of this kind (e.g. correction)."),
        "thumbs": unset("--thumbs", "Only logs whose latest thumbs is up or down."),
        "approved": (
            bool,
            typer.Option(
                False, "--approved", help="Only logs a person vouched for: latest thumbs up, or corrected."
            ),
        ),
        "min_rating": unset("--min-rating", "Only logs rated at least this.", float | None),
        "min_score": unset(
            "--min-score", "EVALUATOR=X: only logs it scored at least X (repeatable).", list[str] | None
        ),
        "session": unset("--session", "Only logs of this session id."),
        "trace": unset("--trace", "Only logs of this trace id."),
        "errors": unset("--errors/--no-errors", "Only failed calls / only successful ones.", bool | None),
    },
    build_filter,
)


def _short(text: Any, width: int = 60) -> str:
    flat = " ".join(str(text or "").split())
    return flat if len(flat) <= width else flat[: width - 1] + "…"


@app.command("list")
@LOG_FILTERS.without("prompt_version", "approved", "min_rating").into("where")
def list_logs(
    where: LogFilter,
    limit: int = typer.Option(50, "--limit", "-n", min=1, help="At most this many, newest first."),
    wide: bool = WideOption,
    json_out: bool = JsonOption,
) -> None:
    """List logged generations, newest first, one line each (ids shortened to unique prefixes).

    Examples:
      honed logs list --since 1h --model local/smollm2-135m-instruct
      honed logs list --thumbs down --prompt qa --json
      honed logs list --min-score helpfulness=4 --no-errors
      honed logs list --wide | less -S     # full ids, every column, whole outputs
    """
    where = replace(where, limit=limit)
    with open_honed(require_workspace=True) as h:
        rows = h.store.logs.query(where)
        # A full page may be the limit's doing: count what matched, to say how much is not shown.
        total = h.store.logs.count(replace(where, limit=None)) if len(rows) == limit else len(rows)
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
    _print_logs(rows, fb, scores, wide=wide, total=total)


def _print_logs(
    rows: list[dict[str, Any]],
    fb: dict[str, list[dict[str, Any]]],
    scores: dict[str, dict[str, dict[str, Any]]],
    *,
    wide: bool,
    total: int | None = None,
) -> None:
    """One line per log at 100 columns: ids shortened to unique prefixes (which `logs show` takes), what
    every row shares said once in the title, the output cut to the width left; `wide` shows it all."""
    ids = short_ids(r["id"] for r in rows)
    this_year = datetime.now(UTC).year
    stamp = "%m-%d %H:%M" if all(r["created_at"].year == this_year for r in rows) else "%Y-%m-%d %H:%M"
    title = f"{len(rows)} log(s)"
    if total is not None and total > len(rows):
        title = f"{len(rows)} of {total} log(s) shown (--limit N for more)"
    shared: dict[str, str] = {}
    if not wide and len(rows) > 1:
        for key in ("source", "model", "prompt"):
            values = {r[key] for r in rows}
            if len(values) == 1 and None not in values:
                shared[key] = str(values.pop())
        title += "".join(f" · {key} {value}" for key, value in shared.items())
    if wide:
        columns = [
            "id",
            "time",
            "source",
            "model",
            "prompt",
            "output",
            "latency",
            "queued",
            "feedback",
            "scores",
        ]
    else:  # the source and prompt of each row are in the title when shared, else behind --wide
        columns = ["id", "time", "model", "output", "latency", "feedback, scores"]
    columns = [c for c in columns if c not in shared]
    table = []
    for r in rows:
        kinds = _feedback_marks(fb[r["id"]])
        marks = ", ".join(f"{k}={v['value']:g}" for k, v in scores[r["id"]].items() if v["value"] is not None)
        cells = {
            "id": r["id"] if wide else ids[r["id"]],
            "time": r["created_at"].strftime("%Y-%m-%d %H:%M:%S" if wide else stamp),
            "source": r["source"],
            "model": r["model"],
            "prompt": r["prompt"] or "",
            "output": "ERROR: " + str(r["error"]) if r["error"] else r["output"],
            "latency": fmt_latency(r["latency_s"]) if r["latency_s"] is not None else "",
            "queued": fmt_latency(r["queue_s"]) if r.get("queue_s") is not None else "",
            "feedback": kinds,
            "scores": marks,
            "feedback, scores": "; ".join(x for x in (kinds, marks) if x),
        }
        table.append([cells[c] for c in columns])
    print_table(
        title,
        ["feedback" if c == "feedback, scores" else c for c in columns],
        table,
        ratios={"output": 1},
        one_line=True,
        max_widths={"model": 22, "feedback": 20},
        wide=wide,
    )
    if not wide:
        console.print(
            "latency: time in the model (queued time apart); --wide: full ids, source, prompt, queued",
            style="dim",
            highlight=False,
        )


@app.command("show")
def show(
    log_id: str = typer.Argument(..., help="The log id, or any unique prefix of it (log-27cb8bdf)."),
    json_out: bool = JsonOption,
) -> None:
    """Show one logged generation: its messages, output, feedback and scores.

    Example: honed logs show log-27cb8bdf
    """
    with open_honed(require_workspace=True) as h:
        entry = h.store.logs.get(log_id)
        log = entry.log
        prompt_ref = None if json_out else _prompt_ref(h, log["prompt"], log["prompt_version"])
    if json_out:
        print_json({**entry.log, "feedback": entry.feedback, "scores": entry.scores})
        return
    facts = [
        ("id", log["id"]),
        ("time", log["created_at"].isoformat()),
        ("source", log["source"]),
        ("model", log["model"]),
        ("prompt", prompt_ref),
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
                (
                    f["created_at"].strftime("%Y-%m-%d %H:%M:%S"),
                    f["kind"],
                    _feedback_value(f["kind"], f["value"]),
                    f["text"],
                    f["source"],
                )
                for f in entry.feedback
            ],
        )
    if entry.scores:
        print_table(
            "scores",
            ["evaluator", "value", "passed", "reason"],
            [(s["evaluator"], s["value"], s["passed"], s["error"] or s["reason"]) for s in entry.scores],
        )


def _prompt_ref(h: Honed, prompt: str | None, version: str | None) -> str | None:
    """`qa@v1 (aff038fb9aa7)` when the store has the version under the name, else `qa@aff038fb9aa7`
    (a hash prefix is a reference too, so either form can be copied into `prompts show`)."""
    if not prompt:
        return None
    if not version:
        return prompt
    shown = short(version) if version.startswith("sha256:") else version
    for kind in ("prompt", "chain"):
        for known in h.store.names.history(kind, prompt):
            if known.hash == version:
                return f"{prompt}@v{known.number} ({shown})"
    return f"{prompt}@{shown}"


def _feedback_marks(items: list[dict[str, Any]]) -> str:
    """A log's feedback in a few words: the latest thumbs as up or down, the latest rating as N/5, then
    `corrected`, `comment` and implicit signals (`edited`, `copied` ...) by name."""
    latest: dict[str, dict[str, Any]] = {f["kind"]: f for f in items}  # items are oldest first
    marks: list[str] = []
    if "thumbs" in latest:  # plain words: a listing stays aligned where emoji widths differ
        marks.append("up" if latest["thumbs"]["value"] == 1 else "down")
    if "rating" in latest:
        marks.append(_feedback_value("rating", latest["rating"]["value"]) or "rating")
    others = sorted(set(latest) - {"thumbs", "rating"})
    marks += ["corrected" if kind == "correction" else kind for kind in others]
    return ", ".join(marks)


def _feedback_value(kind: str, value: float | None) -> str | None:
    """Thumbs as up/down, a rating as N/5 (the scale `logs feedback --rating` asks for), else the number."""
    if value is None:
        return None
    if kind == "thumbs":
        return "👍 up" if value == 1 else "👎 down"
    if kind == "rating" and 0 <= value <= 5:
        return f"{value:g}/5"
    return f"{value:g}"


@app.command("feedback")
def add_feedback(
    log_id: str = typer.Argument(..., help="The log id, or any unique prefix of it."),
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
    from honed.api import record_hint
    from honed.logs.feedback import feedback_rows, record_feedback

    if (thumbs, rating, correction, comment, signal) == (None,) * 5:
        raise InvalidInputError(
            "no feedback given",
            hint="use --thumbs up|down, --rating N, --correction TEXT, --comment TEXT or --signal NAME",
        )
    # Checked before a workspace is opened; the web UI's log page gives feedback through the same two calls.
    rows = feedback_rows(
        log_id,
        thumbs=thumbs,
        rating=rating,
        correction=correction,
        comment=comment,
        signal=signal,
        source=source,
        hint=record_hint("feedback"),
    )
    with open_honed(require_workspace=True) as h:
        log_id, rows = record_feedback(h.store, log_id, rows)
    if json_out:
        print_json(rows)
    else:
        typer.echo(f"added {', '.join(r['kind'] for r in rows)} to {log_id}")


@app.command("eval")
@LOG_FILTERS.without("prompt_version", "thumbs", "approved", "min_rating", "min_score", "errors").into(
    "where"
)
def evaluate(
    evaluator: str = typer.Argument(
        ..., help='An evaluator type (e.g. "exact") or a JSON spec as in eval specs.'
    ),
    sample: float = typer.Option(
        1.0, "--sample", help="Fraction of matching logs to score (same logs each run)."
    ),
    *,
    where: LogFilter,
    json_out: bool = JsonOption,
) -> None:
    """Score a deterministic sample of logged generations with an evaluator; logs this evaluator version
    already scored are skipped. A `correction` feedback is the reference.

    Evaluations that failed (an evaluator that raised, a judge answer that cannot be read) are printed
    grouped by error with counts and an example answer, kept on their score rows, and make the command
    exit 3; logs without a correction to compare with only go without a score.

    Examples:
      honed logs eval '{"type": "regex", "pattern": "^[A-Z]"}' --sample 0.2 --since 1d
      honed logs eval '{"type": "llm_judge", "name": "helpful", "model": "openai/gpt-4o-mini"}' --prompt qa
    """
    from honed.logs.online import evaluate_logs

    spec: str | dict[str, Any] = evaluator
    if evaluator.lstrip().startswith("{"):
        spec = parse_json_option(evaluator, "evaluator spec", '{"type": "exact"}')
    with open_honed(require_workspace=True) as h:
        result = evaluate_logs(h, spec, where=where, sample=sample)
    if json_out:
        print_json(result.to_dict())
    else:
        _print_online_eval(result)
    if result.failed:
        raise typer.Exit(3)  # README "Exit codes": evaluations failed; their scores hold the errors


def _print_online_eval(result: OnlineEvalResult) -> None:
    """The pass's counts, then its errors grouped with counts, each with one example of the raw answer."""
    from rich.text import Text

    from honed.cli.common import err_console

    mean = f"{result.mean:.3f}" if result.mean is not None else "-"
    failed = sum(g.count for g in result.error_groups if not g.absent)
    absent = sum(g.count for g in result.error_groups if g.absent)
    typer.echo(
        f"{result.evaluator}: {result.matched} matching, {result.sampled} in the sample, "
        f"{result.skipped} already scored, {result.scored} scored now ({failed} failed, {absent} without "
        f"a score), mean {mean}"
    )
    for bad in (True, False):
        groups = [g for g in result.error_groups if g.absent != bad]
        if not groups:
            continue
        n = sum(g.count for g in groups)
        if bad:
            err_console.print(Text(f"{n} evaluation(s) failed:", style="bold red"))
        else:
            err_console.print(Text(f"{n} log(s) without a score (not failures):"))
        for g in groups:
            why = f" ({g.reason})" if g.reason else ""
            err_console.print(Text(f"  {g.count:>5} x {g.error}{why}"))
            if g.example_raw is not None:
                raw = g.example_raw if len(g.example_raw) <= 200 else g.example_raw[:200] + " …"
                err_console.print(Text(f"          e.g. log {g.example_log} answered: {raw!r}"))
