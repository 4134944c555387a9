"""Review queues: outputs picked for people to label, in the web UI, with who labelled what and when.

A queue is made from a run (all its results, or only the ones that regressed against a baseline, as
`honed experiments compare` counts them) or from logs (a filter, as `honed logs list` takes it). Each
person's labels are their own (pass/fail, a 1-5 rating, a correction, a comment), so two people can label
the same items and their agreement is measured (Cohen's kappa on pass/fail). The labels land where the rest
of honed reads human judgment: a run's `human` scores (the rows `honed review --run` writes, so
`experiments show|compare` report them and judges are calibrated against them) or a log's feedback (the
rows `honed logs feedback` writes). Every change is recorded in the audit log with its user.

These are the functions the web UI calls; it parses, checks scope and renders, nothing more.
"""

from __future__ import annotations

import itertools
import uuid
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

from honed.errors import InvalidInputError
from honed.evals import stats
from honed.evals.calibration import CalibrationReport, calibrate
from honed.experiments.cases import list_cases
from honed.experiments.review import HUMAN, run_items
from honed.store.review import SCALES, ItemLabel, Queue, QueueItem, current_labels
from honed.store.schema import utcnow

if TYPE_CHECKING:
    from honed.store import Store
    from honed.store.logs import LogFilter

#: The most items one queue takes (a queue is for people to get through; a filter narrows a bigger set).
MAX_ITEMS = 5000
#: The audit log's kind for queues.
KIND = "queue"


def _check_scale(scale: str) -> None:
    if scale not in SCALES:
        raise InvalidInputError(f"unknown scale {scale!r}", hint=f"one of {', '.join(SCALES)}")


def _new(
    name: str,
    kind: str,
    run_id: str | None,
    source: dict[str, Any],
    scale: str,
    by: str,
    assignee: str | None,
) -> Queue:
    return Queue(
        id="q-" + uuid.uuid4().hex[:12],
        name=name[:200],
        kind=kind,
        run_id=run_id,
        source=source,
        scale=scale,
        assignee=assignee or None,
        created_by=by,
        created_at=utcnow(),
    )


def create_run_queue(
    store: Store,
    run_ref: str,
    *,
    by: str,
    regressions: bool = False,
    baseline: str | None = None,
    variant: str | None = None,
    scale: str = "pass_fail",
    name: str | None = None,
    assignee: str | None = None,
) -> Queue:
    """A queue of a run's results (one item per variant x case x sample that has an output), or with
    `regressions` only those of the variants that regressed on a case against `baseline` (the run's
    first variant by default), biggest change first."""
    _check_scale(scale)
    run, found = run_items(store, run_ref, variant=variant)
    by_key: dict[tuple[str, str, int], Any] = {}
    for item in found:
        # run_items names an item "variant | case | sample" (honed.experiments.review.item_id).
        v, case_id, sample = item.id.rsplit(" | ", 2)
        by_key[(v, case_id, int(sample))] = item
    variants = [str(v["id"]) for v in run.spec["variants"]]
    source: dict[str, Any] = {"run": run.id, "select": "all", "variant": variant}
    if regressions:
        listing = list_cases(store, run.id, baseline=baseline, changed="regressions")
        keys: list[tuple[str, str, int]] = []
        for case in listing.cases:
            changed = dict.fromkeys(c.variant for c in case.changes if c.kind == "regression")
            keys += [k for v in changed if variant in (None, v) for k in by_key if k[:2] == (v, case.case_id)]
        source.update(select="regressions", baseline=listing.baseline)
        what = f"regressions against {listing.baseline}"
        if not keys:
            raise InvalidInputError(
                f"run {run.id} has no regressions against {listing.baseline}",
                hint="make a queue of all its results, or pick another baseline",
            )
    else:
        keys = sorted(by_key, key=lambda k: (k[1], variants.index(k[0]) if k[0] in variants else 0, k[2]))
        what = "all results"
    if not keys:
        raise InvalidInputError(f"run {run.id} has no outputs to label", hint="its calls all failed")
    if len(keys) > MAX_ITEMS:
        raise InvalidInputError(
            f"{len(keys)} items are more than a queue takes ({MAX_ITEMS})",
            hint="pick one variant, or the regressions only",
        )
    items = [
        {
            "variant": k[0],
            "case_id": k[1],
            "sample_index": k[2],
            "log_id": None,
            "input": by_key[k].input,
            "output": by_key[k].output,
            "reference": by_key[k].reference,
        }
        for k in keys
    ]
    queue = _new(name or f"{run.name or run.id}: {what}", "run", run.id, source, scale, by, assignee)
    store.review.create(queue, items)
    store.audit.record(by, "queue.create", KIND, queue.id, {**source, "items": len(items), "scale": scale})
    return queue


def create_log_queue(
    store: Store,
    where: LogFilter,
    *,
    by: str,
    described: str = "",
    scale: str = "pass_fail",
    name: str | None = None,
    assignee: str | None = None,
    limit: int = 200,
) -> Queue:
    """A queue of the logs `where` selects that have an output (newest first, at most `limit`);
    `described` is the filter as the person wrote it (kept with the queue)."""
    _check_scale(scale)
    if not 1 <= limit <= MAX_ITEMS:
        raise InvalidInputError(f"limit {limit} is out of range", hint=f"from 1 to {MAX_ITEMS}")
    rows = [r for r in store.logs.query(replace(where, limit=limit)) if r.get("output") is not None]
    if not rows:
        raise InvalidInputError(
            "no log with an output matches the filter", hint="widen it (e.g. a longer --since)"
        )
    items = [
        {
            "variant": None,
            "case_id": None,
            "sample_index": None,
            "log_id": r["id"],
            "input": r["inputs"] if r.get("inputs") is not None else r.get("messages"),
            "output": r["output"],
            "reference": None,
        }
        for r in rows
    ]
    source = {"filter": described or "all logs", "limit": limit}
    queue = _new(name or f"logs: {described or 'all'}", "logs", None, source, scale, by, assignee)
    store.review.create(queue, items)
    store.audit.record(by, "queue.create", KIND, queue.id, {**source, "items": len(items), "scale": scale})
    return queue


def assign(store: Store, queue_id: str, assignee: str | None, *, by: str) -> Queue:
    """Give the queue to `assignee` (None or "": to nobody)."""
    before = store.review.get(queue_id)
    store.review.assign(queue_id, assignee or None)
    store.audit.record(by, "queue.assign", KIND, queue_id, {"from": before.assignee, "to": assignee or None})
    return store.review.get(queue_id)


def label(
    store: Store,
    queue_id: str,
    position: int,
    *,
    by: str,
    passed: bool | None = None,
    rating: int | None = None,
    correction: str | None = None,
    comment: str | None = None,
) -> ItemLabel:
    """Change `by`'s label of an item: the parts given (None: left as they are; a text of "" clears it).
    On a run's item the label becomes its `human` score; on a log, its feedback."""
    change: dict[str, Any] = {}
    if passed is not None:
        change["passed"] = passed
    if rating is not None:
        if not 1 <= rating <= 5:
            raise InvalidInputError(f"rating {rating} is not on the scale 1-5", hint="give 1, 2, 3, 4 or 5")
        change["rating"] = rating
    if correction is not None:
        change["correction"] = correction
    if comment is not None:
        change["comment"] = comment
    if not change:
        raise InvalidInputError(
            "nothing to label", hint="give pass/fail, a rating, a correction or a comment"
        )
    event = store.review.label(queue_id, position, by, change)
    store.audit.record(by, "queue.label", KIND, queue_id, {"position": position, **change})
    return event


def undo(store: Store, queue_id: str, *, by: str) -> ItemLabel | None:
    """Undo `by`'s latest label in the queue (their label before it is current again); None if none."""
    event = store.review.undo(queue_id, by)
    if event is not None:
        store.audit.record(by, "queue.undo", KIND, queue_id, {"position": event.position, "label": event.id})
    return event


@dataclass(frozen=True)
class Progress:
    """Items labelled (on the queue's scale) by anyone, by the viewer, and in all."""

    labelled: int
    mine: int
    total: int


@dataclass(frozen=True)
class PairAgreement:
    """Two reviewers on the items both labelled pass/fail: how many, how often they agree, Cohen's kappa
    (None when undefined: both gave one and the same label to everything)."""

    first: str
    second: str
    n: int
    accuracy: float | None
    kappa: float | None


@dataclass(frozen=True)
class JudgeAgreement:
    """An automatic evaluator (an LLM judge) against the human labels of the queue's items: the
    calibration report, or why there is none."""

    evaluator: str
    kind: str
    report: CalibrationReport | None
    problem: str | None = None


@dataclass(frozen=True)
class QueueView:
    """What a queue's page shows: the queue, its progress, and agreement between people and with judges."""

    queue: Queue
    progress: Progress
    reviewers: dict[str, int]  # reviewer -> items they labelled
    pairs: list[PairAgreement]
    judges: list[JudgeAgreement]
    labels: dict[tuple[int, str], ItemLabel]
    next_position: int | None  # the viewer's first item without their label


def kappa(first: dict[int, bool], second: dict[int, bool]) -> tuple[int, float | None, float | None]:
    """(n, accuracy, Cohen's kappa) of two raters' pass/fail labels on the items both labelled."""
    both = sorted(set(first) & set(second))
    a = [first[i] for i in both]
    b = [second[i] for i in both]
    if not both:
        return 0, None, None
    return len(both), stats.accuracy(a, b), stats.cohen_kappa(a, b, labels=[False, True])


def progress(
    store: Store, queue: Queue, viewer: str, labels: dict[tuple[int, str], ItemLabel] | None = None
) -> Progress:
    labels = store.review.labels(queue.id) if labels is None else labels
    valued = [(p, r) for (p, r), x in labels.items() if x.value(queue.scale) is not None]
    return Progress(
        labelled=len({p for p, _ in valued}),
        mine=sum(1 for _, r in valued if r == viewer),
        total=store.review.size(queue.id),
    )


def human_labels(queue: Queue, labels: dict[tuple[int, str], ItemLabel]) -> dict[int, ItemLabel]:
    """Position -> the label that stands for the item (the latest of any reviewer's carrying the scale's
    value): the same rule that makes a run item's `human` score (`honed.store.review`)."""
    out: dict[int, ItemLabel] = {}
    for (position, _), x in labels.items():
        if x.value(queue.scale) is None:
            continue
        if position not in out or (x.at, x.id) > (out[position].at, out[position].id):
            out[position] = x
    return out


def _judges(
    store: Store, queue: Queue, items: list[QueueItem], human: dict[int, ItemLabel]
) -> list[JudgeAgreement]:
    by_evaluator: dict[str, dict[str, float | None]] = {}
    kinds: dict[str, str] = {}
    if queue.run_id is not None:
        run = store.runs.get(queue.run_id)
        kinds = {str(e["name"]): str((e.get("spec") or {}).get("type", "")) for e in run.spec["evaluators"]}
        where = {(i.variant, i.case_id, i.sample_index or 0): i.position for i in items}
        for s in store.runs.scores(run.id):
            position = where.get((s["variant"], s["case_id"], int(s["sample_index"])))
            if position is not None and s["evaluator"] != HUMAN:
                by_evaluator.setdefault(s["evaluator"], {})[str(position)] = _judged(s, queue.scale)
    else:
        positions = {i.log_id: i.position for i in items if i.log_id is not None}
        for log_id, found in store.logs.scores_for(positions).items():
            for evaluator, s in found.items():
                by_evaluator.setdefault(evaluator, {})[str(positions[log_id])] = _judged(s, queue.scale)
    human_values = {str(p): x.value(queue.scale) for p, x in human.items()}
    out = []
    for evaluator in sorted(by_evaluator):
        try:
            report = calibrate(by_evaluator[evaluator], human_values, scale=queue.scale)
        except InvalidInputError as exc:  # e.g. a 0-1 score against labels on 1-5
            out.append(JudgeAgreement(evaluator, kinds.get(evaluator, ""), None, exc.one_line()))
            continue
        out.append(JudgeAgreement(evaluator, kinds.get(evaluator, ""), report))
    return out


def _judged(score: dict[str, Any], scale: str) -> float | None:
    if score.get("error") is not None or score.get("value") is None:
        return None
    if scale == "pass_fail" and score.get("passed") is not None:
        return float(score["passed"])
    return float(score["value"])


def view(store: Store, queue_id: str, viewer: str) -> QueueView:
    """A queue with its progress, each reviewer's count, agreement of every pair of reviewers, and of
    each automatic evaluator with the human labels."""
    queue = store.review.get(queue_id)
    labels = current_labels(store.review.events(queue.id))
    items = store.review.items(queue.id)
    passes: dict[str, dict[int, bool]] = {}
    counts: dict[str, int] = {}
    for (position, reviewer), x in labels.items():
        if x.passed is not None:
            passes.setdefault(reviewer, {})[position] = x.passed
        if x.value(queue.scale) is not None:
            counts[reviewer] = counts.get(reviewer, 0) + 1
    pairs = []
    for a, b in itertools.combinations(sorted(passes), 2):
        n, accuracy, k = kappa(passes[a], passes[b])
        if n:
            pairs.append(PairAgreement(a, b, n, accuracy, k))
    mine = {p for (p, r), x in labels.items() if r == viewer and x.value(queue.scale) is not None}
    return QueueView(
        queue=queue,
        progress=progress(store, queue, viewer, labels),
        reviewers=dict(sorted(counts.items())),
        pairs=pairs,
        judges=_judges(store, queue, items, human_labels(queue, labels)),
        labels=labels,
        next_position=next((i.position for i in items if i.position not in mine), None),
    )
