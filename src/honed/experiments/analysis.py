"""From a run's rows to numbers a person can trust: per-variant summaries and paired comparisons.

For each evaluator, each variant's scores become a (cases x repeats) matrix, errored calls and unparseable
judgments as NaN (excluded and counted, never zeros), and `honed.evals.stats.many` compares every variant
with the baseline on the same cases. Cost, tokens and latency are summarised from the result rows (latency
as `honed.experiments.latency` says).

A run can hold hundreds of thousands of rows, so the rows are not loaded as such: the database sums the
usage per variant, and each (evaluator, variant) matrix is read as four columns (case, sample, value,
passed) and filled with one numpy assignment. Those queries live in `honed.store.snapshot`, all on one
transaction.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt
from numpy.typing import NDArray

from honed.errors import HonedError, InvalidInputError
from honed.evals.evaluators.base import NO_REFERENCE
from honed.evals.evaluators.human import NOT_LABELLED
from honed.evals.stats import ManyResult, ScoreMatrix, many
from honed.experiments import latency
from honed.prompts import get_prompt

if TYPE_CHECKING:
    from honed.store import Store
    from honed.store.runs import Run
    from honed.store.snapshot import RunSnapshot

FloatArray = NDArray[np.float64]
#: Score errors that say a score is absent by design, not that an evaluator failed.
ABSENT = frozenset({NO_REFERENCE, NOT_LABELLED})


@dataclass(frozen=True)
class Usage:
    calls: int
    errors: int
    cached: int
    cost_usd: float | None
    input_tokens: int
    output_tokens: int
    #: Time in the model per call (see `honed.experiments.latency`): p50 and p95 over `latency_calls`
    #: calls, measured `latency_mode` ("one at a time" after the run on a model that batches, else "in the
    #: run", a cached row keeping its call's figure); None when no call returned.
    latency_p50_s: float | None = None
    latency_p95_s: float | None = None
    latency_calls: int | None = None
    latency_mode: str | None = None
    #: the run's own p50 when the figures above were timed one at a time (what batching made of it)
    run_latency_p50_s: float | None = None
    #: the earlier run of the same spec whose timing is kept, when every call here came from the cache
    latency_timed_by: str | None = None
    #: time queued for a slot or a batch, p50 (None when not recorded)
    queue_p50_s: float | None = None

    def to_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


@dataclass(frozen=True)
class RunReport:
    run: Run
    variants: list[str]
    baseline: str
    evaluators: list[str]
    usage: dict[str, Usage]
    stats: dict[str, ManyResult]  # by evaluator
    #: Per variant whose prompt retrieves: how often the gold context was retrieved, and each failed
    #: case attributed to retrieval or generation (judged by `retrieval_judge`); empty without retrieval.
    retrieval: dict[str, dict[str, Any]] = field(default_factory=dict)
    retrieval_judge: str | None = None
    #: (where, message, count): calls that failed after their retries ("call") and evaluators that failed
    #: on a result (the evaluator's name), grouped by message, most frequent first.
    errors: list[tuple[str, str, int]] = field(default_factory=list)

    @property
    def failed(self) -> bool:
        """Whether a call failed after its retries or an evaluator failed (raised, or could not judge):
        such a run is not a clean result. A case without a reference or a human label yet is not a
        failure, only a score that is absent."""
        return any(where == "call" or message not in ABSENT for where, message, _ in self.errors)

    def to_dict(self) -> dict[str, Any]:
        return {
            "run": {
                "id": self.run.id,
                "name": self.run.name,
                "status": self.run.status,
                "created_at": self.run.created_at.isoformat(),
                "spec": self.run.spec,
            },
            "baseline": self.baseline,
            "variants": self.variants,
            "usage": {k: v.to_dict() for k, v in self.usage.items()},
            "evaluators": {k: v.to_dict() for k, v in self.stats.items()},
            "retrieval": self.retrieval,
            "retrieval_judge": self.retrieval_judge,
            "errors": [{"where": w, "message": m, "count": n} for w, m, n in self.errors],
        }


def analyse(
    store: Store, run_ref: str, *, baseline: str | None = None, n_boot: int = 10_000, seed: int = 0
) -> RunReport:
    run = store.runs.get(run_ref)
    spec = run.spec
    variants = [v["id"] for v in spec["variants"]]
    evaluators = run_evaluators(store, run)
    base = variants[0] if baseline is None else find_variant(store, run, baseline)
    repeats = int(spec["repeats"])
    with store.runs.snapshot(run.id) as snapshot:  # one transaction for every number
        case_ids = snapshot.case_ids()
        usage = _usage(snapshot, run, variants)
        matrices = {
            (ev, v): score_matrix(snapshot, ev, v, case_ids, repeats) for ev in evaluators for v in variants
        }
    stats = {
        ev: many({v: matrices[ev, v] for v in variants}, base, n_boot=n_boot, n_perm=n_boot, seed=seed)
        for ev in evaluators
    }
    judge, retrieval = _retrieval(store, run, evaluators)
    errors = store.runs.error_groups(run.id)
    return RunReport(run, variants, base, evaluators, usage, stats, retrieval, judge, errors)


#: Analyses kept by `analyse_latest`, newest use last; a handful of runs open in a team's browsers.
_KEEP = 16
_REPORTS: OrderedDict[tuple[Any, ...], RunReport] = OrderedDict()
_REPORTS_LOCK = threading.Lock()


def analyse_latest(store: Store, run_ref: str, *, baseline: str | None = None) -> RunReport:
    """`analyse` with its defaults (the numbers `honed experiments compare` prints), remembered while the
    run does not change: a run's page shown again, filtered or paged through costs the fingerprint's
    queries (`store.runs.fingerprint`) instead of the statistics. A label added to the run, a resumed
    run's new results, a status change: each changes the fingerprint, and the run is analysed again."""
    run = store.runs.get(run_ref)
    key = (store.url, run.id, baseline, store.runs.fingerprint(run.id))
    with _REPORTS_LOCK:
        found = _REPORTS.get(key)
        if found is not None:
            _REPORTS.move_to_end(key)
            return found
    report = analyse(store, run.id, baseline=baseline)
    with _REPORTS_LOCK:
        _REPORTS[key] = report
        while len(_REPORTS) > _KEEP:
            _REPORTS.popitem(last=False)
    return report


def run_evaluators(store: Store, run: Run) -> list[str]:
    """The evaluators of the run's spec, then those whose scores were added after the run (human labels
    from `honed review --run` or a review queue), which are reported like the others."""
    named = [str(e["name"]) for e in run.spec.get("evaluators", [])]
    return named + sorted(store.runs.evaluators(run.id) - set(named))


def find_variant(store: Store, run: Run, ref: str) -> str:
    """The id of the variant of `run` that `ref` names: its id, or a prompt reference (`qa@v1`, a label,
    a hash prefix) that exactly one variant runs, which is how a run whose variants also name a model or
    params is compared against one prompt version. Several matches are an error listing them."""
    described = run.spec["variants"]
    ids = [str(v["id"]) for v in described]
    if ref in ids:
        return ref
    matches = [str(v["id"]) for v in described if v.get("prompt") == ref]
    if not matches and "@" in ref and not ref.endswith((".yaml", ".yml")):
        try:
            version, _ = get_prompt(store, ref)
        except HonedError:
            version = None
        if version is not None:
            matches = [str(v["id"]) for v in described if v.get("prompt_hash") == version.hash]
    if len(matches) == 1:
        return matches[0]
    if matches:
        raise InvalidInputError(
            f"{ref!r} matches {len(matches)} variants of run {run.id}: {', '.join(matches)}",
            hint="name one of them by its variant id",
        )
    raise InvalidInputError(
        f"no variant {ref!r} in run {run.id}",
        hint=f"give a variant id or the prompt version a variant runs; variants: {', '.join(ids)}",
    )


def _retrieval(store: Store, run: Run, evaluators: list[str]) -> tuple[str | None, dict[str, dict[str, Any]]]:
    """Retrieval hit rate and failure attribution per variant. Correctness is the first evaluator (in the
    spec's order) that gave pass/fail verdicts; gold contexts are the cases' `context_ids`."""
    rows = store.runs.retrieved(run.id)
    if not rows:
        return None, {}
    from honed.rag.evaluate.attribution import attribute, summarise

    dataset = store.objects.get(run.spec["dataset"]["hash"])
    gold = {str(c["id"]): list(c.get("context_ids", [])) for c in dataset.get("cases", [])}
    judge, passes = None, {}
    for ev in evaluators:
        passes = store.runs.passes(run.id, ev)
        if passes:
            judge = ev
            break
    out: dict[str, dict[str, Any]] = {}
    for variant in sorted({r[0] for r in rows}):
        attributions = []
        with_gold = hit = 0
        for _, case_id, sample, trace in (r for r in rows if r[0] == variant):
            ids = [c["id"] for entry in trace for c in entry.get("chunks", [])]
            gold_ids = gold.get(case_id, [])
            a = attribute(ids, gold_ids, passes.get((variant, case_id, sample)))
            attributions.append(a)
            if gold_ids:
                with_gold += 1
                hit += a.gold_rank is not None
        out[variant] = {
            "results": len(attributions),
            "with_gold": with_gold,
            "gold_retrieved": hit,
            "gold_retrieved_rate": hit / with_gold if with_gold else None,
            "attribution": summarise(attributions),
        }
    return judge, out


def score_matrix(
    snapshot: RunSnapshot, evaluator: str, variant: str, case_ids: list[str], repeats: int
) -> ScoreMatrix:
    """One variant's (cases x repeats) scores from one evaluator, NaN where there is none (an errored
    call or judgment), with pass/fail (1/0/NaN) when the evaluator gave any."""
    rows = snapshot.score_values(evaluator, variant)
    values = np.full((len(case_ids), repeats), np.nan)
    passed = np.full((len(case_ids), repeats), np.nan)
    any_pass = False
    index = {c: i for i, c in enumerate(case_ids)}
    if rows:
        case_of, sample_of, value_of, passed_of = zip(*rows, strict=True)
        at = (np.array([index[c] for c in case_of], dtype=np.int64), np.array(sample_of, dtype=np.int64))
        values[at] = np.array(value_of, dtype=np.float64)
        passed[at] = np.array(passed_of, dtype=np.float64)  # True/False/None -> 1/0/NaN
        any_pass = any(p is not None for p in passed_of)
    # No score by design is no error: a score row that says so (not labelled, no reference), or a result
    # that answered but has no score row at all from this evaluator (a human label not given yet, or a
    # run stopped before scoring). A failed call or evaluator stays an error.
    absent = np.isnan(values) & _mask(snapshot.unscored(evaluator, variant, ABSENT), index, repeats)
    return ScoreMatrix(values, tuple(case_ids), passed if any_pass else None, absent)


def _mask(cells: list[tuple[str, int]], index: dict[str, int], repeats: int) -> npt.NDArray[np.bool_]:
    """A (cases x repeats) mask with `cells` (case id, sample) set."""
    mask = np.zeros((len(index), repeats), dtype=np.bool_)
    rows = [(index[c], i) for c, i in cells if c in index and i < repeats]
    if rows:
        at = np.array(rows, dtype=np.int64)
        mask[at[:, 0], at[:, 1]] = True
    return mask


def _usage(snapshot: RunSnapshot, run: Run, variants: list[str]) -> dict[str, Usage]:
    """Calls, errors, tokens, cost and latency per variant, summed by the database."""
    found = snapshot.usage()
    timings = snapshot.timings()
    probed = latency.stored(run.latency_probe)
    timed_by = dict((run.latency_probe or {}).get("reused_from") or {})
    out: dict[str, Usage] = {}
    for v in variants:
        calls, errors, cached, unpriced, cost, input_tokens, output_tokens = found.get(
            v, (0, 0, 0, 0, None, 0, 0)
        )
        in_run, queued = timings.get(v, ([], []))
        own = latency.summarise(in_run)
        shown = probed.get(v) or own
        out[v] = Usage(
            calls=int(calls),
            errors=int(errors or 0),
            cached=int(cached or 0),
            cost_usd=None if unpriced else float(cost or 0.0),
            input_tokens=int(input_tokens or 0),
            output_tokens=int(output_tokens or 0),
            latency_p50_s=None if shown is None else shown.p50_s,
            latency_p95_s=None if shown is None else shown.p95_s,
            latency_calls=None if shown is None else shown.calls,
            latency_mode=None if shown is None else shown.mode,
            run_latency_p50_s=own.p50_s if own is not None and shown is not own else None,
            latency_timed_by=timed_by.get(v),
            queue_p50_s=latency.percentile(queued, 50),
        )
    return out
