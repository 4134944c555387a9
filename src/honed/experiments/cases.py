"""A run case by case: what each variant answered, and what every evaluator said about it.

`list_cases` picks cases of a run (all of them, the ones that regressed or improved against the
baseline, the ones an evaluator failed, the ones with errors, the ones whose text contains a string) and
returns each with its inputs and reference from the run's pinned dataset version, every shown variant's
output per sample, each evaluator's score, pass/fail, reason and error, and how it changed. Regressions and
improvements are the paired comparison's own (`honed.evals.stats`, through `analyse`), so a case listed
here is one that `experiments compare` counted.
"""

from __future__ import annotations

import json
import math
import threading
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

from honed.errors import InvalidInputError, NotFoundError
from honed.evals.stats import CaseDelta
from honed.experiments.analysis import ABSENT, RunReport, analyse, find_variant

if TYPE_CHECKING:
    from honed.store import Store

Changed = Literal["regressions", "improvements", "either"]
#: Bootstrap draws for the analysis behind a listing: which cases changed does not depend on them.
_N_BOOT = 200


@dataclass(frozen=True)
class CaseScore:
    """One evaluator's verdict on one output (`error` when it could not judge)."""

    evaluator: str
    value: float | None
    passed: bool | None
    reason: str | None
    error: str | None

    @property
    def failed(self) -> bool:
        """The evaluator failed (raised, or could not judge); a missing reference or label is not."""
        return self.error is not None and self.error not in ABSENT

    def to_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


@dataclass(frozen=True)
class CaseSample:
    """One call's answer (one of `repeats` samples): the output, or the error the call ended in."""

    sample: int
    output: str | None
    error: str | None
    latency_s: float | None
    cached: bool
    scores: tuple[CaseScore, ...]

    def to_dict(self) -> dict[str, Any]:
        return {
            "sample": self.sample,
            "output": self.output,
            "error": self.error,
            "latency_s": self.latency_s,
            "cached": self.cached,
            "scores": [s.to_dict() for s in self.scores],
        }


Order = Literal["case", "change", "score"]
ORDERS: dict[str, str] = {
    "case": "in the dataset's order",
    "change": "the biggest change first",
    "score": "the lowest score first",
}


@dataclass(frozen=True)
class CaseChange:
    """A case that regressed or improved under `variant` against the baseline, by `evaluator`: scores are
    the means over repeats; pass/fail where the evaluator gives it."""

    evaluator: str
    variant: str
    kind: Literal["regression", "improvement"]
    baseline_score: float
    score: float
    baseline_passed: bool | None
    passed: bool | None
    flaky: bool

    def to_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


@dataclass(frozen=True)
class CaseOutputs:
    case_id: str
    inputs: dict[str, Any]
    reference: Any
    outputs: dict[str, tuple[CaseSample, ...]]  # by variant, in the run's order
    changes: tuple[CaseChange, ...]

    def errors(self) -> list[tuple[str, int, str, str]]:
        """(variant, sample, where, message) of the failed calls ("call") and evaluators of this case."""
        out = []
        for variant, samples in self.outputs.items():
            for s in samples:
                if s.error is not None:
                    out.append((variant, s.sample, "call", s.error))
                out += [(variant, s.sample, c.evaluator, c.error or "") for c in s.scores if c.failed]
        return out

    def to_dict(self) -> dict[str, Any]:
        return {
            "case_id": self.case_id,
            "inputs": self.inputs,
            "reference": self.reference,
            "outputs": {v: [s.to_dict() for s in samples] for v, samples in self.outputs.items()},
            "changes": [c.to_dict() for c in self.changes],
        }


@dataclass(frozen=True)
class CaseListing:
    """The cases a `list_cases` call selected: `matched` of them, the first `len(cases)` returned."""

    run_id: str
    baseline: str
    variants: tuple[str, ...]  # shown, the baseline first when it is shown
    evaluators: tuple[str, ...]
    repeats: int
    selection: str  # what was asked for, in words
    matched: int
    cases: tuple[CaseOutputs, ...]
    #: How many matched cases come before `cases` (a later page of the listing).
    offset: int = 0

    @property
    def more(self) -> int:
        """Matched cases after the ones returned."""
        return self.matched - self.offset - len(self.cases)

    def to_dict(self) -> dict[str, Any]:
        return {
            "run": self.run_id,
            "baseline": self.baseline,
            "variants": list(self.variants),
            "evaluators": list(self.evaluators),
            "repeats": self.repeats,
            "selection": self.selection,
            "matched": self.matched,
            "cases": [c.to_dict() for c in self.cases],
        }


def list_cases(
    store: Store,
    run_ref: str,
    *,
    variants: Sequence[str] = (),
    baseline: str | None = None,
    changed: Changed | None = None,
    failed: str | None = None,
    errors: bool = False,
    search: str | None = None,
    flaky: bool = False,
    order: Order | None = None,
    limit: int | None = None,
    offset: int = 0,
    report: RunReport | None = None,
) -> CaseListing:
    """The cases of a run that pass every filter given, with at most `limit` of them filled in. `order`:
    "case" the dataset's order, "change" the biggest change against the baseline first, "score" the
    lowest mean score of the selected variants first; by default the dataset's order, or the biggest
    change first when `changed` selects changed cases. `flaky`: cases whose pass/fail differs between
    repeats under one of the selected variants, by any evaluator.

    `variants` (ids or prompt references) are the variants whose changes, failures, errors and outputs
    select a case (default: all); the baseline's outputs are always shown beside theirs. `report` is the run's
    analysis when the caller already has it (with its baseline). `offset` skips that many of the matched
    cases (a page of a listing)."""
    if offset < 0:
        raise InvalidInputError(f"offset {offset} is negative", hint="start at 0")
    if limit is not None and limit < 1:
        raise InvalidInputError(f"limit {limit} is not a positive number", hint="e.g. --limit 20")
    if report is None:
        report = analyse(store, run_ref, baseline=baseline, n_boot=_N_BOOT, seed=0)
    ctx = _Context.of(store, report, variants)
    run = report.run
    ids = list(ctx.dataset)
    words = []
    if changed is not None:
        ids = ctx.changed(changed, ids)
        what = {"regressions": "regressed", "improvements": "improved"}.get(changed, "regressed or improved")
        words.append(f"{what} against {report.baseline}")
    if failed is not None:
        if failed not in report.evaluators:
            raise InvalidInputError(
                f"no evaluator {failed!r} in run {run.id}", hint=f"evaluators: {', '.join(report.evaluators)}"
            )
        if all(s.pass_rate is None for s in report.stats[failed].summaries.values()):
            raise InvalidInputError(
                f"evaluator {failed!r} gives scores without pass/fail, so no case fails it",
                hint="give it a threshold in the spec, or look at --regressions or all cases",
            )
        failing = store.runs.failing_cases(run.id, ctx.selected, evaluator=failed)
        ids = [i for i in ids if i in failing]
        words.append(f"failed by {failed}")
    if errors:
        erring = store.runs.erroring_cases(run.id, ctx.selected, ignore=ABSENT)
        ids = [i for i in ids if i in erring]
        words.append("with errors")
    if flaky:
        unstable = {
            case_id
            for ev in report.evaluators
            for v, summary in report.stats[ev].summaries.items()
            if v in ctx.selected
            for case_id in summary.flaky
        }
        ids = [i for i in ids if i in unstable]
        words.append("flaky")
    if search:
        found = store.runs.cases_with_output(run.id, search, ctx.selected)
        needle = search.lower()
        ids = [i for i in ids if i in found or needle in _case_text(ctx.dataset[i])]
        words.append(f"containing {search!r}")
    if order is not None and order not in ORDERS:
        raise InvalidInputError(f"unknown order {order!r}", hint=f"one of {', '.join(ORDERS)}")
    if order == "case":
        position = {case_id: i for i, case_id in enumerate(ctx.dataset)}
        ids.sort(key=position.__getitem__)
    elif order == "change":
        moved = ctx.changed("either", ids)
        kept = set(moved)
        ids = moved + [i for i in ids if i not in kept]  # then the unchanged, in the dataset's order
    elif order == "score":
        means = store.runs.case_means(run.id, ctx.selected)
        ids.sort(key=lambda i: means.get(i, math.inf))  # stable: ties keep their order; unscored last
    selection = " ".join(["cases", *words]) if len(words) < 2 else "cases " + ", ".join(words)
    if order is not None:
        selection += f", {ORDERS[order]}"
    return ctx.listing(store, selection, ids, limit, offset)


@dataclass(frozen=True)
class ReportCases:
    """The cases a run's report shows: those that changed against the baseline, and the others that an
    evaluator failed or that have errors (each with at most `limit` filled in)."""

    changed: CaseListing
    failing: CaseListing


def report_cases(store: Store, report: RunReport, *, limit: int = 25) -> ReportCases:
    """The changed and the failing cases of `report`'s run, for the HTML report."""
    ctx = _Context.of(store, report, ())
    changed = ctx.changed("either", list(ctx.dataset))
    run_id = report.run.id
    bad = store.runs.failing_cases(run_id, ctx.shown) | store.runs.erroring_cases(
        run_id, ctx.shown, ignore=ABSENT
    )
    seen = set(changed)
    failing = [i for i in ctx.dataset if i in bad and i not in seen]
    return ReportCases(
        ctx.listing(store, f"cases that regressed or improved against {report.baseline}", changed, limit),
        ctx.listing(store, "other cases that an evaluator failed or with errors", failing, limit),
    )


@dataclass(frozen=True)
class _Context:
    """What selecting and filling cases needs: the analysis, the variants shown (baseline first), every
    case's changes under them, and the run's cases from its dataset version, in the dataset's order."""

    report: RunReport
    shown: tuple[str, ...]
    selected: tuple[str, ...]  # the variants whose failures, errors and outputs select a case
    changes: dict[str, list[CaseChange]]
    dataset: dict[str, dict[str, Any]]

    @classmethod
    def of(cls, store: Store, report: RunReport, variants: Sequence[str]) -> _Context:
        run = report.run
        chosen = {find_variant(store, run, v) for v in variants}
        shown = [v for v in report.variants if not chosen or v in chosen or v == report.baseline]
        shown.sort(key=lambda v: v != report.baseline)
        selected = tuple(v for v in report.variants if not chosen or v in chosen)
        changes = _changes(report, [v for v in selected if v != report.baseline])
        in_run = store.runs.case_ids(run.id)
        cases = _dataset_cases(store, run.spec["dataset"]["hash"])
        dataset = {case_id: c for case_id, c in cases.items() if case_id in in_run}
        return cls(report, tuple(shown), selected, changes, dataset)

    def changed(self, changed: Changed, ids: list[str]) -> list[str]:
        """The `ids` that regressed and/or improved, the biggest change first."""
        kinds = {"regressions": {"regression"}, "improvements": {"improvement"}}.get(
            changed, {"regression", "improvement"}
        )
        size = {
            case_id: max((abs(c.score - c.baseline_score) for c in cs if c.kind in kinds), default=None)
            for case_id, cs in self.changes.items()
        }
        return sorted((i for i in ids if size.get(i) is not None), key=lambda i: -(size[i] or 0.0))

    def listing(
        self, store: Store, selection: str, ids: list[str], limit: int | None, offset: int = 0
    ) -> CaseListing:
        """The listing of `ids`, `limit` of them from `offset` on filled in from the store."""
        report, run = self.report, self.report.run
        page = ids[offset:] if limit is None else ids[offset : offset + limit]
        results, scores = store.runs.case_rows(run.id, page, self.shown)
        by_result: dict[tuple[str, str, int], list[CaseScore]] = {}
        for s in scores:
            by_result.setdefault((s["variant"], s["case_id"], int(s["sample_index"])), []).append(
                CaseScore(s["evaluator"], s["value"], s["passed"], s["reason"], s["error"])
            )
        samples: dict[tuple[str, str], list[CaseSample]] = {}
        for r in results:
            key = (r["variant"], r["case_id"], int(r["sample_index"]))
            sample = CaseSample(
                key[2],
                r["output"],
                r["error"],
                r["latency_s"],
                bool(r["cached"]),
                tuple(by_result.get(key, [])),
            )
            samples.setdefault(key[:2], []).append(sample)
        cases = tuple(
            CaseOutputs(
                case_id,
                dict(self.dataset[case_id].get("inputs") or {}),
                self.dataset[case_id].get("reference"),
                {v: tuple(samples.get((v, case_id), [])) for v in self.shown},
                tuple(self.changes.get(case_id, [])),
            )
            for case_id in page
        )
        repeats = int(run.spec.get("repeats", 1))
        evaluators = tuple(report.evaluators)
        return CaseListing(
            run.id, report.baseline, self.shown, evaluators, repeats, selection, len(ids), cases, offset
        )


#: Dataset versions kept by `_dataset_cases`: content-addressed, so a version's cases never change.
_DATASETS: OrderedDict[tuple[str, str], dict[str, dict[str, Any]]] = OrderedDict()
_DATASETS_LOCK = threading.Lock()


def _dataset_cases(store: Store, version_hash: str) -> dict[str, dict[str, Any]]:
    """The cases of a dataset version by id, in the dataset's order. Kept for the next page of the same run
    (a version is immutable: its hash is its content), so paging a 10,000-case run reads it once."""
    key = (store.url, version_hash)
    with _DATASETS_LOCK:
        found = _DATASETS.get(key)
        if found is not None:
            _DATASETS.move_to_end(key)
            return found
    body = store.objects.get(version_hash)
    cases = {str(c["id"]): c for c in body.get("cases", [])}
    with _DATASETS_LOCK:
        _DATASETS[key] = cases
        while len(_DATASETS) > 8:
            _DATASETS.popitem(last=False)
    return cases


def _changes(report: RunReport, variants: Sequence[str]) -> dict[str, list[CaseChange]]:
    """Per case, its regressions and improvements under `variants`, from the report's comparisons."""
    out: dict[str, list[CaseChange]] = {}
    for ev, result in report.stats.items():
        for v in variants:
            comparison = result.comparisons.get(v)
            if comparison is None:
                continue
            kinds: tuple[tuple[Literal["regression", "improvement"], Sequence[CaseDelta]], ...] = (
                ("regression", comparison.regressions),
                ("improvement", comparison.improvements),
            )
            for kind, deltas in kinds:
                for d in deltas:
                    change = CaseChange(ev, v, kind, d.score_a, d.score_b, d.passed_a, d.passed_b, d.flaky)
                    out.setdefault(d.case_id, []).append(change)
    return out


def _case_text(case: dict[str, Any]) -> str:
    """A case's id, inputs and reference as one lower-case text, for --search."""
    return json.dumps([case.get("id"), case.get("inputs"), case.get("reference")], ensure_ascii=False).lower()


@dataclass(frozen=True)
class CallDetail:
    """One call of a case in full: what was sent (from the response cache, when it kept the request),
    what came back, what was retrieved, tokens, latency, cost, and every evaluator's verdict."""

    variant: str
    sample: int
    model: str
    params: dict[str, Any]
    messages: list[dict[str, Any]] | None
    output: str | None
    tool_calls: list[dict[str, Any]] | None
    retrieved: list[dict[str, Any]] | None
    error: str | None
    input_tokens: int
    output_tokens: int
    latency_s: float
    cost_usd: float | None
    cached: bool
    scores: tuple[CaseScore, ...]

    def to_dict(self) -> dict[str, Any]:
        return {**self.__dict__, "scores": [s.to_dict() for s in self.scores]}


@dataclass(frozen=True)
class CaseDetail:
    run_id: str
    case_id: str
    inputs: dict[str, Any]
    reference: Any
    calls: tuple[CallDetail, ...]

    def to_dict(self) -> dict[str, Any]:
        return {
            "run": self.run_id,
            "case_id": self.case_id,
            "inputs": self.inputs,
            "reference": self.reference,
            "calls": [c.to_dict() for c in self.calls],
        }


def case_detail(store: Store, run_ref: str, case_id: str) -> CaseDetail:
    """One case of a run with every call in full (the web UI's case page)."""
    run = store.runs.get(run_ref)
    rows, marks = store.runs.case_detail(run.id, case_id)
    if not rows:
        raise NotFoundError(f"run {run.id} has no case {case_id!r}", hint="see its cases on the run's page")
    body = store.objects.get(run.spec["dataset"]["hash"])
    case: dict[str, Any] = next((c for c in body.get("cases", []) if str(c.get("id")) == case_id), {})
    by_call: dict[tuple[str, int], list[CaseScore]] = {}
    for m in marks:
        by_call.setdefault((m["variant"], int(m["sample_index"])), []).append(
            CaseScore(m["evaluator"], m["value"], m["passed"], m["reason"], m["error"])
        )
    calls = []
    for r in rows:
        request = store.cache.request(r["request_key"]) or {}
        calls.append(
            CallDetail(
                r["variant"],
                int(r["sample_index"]),
                r["model"],
                dict(r["params"] or {}),
                list(request["messages"]) if isinstance(request.get("messages"), list) else None,
                r["output"],
                r["tool_calls"],
                r["retrieved"],
                r["error"],
                int(r["input_tokens"]),
                int(r["output_tokens"]),
                float(r["latency_s"]),
                r["cost_usd"],
                bool(r["cached"]),
                tuple(by_call.get((r["variant"], int(r["sample_index"])), [])),
            )
        )
    return CaseDetail(run.id, case_id, dict(case.get("inputs") or {}), case.get("reference"), tuple(calls))
