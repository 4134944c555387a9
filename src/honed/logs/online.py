"""Online evaluation: any registered evaluator, run on a deterministic sample of logged generations.

The sample is decided by the log id alone (a hash of it against the rate), so running again picks the
same logs, a larger rate picks a superset, and two evaluators at the same rate score the same logs.
A log already scored by the same evaluator version is skipped, so a re-run only scores what is new, and
a changed evaluator (a new version) re-scores. A `correction` feedback on a log is the evaluator's
reference: the output a user said it should have been. `OnlineEvaluation` runs the `[logging]
online_eval` rules continuously in a long-running process.
"""

from __future__ import annotations

import asyncio
import hashlib
import sys
import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from honed.config import OnlineEvalRule, Settings
from honed.errors import HonedError, InvalidInputError
from honed.evals.evaluators import BuildContext, EvalInput, Evaluator, Score, build_evaluator
from honed.evals.evaluators.agent import TRACE_KINDS
from honed.evals.evaluators.base import NO_REFERENCE, Trajectory
from honed.evals.evaluators.human import NOT_LABELLED
from honed.logs.trajectory import ends_of_traces
from honed.store.logs import LogFilter

if TYPE_CHECKING:
    from honed.workspace import Workspace

_CHUNK = 200


def in_sample(log_id: str, rate: float) -> bool:
    """Whether `log_id` is in a sample of `rate` (0..1): the first 8 bytes of its SHA-256 as a fraction."""
    if rate >= 1:
        return True
    digest = hashlib.sha256(log_id.encode("utf-8")).digest()
    return int.from_bytes(digest[:8], "big") / 2**64 < rate


#: Score errors that say a score is absent by design (no correction to compare with, no human label),
#: not that the evaluator failed.
ABSENT = frozenset({NO_REFERENCE, NOT_LABELLED})
#: How much of an evaluator's raw answer an error group keeps as its example.
EXAMPLE_CHARS = 500


@dataclass(frozen=True, slots=True)
class ErrorGroup:
    """Scores that could not be made, grouped by error and reason: how many, and one example (the log
    and, where the evaluator got an answer it could not read, that raw answer, cut to EXAMPLE_CHARS)."""

    error: str
    reason: str | None
    count: int
    example_log: str
    example_raw: str | None

    @property
    def absent(self) -> bool:
        """The score is absent by design (no reference, no label): not a failed evaluation."""
        return self.error in ABSENT

    def to_dict(self) -> dict[str, Any]:
        return {
            "error": self.error,
            "reason": self.reason,
            "count": self.count,
            "absent": self.absent,
            "example_log": self.example_log,
            "example_raw": self.example_raw,
        }


@dataclass(frozen=True, slots=True)
class OnlineEvalResult:
    """What one pass did: logs matching the filter, in the sample, already scored, scored now (and how
    many of those the evaluator could not judge, grouped by why, most frequent first)."""

    evaluator: str
    version: str
    matched: int
    sampled: int
    skipped: int
    scored: int
    errors: int
    mean: float | None
    error_groups: tuple[ErrorGroup, ...] = ()

    @property
    def failed(self) -> bool:
        """Whether the evaluator failed on a log (raised, or could not read a judge's answer); a log
        without a correction to compare with is an absent score, not a failure."""
        return any(not g.absent for g in self.error_groups)

    def to_dict(self) -> dict[str, Any]:
        return {
            "evaluator": self.evaluator,
            "version": self.version,
            "matched": self.matched,
            "sampled": self.sampled,
            "skipped": self.skipped,
            "scored": self.scored,
            "errors": self.errors,
            "mean": self.mean,
            "failed": self.failed,
            "error_groups": [g.to_dict() for g in self.error_groups],
        }


class _Errors:
    """Collects the failed scores of a pass into `ErrorGroup`s."""

    def __init__(self) -> None:
        self._groups: dict[tuple[str, str | None], ErrorGroup] = {}

    def add(self, log_id: str, score: Score) -> None:
        if score.error is None:
            return
        reason = score.reason if score.reason and score.reason != score.error else None
        key = (score.error, reason)
        group = self._groups.get(key) or ErrorGroup(score.error, reason, 0, log_id, None)
        if group.example_raw is None and score.raw is not None:  # an example that shows what was read
            group = replace(group, example_log=log_id, example_raw=score.raw[:EXAMPLE_CHARS])
        self._groups[key] = replace(group, count=group.count + 1)

    def groups(self) -> tuple[ErrorGroup, ...]:
        return tuple(sorted(self._groups.values(), key=lambda g: (-g.count, g.error, g.reason or "")))


def evaluator_from(h: Workspace, evaluator: str | Mapping[str, Any] | Evaluator) -> Evaluator:
    """An evaluator from a type name (`"exact"`), a spec as in eval specs, or an evaluator itself."""
    if isinstance(evaluator, Evaluator):
        return evaluator
    spec: Mapping[str, Any] = {"type": evaluator} if isinstance(evaluator, str) else evaluator
    root = h.settings.root
    return build_evaluator(spec, context=BuildContext(client=h.client, root=root))


def _eval_input(
    log: dict[str, Any], feedback: list[dict[str, Any]], trace: Trajectory | None = None
) -> EvalInput:
    corrections = [f["text"] for f in feedback if f["kind"] == "correction" and f.get("text")]
    inputs = log.get("inputs")
    if not inputs and log.get("messages"):
        users = [m for m in log["messages"] if m.get("role") == "user"]
        inputs = {"input": users[-1].get("content")} if users else {}
    metadata = dict(log.get("metadata") or {})
    return EvalInput(
        output=log.get("output") or "",
        inputs=dict(inputs or {}),
        reference=corrections[-1] if corrections else None,
        metadata=metadata,
        id=log["id"],
        tool_calls=metadata.get("tool_calls"),
        trace=trace,
    )


def _score_row(log_id: str, ev: Evaluator, s: Score) -> dict[str, Any]:
    return {
        "log_id": log_id,
        "evaluator": ev.name,
        "evaluator_version": ev.version,
        "value": s.value,
        "passed": s.passed,
        "reason": s.reason or None,
        "error": s.error,
        "created_at": datetime.now(UTC),
    }


async def aevaluate_logs(
    h: Workspace,
    evaluator: str | Mapping[str, Any] | Evaluator,
    *,
    where: LogFilter | None = None,
    sample: float = 1.0,
) -> OnlineEvalResult:
    """Score the sampled logs matching `where` (logs that ended in an error are left out) that this
    evaluator version has not scored yet, writing each chunk's scores as it finishes."""
    if not 0 < sample <= 1:
        raise InvalidInputError(f"sample rate {sample} is out of range", hint="use a fraction in (0, 1]")
    ev = evaluator_from(h, evaluator)
    store = h.store
    where = replace(where or LogFilter(), has_error=False)
    logs = await asyncio.to_thread(store.logs.query, where)
    traces: dict[str, Trajectory] = {}
    if ev.kind in TRACE_KINDS:
        # A trace is scored once, on the generation that ends it (see honed.logs.trajectory).
        logs, traces = await asyncio.to_thread(ends_of_traces, store, logs)
    picked = [log for log in logs if in_sample(log["id"], sample)]
    have = await asyncio.to_thread(store.logs.scores_for, [log["id"] for log in picked])
    todo = [log for log in picked if have[log["id"]].get(ev.name, {}).get("evaluator_version") != ev.version]
    scored = errors = 0
    values: list[float] = []
    failures = _Errors()
    try:
        for start in range(0, len(todo), _CHUNK):
            chunk = todo[start : start + _CHUNK]
            feedback = await asyncio.to_thread(store.logs.feedback_for, [log["id"] for log in chunk])
            scores = await ev.evaluate_many(
                [_eval_input(log, feedback[log["id"]], traces.get(log["id"])) for log in chunk]
            )
            rows = [_score_row(log["id"], ev, s) for log, s in zip(chunk, scores, strict=True)]
            await asyncio.to_thread(store.logs.put_scores, rows)
            scored += len(rows)
            errors += sum(1 for s in scores if s.error is not None)
            for log, score in zip(chunk, scores, strict=True):
                failures.add(log["id"], score)
            values += [s.value for s in scores if s.value is not None]
    finally:
        await ev.aclose()
    return OnlineEvalResult(
        ev.name,
        ev.version,
        matched=len(logs),
        sampled=len(picked),
        skipped=len(picked) - len(todo),
        scored=scored,
        errors=errors,
        mean=sum(values) / len(values) if values else None,
        error_groups=failures.groups(),
    )


def evaluate_logs(
    h: Workspace,
    evaluator: str | Mapping[str, Any] | Evaluator,
    *,
    where: LogFilter | None = None,
    sample: float = 1.0,
) -> OnlineEvalResult:
    """`aevaluate_logs`, synchronously (not from inside a running event loop). Logs queued by this
    process are written first, so they can be scored."""
    h.flush_logs()

    async def main() -> OnlineEvalResult:
        try:
            return await aevaluate_logs(h, evaluator, where=where, sample=sample)
        finally:
            h.client.flush()

    return asyncio.run(main())


class OnlineEvaluation:
    """Scores the logs that arrive while a long-running process (`honed serve`) runs: every
    `interval_s`, each rule's evaluator scores its sample of the logs written since the evaluation
    started, in a background thread.

    It opens its own connection to the workspace (store and model client): the server's client belongs
    to the server's event loop. A pass is cheap when nothing arrived, because logs a rule's evaluator
    version has scored are skipped. A failing pass (a judge endpoint down) is reported on stderr and
    tried again at the next interval; it never stops the server.
    """

    def __init__(
        self,
        settings: Settings,
        rules: Sequence[OnlineEvalRule],
        *,
        interval_s: float,
        since: datetime | None = None,
    ) -> None:
        from honed.api import Honed

        self.rules = list(rules)
        self.interval_s = interval_s
        self.since = since or datetime.now(UTC)
        self.passes = 0
        self.last_error: str | None = None
        self._h = Honed(settings, use_cache=False)
        # Built now, so a rule naming an unknown evaluator fails before the server starts.
        self._evaluators = [evaluator_from(self._h, rule.evaluator) for rule in self.rules]
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def run_once(self) -> list[OnlineEvalResult]:
        """One pass over every rule (what the thread does each interval)."""
        results = []
        for rule, ev in zip(self.rules, self._evaluators, strict=True):
            where = LogFilter(prompt=rule.prompt, model=rule.model, source=rule.source, since=self.since)
            results.append(evaluate_logs(self._h, ev, where=where, sample=rule.sample))
        self.passes += 1
        return results

    def start(self) -> OnlineEvaluation:
        self._thread = threading.Thread(target=self._loop, name="honed-online-eval", daemon=True)
        self._thread.start()
        return self

    def stop(self, timeout: float | None = 30) -> None:
        """Stop after the pass under way (if any) and close the connection."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)
        self._h.close()

    def _loop(self) -> None:
        while not self._stop.wait(self.interval_s):
            try:
                self.run_once()
                self.last_error = None
            except HonedError as exc:
                self.last_error = exc.one_line()
                sys.stderr.write(f"honed online evaluation: {self.last_error} (retrying)\n")
