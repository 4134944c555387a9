"""The CI gate: run an experiment and fail when a threshold or a limit is missed, or a significant regression
appears.

An eval spec is an experiment spec (dataset, split, variants, evaluators, repeats) plus:

    baseline: {prompt: qa@production}    # optional: run beside the candidates, compared with each
    thresholds:                          # optional: per evaluator, the least each candidate must reach
      exact: {mean: 0.8, pass_rate: 0.9}
    limits:                              # optional: per candidate, the most it may use
      cost_usd: 0.50                     # total USD of its calls (cached calls at their price)
      cost_per_call_usd: 0.002           # that total over its calls that returned
      latency_p95_s: 2.0                 # 95th percentile of the calls' latency, in seconds
      errors: 0                          # failed calls + failed evaluations (default 0)
      error_rate: 0.05                   # share of its calls that failed or that an evaluator failed on

The candidates are the spec's variants (the baseline is only compared against). A regression counts only
when it is significant (the paired CI excludes 0, see honed.evals.stats), so noise never fails a build; a
threshold or limit is checked on the point estimate. Without `errors` or `error_rate`, any failed call or
evaluation fails the gate (a missing reference is not a failure). Each check says what was measured
against what (`exact pass_rate 0.42 < 0.8 (variant qa@v2)`), a failed one lists its failing cases, and
with `--junit` the checks go to JUnit XML that CI systems display (one test case per check).
"""

from __future__ import annotations

import json
import shlex
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, ConfigDict, Field

from honed.errors import InvalidInputError
from honed.evals.stats import WORSE
from honed.experiments.analysis import ABSENT, RunReport, Usage
from honed.experiments.cases import CaseListing, list_cases
from honed.experiments.latency import ONE_AT_A_TIME
from honed.experiments.spec import ExperimentSpec, parse_spec, read_spec_file
from honed.userfiles import Lines, Loc, locate, validate

if TYPE_CHECKING:
    from honed.store import Store

BASELINE_ID = "baseline"


class Threshold(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    mean: float | None = None
    pass_rate: float | None = Field(default=None, ge=0, le=1)


class Limits(BaseModel):
    """The most a candidate may use; see the module docstring."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    cost_usd: float | None = Field(default=None, ge=0)
    cost_per_call_usd: float | None = Field(default=None, ge=0)
    latency_p95_s: float | None = Field(default=None, gt=0)
    errors: int | None = Field(default=None, ge=0)
    error_rate: float | None = Field(default=None, ge=0, le=1)


@dataclass(frozen=True)
class GateSpec:
    experiment: ExperimentSpec
    thresholds: dict[str, Threshold]
    has_baseline: bool
    limits: Limits = field(default_factory=Limits)


@dataclass(frozen=True)
class FailingCase:
    """One case behind a failed check: the candidate's output (its first failing sample), the reference,
    and why (the evaluator's reason, or the error)."""

    case_id: str
    sample: int | None
    output: str | None
    reference: Any
    reason: str

    def to_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


@dataclass(frozen=True)
class Check:
    variant: str
    evaluator: str  # the evaluator checked, or the limit's subject: "cost", "latency", "errors"
    name: str  # "pass_rate >= 0.9", "no significant regression vs baseline", "latency p95 <= 2 s"
    passed: bool
    detail: str  # what was measured against what, e.g. "exact pass_rate 0.42 < 0.8 (variant qa@v2)"
    #: For a failed check: the first failing cases, how many there are in all, and the command for all.
    cases: tuple[FailingCase, ...] = ()
    n_cases: int = 0
    command: str | None = None

    def to_dict(self) -> dict[str, Any]:
        out = {k: v for k, v in self.__dict__.items() if k != "cases"}
        return {**out, "cases": [c.to_dict() for c in self.cases]}


def load_gate(path: Path) -> GateSpec:
    source = read_spec_file(path, "eval spec")
    return parse_gate(source.data, source=source.where, lines=source.lines)


def parse_gate(data: dict[str, Any], *, source: str = "eval spec", lines: Lines | None = None) -> GateSpec:
    data = dict(data)
    raw_thresholds = data.pop("thresholds", None) or {}
    raw_limits = data.pop("limits", None) or {}
    baseline = data.pop("baseline", None)

    def at(key: str) -> str:
        return locate(source, (key,), lines)

    if baseline is not None:
        if not isinstance(baseline, dict):
            raise InvalidInputError(f"{at('baseline')}: must be a mapping like {{prompt: qa@production}}")
        data["variants"] = [{**baseline, "id": BASELINE_ID}, *(data.get("variants") or [])]
    spec = parse_spec(data, source=source, lines=lines, rename=_file_loc if baseline is not None else None)
    if not isinstance(raw_thresholds, dict):
        raise InvalidInputError(f"{at('thresholds')}: must map evaluator names to {{mean, pass_rate}}")
    thresholds: dict[str, Threshold] = {}
    for name, t in raw_thresholds.items():
        thresholds[str(name)] = validate(Threshold, t, where=source, lines=lines, at=("thresholds", name))
    if not isinstance(raw_limits, dict):
        raise InvalidInputError(
            f"{at('limits')}: must be a mapping like {{cost_usd: 0.5, latency_p95_s: 2, errors: 0}}"
        )
    limits = validate(Limits, raw_limits, where=source, lines=lines, at=("limits",))
    return GateSpec(spec, thresholds, baseline is not None, limits)


def _file_loc(loc: Loc) -> Loc:
    """Where a problem in the validated spec is in the file: the baseline was put first among the
    variants, so `variants[0]` is `baseline` and `variants[i]` the file's `variants[i-1]`."""
    if len(loc) >= 2 and loc[0] == "variants" and isinstance(loc[1], int):
        return ("baseline", *loc[2:]) if loc[1] == 0 else ("variants", loc[1] - 1, *loc[2:])
    return loc


@dataclass(frozen=True)
class Measures:
    """What a candidate used: its calls, cost, latency and errors (see `measure`)."""

    calls: int  # calls that returned (cached ones included)
    cached: int
    cost_usd: float | None  # None when a model's price is unknown
    latency_p95_s: float | None
    latency_how: str  # "N calls one at a time", "N calls, M from the cache"
    failed_calls: int
    failed_evaluations: int
    results_with_errors: int
    results: int  # calls made, failed or not


def _latency_how(u: Usage) -> str:
    if u.latency_mode == ONE_AT_A_TIME:
        return f"{u.latency_calls} calls timed one at a time after the run"
    return f"{u.latency_calls} calls" + (f", {u.cached} from the cache" if u.cached else "")


def measure(store: Store, report: RunReport) -> dict[str, Measures]:
    """Per variant, the figures `limits` are checked against. Latency is the report's (see
    `honed.experiments.latency`: a cached row keeps its call's figure, so a replay from the cache is
    measured too; on a model that batches, the calls timed one at a time after the run)."""
    errors = store.runs.error_counts(report.run.id, ignore=ABSENT)
    out = {}
    for v in report.variants:
        u = report.usage[v]
        failed_calls, failed_evals, with_errors = errors.get(v, (0, 0, 0))
        out[v] = Measures(
            calls=u.calls - u.errors,
            cached=u.cached,
            cost_usd=u.cost_usd,
            latency_p95_s=u.latency_p95_s,
            latency_how=_latency_how(u),
            failed_calls=failed_calls,
            failed_evaluations=failed_evals,
            results_with_errors=with_errors,
            results=u.calls,
        )
    return out


def candidates(gate: GateSpec, report: RunReport) -> list[str]:
    return [v for v in report.variants if not (gate.has_baseline and v == BASELINE_ID)]


def check(gate: GateSpec, report: RunReport, measures: dict[str, Measures] | None = None) -> list[Check]:
    """Every threshold, limit and regression check, for every candidate variant. Without `measures`,
    only the thresholds and regressions are checked."""
    unknown = sorted(set(gate.thresholds) - set(report.stats))
    if unknown:
        raise InvalidInputError(
            f"thresholds name unknown evaluator(s): {', '.join(unknown)}",
            hint=f"evaluators: {', '.join(report.stats)}",
        )
    out: list[Check] = []
    for v in candidates(gate, report):
        for ev, result in report.stats.items():
            t = gate.thresholds.get(ev)
            s = result.summaries[v]
            if t is not None and t.mean is not None:
                out.append(_at_least(v, ev, "mean", s.mean, t.mean, f", n={s.n_scored}"))
            if t is not None and t.pass_rate is not None:
                out.append(_at_least(v, ev, "pass_rate", s.pass_rate, t.pass_rate, ""))
            if gate.has_baseline and v in result.comparisons:
                c = result.comparisons[v]
                ok = c.verdict != WORSE
                out.append(Check(v, ev, "no significant regression vs baseline", ok, f"{ev}: {c.message}"))
        if measures is not None:
            out += _limits(gate.limits, v, measures[v])
    return out


def _at_least(variant: str, ev: str, what: str, value: float | None, least: float, extra: str) -> Check:
    name = f"{what} >= {least:g}"
    if value is None:
        why = "no scores" if what == "mean" else "no pass/fail from this evaluator"
        return Check(variant, ev, name, False, f"{ev} {what} n/a ({why}) < {least:g} (variant {variant})")
    ok = value >= least
    detail = f"{ev} {what} {_beside(value, least)} {'>=' if ok else '<'} {least:g} (variant {variant}{extra})"
    return Check(variant, ev, name, ok, detail)


def _at_most(
    variant: str, subject: str, name: str, what: str, value: float | None, most: float, unit: str, extra: str
) -> Check:
    """`what VALUE <= MOST` (or `>`), with `unit` ("$" before, " s" after) and `extra` in the brackets."""

    def show(x: float, text: str) -> str:
        return f"${text}" if unit == "$" else f"{text}{unit}"

    if value is None:
        return Check(variant, subject, name, False, f"{what} {extra} (variant {variant})")
    ok = value <= most
    shown, bound = show(value, _beside(value, most)), show(most, f"{most:g}")
    detail = f"{what} {shown} {'<=' if ok else '>'} {bound} (variant {variant}{extra})"
    return Check(variant, subject, name, ok, detail)


def _limits(limits: Limits, v: str, m: Measures) -> list[Check]:
    out: list[Check] = []
    unpriced = "unknown: a model has no price (add it under [prices] in honed.toml)"
    if limits.cost_usd is not None:
        cost = m.cost_usd
        extra = unpriced if cost is None else f", {m.calls} calls"
        out.append(
            _at_most(v, "cost", f"cost <= ${limits.cost_usd:g}", "cost", cost, limits.cost_usd, "$", extra)
        )
    if limits.cost_per_call_usd is not None:
        per = None if m.cost_usd is None or not m.calls else m.cost_usd / m.calls
        extra = unpriced if m.cost_usd is None else "n/a: no call returned" if per is None else ""
        most = limits.cost_per_call_usd
        out.append(_at_most(v, "cost", f"cost per call <= ${most:g}", "cost per call", per, most, "$", extra))
    if limits.latency_p95_s is not None:
        extra = "n/a: no call returned" if m.latency_p95_s is None else f", {m.latency_how}"
        most = limits.latency_p95_s
        name = f"latency p95 <= {most:g} s"
        out.append(_at_most(v, "latency", name, "latency p95", m.latency_p95_s, most, " s", extra))
    what = f": {m.failed_calls} failed call(s), {m.failed_evaluations} failed evaluation(s)"
    if limits.errors is not None or limits.error_rate is None:
        most_errors = 0 if limits.errors is None else limits.errors
        n = m.failed_calls + m.failed_evaluations
        ok = n <= most_errors
        detail = f"errors {n} {'<=' if ok else '>'} {most_errors} (variant {v}{what})"
        out.append(Check(v, "errors", f"errors <= {most_errors}", ok, detail))
    if limits.error_rate is not None:
        rate = m.results_with_errors / m.results if m.results else 0.0
        extra = f": {m.results_with_errors} of {m.results} calls"
        most = limits.error_rate
        out.append(_at_most(v, "errors", f"error rate <= {most:g}", "error rate", rate, most, "", extra))
    return out


def _beside(value: float, bound: float) -> str:
    """`value` with as many digits as it takes not to read as `bound` (0.7999 is not "0.80")."""
    for digits in range(2, 10):
        text = f"{value:.{digits}f}" if abs(value) >= 1 else f"{value:.{digits}g}"
        if value == bound or float(text) != bound:
            return text
    return repr(value)


def with_cases(store: Store, report: RunReport, checks: list[Check], *, limit: int = 5) -> list[Check]:
    """The checks, each failed one with its failing cases (at most `limit`): the cases its evaluator
    failed (where it gives pass/fail), that regressed, or that have errors."""
    out = []
    for c in checks:
        found = None if c.passed else _failing_cases(store, report, c, limit)
        if found is None:
            out.append(c)
        else:
            listing, command = found
            out.append(replace(c, cases=_failing(listing, c), n_cases=listing.matched, command=command))
    return out


def _failing_cases(store: Store, report: RunReport, c: Check, limit: int) -> tuple[CaseListing, str] | None:
    base = f"honed experiments cases {report.run.id} --variant {shlex.quote(c.variant)}"
    kw: dict[str, Any] = {"variants": [c.variant], "limit": limit, "report": report}
    if c.evaluator == "errors":
        return list_cases(store, report.run.id, errors=True, **kw), f"{base} --errors"
    if c.evaluator not in report.stats:
        return None  # cost and latency: no case is to blame
    if c.name.startswith("no significant regression"):
        return list_cases(store, report.run.id, changed="regressions", **kw), f"{base} --regressions"
    if report.stats[c.evaluator].summaries[c.variant].pass_rate is None:
        return None  # a mean without pass/fail: no case fails as such
    listing = list_cases(store, report.run.id, failed=c.evaluator, **kw)
    return listing, f"{base} --failed {shlex.quote(c.evaluator)}"


def _failing(listing: CaseListing, c: Check) -> tuple[FailingCase, ...]:
    """Each listed case as its first sample that failed the check, with the reason."""
    out = []
    for case in listing.cases:
        picked = FailingCase(case.case_id, None, None, case.reference, "")
        for s in case.outputs.get(c.variant, ()):
            score = next((x for x in s.scores if x.evaluator == c.evaluator), None)
            if c.evaluator == "errors":
                failed = next((f"{x.evaluator}: {x.error}" for x in s.scores if x.failed), None)
                reason = s.error or failed
            elif score is not None and (score.passed is False or c.name.startswith("no significant")):
                reason = score.error or score.reason or ""
            else:
                continue
            if reason is not None:
                picked = FailingCase(case.case_id, s.sample, s.output, case.reference, reason)
                break
        out.append(picked)
    return tuple(out)


def junit_xml(name: str, checks: list[Check]) -> str:
    suite = ET.Element(
        "testsuite",
        name=f"honed eval {name}",
        tests=str(len(checks)),
        failures=str(sum(not c.passed for c in checks)),
        errors="0",
    )
    for c in checks:
        case = ET.SubElement(suite, "testcase", classname=f"{c.variant}.{c.evaluator}", name=c.name)
        if not c.passed:
            ET.SubElement(case, "failure", message=c.detail).text = "\n".join([c.detail, *failing_lines(c)])
        else:
            ET.SubElement(case, "system-out").text = c.detail
    suites = ET.Element("testsuites")
    suites.append(suite)
    return ET.tostring(suites, encoding="unicode", xml_declaration=True)


def failing_lines(c: Check, width: int = 200) -> list[str]:
    """A failed check's cases as plain lines (for the terminal and JUnit): id, output, reference, reason."""
    if not c.n_cases:
        return []

    def cut(value: Any) -> str:
        """A string quoted (so blanks show), any other value as JSON; on one line, at most `width`."""
        text = " ".join((value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)).split())
        text = text if len(text) <= width else text[: width - 1] + "…"
        return repr(text) if isinstance(value, str) else text

    lines = [
        f"{c.n_cases} failing case(s){f', the first {len(c.cases)}' if c.n_cases > len(c.cases) else ''}:"
    ]
    for f in c.cases:
        sample = f" (sample {f.sample})" if f.sample else ""
        lines.append(f"  {f.case_id}{sample}")
        lines.append(f"    output:    {cut(f.output) if f.output is not None else '(none)'}")
        lines.append(f"    reference: {cut(f.reference) if f.reference is not None else '(none)'}")
        if f.reason:
            lines.append(f"    reason:    {' '.join(f.reason.split())[:width]}")
    if c.command:
        lines.append(f"  all of them: {c.command}")
    return lines
