"""The CI gate: run an experiment and fail when a threshold is missed or a significant regression appears.

An eval spec is an experiment spec plus:

    baseline: {prompt: qa@production}    # optional: run beside the candidates, compared with each
    thresholds:                          # optional: per evaluator, minimum mean and/or pass rate
      exact: {mean: 0.8, pass_rate: 0.9}

A regression counts only when it is significant (the paired CI excludes 0, see honed.evals.stats), so noise
never fails a build; a threshold is checked on the point estimate. Results go to the terminal and, with
`--junit`, to JUnit XML that CI systems display (one test case per variant x evaluator x check).
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from honed.errors import InvalidInputError
from honed.evals.stats import WORSE
from honed.experiments.analysis import RunReport
from honed.experiments.spec import ExperimentSpec, parse_spec, read_spec_file

BASELINE_ID = "baseline"


class Threshold(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    mean: float | None = None
    pass_rate: float | None = Field(default=None, ge=0, le=1)


@dataclass(frozen=True)
class GateSpec:
    experiment: ExperimentSpec
    thresholds: dict[str, Threshold]
    has_baseline: bool


@dataclass(frozen=True)
class Check:
    variant: str
    evaluator: str
    name: str  # "mean >= 0.8", "pass_rate >= 0.9", "no regression vs baseline"
    passed: bool
    detail: str


def load_gate(path: Path) -> GateSpec:
    return parse_gate(read_spec_file(path, "eval spec"), source=str(path))


def parse_gate(data: dict[str, Any], *, source: str = "eval spec") -> GateSpec:
    data = dict(data)
    raw_thresholds = data.pop("thresholds", None) or {}
    baseline = data.pop("baseline", None)
    if baseline is not None:
        if not isinstance(baseline, dict):
            raise InvalidInputError(f"{source}: baseline must be a mapping like {{prompt: qa@production}}")
        data["variants"] = [{**baseline, "id": BASELINE_ID}, *(data.get("variants") or [])]
    spec = parse_spec(data, source=source)
    if not isinstance(raw_thresholds, dict):
        raise InvalidInputError(f"{source}: thresholds must map evaluator names to {{mean, pass_rate}}")
    thresholds: dict[str, Threshold] = {}
    for name, t in raw_thresholds.items():
        try:
            thresholds[str(name)] = Threshold.model_validate(t)
        except ValidationError as exc:
            err = exc.errors()[0]
            loc = ".".join(str(p) for p in err["loc"])
            raise InvalidInputError(f"{source}: thresholds.{name}.{loc}: {err['msg']}") from None
    return GateSpec(spec, thresholds, baseline is not None)


def check(gate: GateSpec, report: RunReport) -> list[Check]:
    """Every threshold and regression check, for every candidate variant."""
    unknown = sorted(set(gate.thresholds) - set(report.stats))
    if unknown:
        raise InvalidInputError(
            f"thresholds name unknown evaluator(s): {', '.join(unknown)}",
            hint=f"evaluators: {', '.join(report.stats)}",
        )
    candidates = [v for v in report.variants if not (gate.has_baseline and v == BASELINE_ID)]
    out: list[Check] = []
    for ev, result in report.stats.items():
        t = gate.thresholds.get(ev)
        for v in candidates:
            s = result.summaries[v]
            if t is not None and t.mean is not None:
                ok = s.mean is not None and s.mean >= t.mean
                out.append(Check(v, ev, f"mean >= {t.mean:g}", ok, f"mean {_fmt(s.mean)} (n={s.n_scored})"))
            if t is not None and t.pass_rate is not None:
                ok = s.pass_rate is not None and s.pass_rate >= t.pass_rate
                out.append(
                    Check(v, ev, f"pass_rate >= {t.pass_rate:g}", ok, f"pass rate {_fmt(s.pass_rate)}")
                )
            if gate.has_baseline and v in result.comparisons:
                c = result.comparisons[v]
                out.append(
                    Check(v, ev, "no significant regression vs baseline", c.verdict != WORSE, c.message)
                )
    return out


def _fmt(x: float | None) -> str:
    return "n/a" if x is None else f"{x:.3f}"


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
            ET.SubElement(case, "failure", message=c.detail).text = c.detail
        else:
            ET.SubElement(case, "system-out").text = c.detail
    suites = ET.Element("testsuites")
    suites.append(suite)
    return ET.tostring(suites, encoding="unicode", xml_declaration=True)
