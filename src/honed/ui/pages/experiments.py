"""Experiments: the list of runs, a run's page (the analysis of `honed experiments compare`, its chart, and
the case matrix with filters and pages), a case's page, and two runs compared.

Every number comes from the domain functions the CLI uses (`analyse`, `list_cases`, `case_detail`); this
module parses the query, calls them and renders.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import RedirectResponse, Response

from honed.errors import InvalidInputError
from honed.experiments.analysis import analyse_latest
from honed.experiments.cases import ORDERS, Changed, case_detail, list_cases
from honed.experiments.crossrun import compare_runs
from honed.experiments.report_html import report_sections
from honed.store.runs import Run
from honed.ui.web import page, trusted
from honed.workspace import Workspace

#: Cases per page of the matrix, and runs per page of the list.
CASES_PER_PAGE = 25
RUNS_PER_PAGE = 50
SHOW = {
    "all": "all cases",
    "regressions": "regressions",
    "improvements": "improvements",
    "either": "changed",
    "flaky": "flaky (pass/fail differs between repeats)",
    "errors": "with errors",
}


@dataclass(frozen=True)
class RunRow:
    """A run as the list shows it."""

    run: Run
    dataset: str
    variants: list[str]

    @classmethod
    def of(cls, run: Run) -> RunRow:
        spec = run.spec
        dataset = (spec.get("dataset") or {}).get("ref") or "?"
        return cls(run, str(dataset), [str(v.get("id")) for v in spec.get("variants", [])])


def _dataset(run: Run) -> str | None:
    found = (run.spec.get("dataset") or {}).get("hash")
    return str(found) if found else None


def _cursor(text: str | None) -> tuple[datetime, str] | None:
    if not text:
        return None
    at, sep, run_id = text.partition("|")
    try:
        return (datetime.fromisoformat(at), run_id) if sep else None
    except ValueError:
        raise InvalidInputError(
            f"page cursor {text!r} is malformed", hint="start from the first page"
        ) from None


def router(h: Workspace) -> APIRouter:
    api = APIRouter()

    @api.get("/")
    def home() -> Response:
        return RedirectResponse("/experiments", status_code=303)

    @api.get("/experiments")
    def runs(request: Request, after: str | None = None) -> Response:
        found, cursor = h.store.runs.page(RUNS_PER_PAGE, _cursor(after))
        more = None if cursor is None else f"{cursor[0].isoformat()}|{cursor[1]}"
        return page(request, "experiments/list.html", {"rows": [RunRow.of(r) for r in found], "more": more})

    @api.get("/experiments/compare")
    def compare_page(
        request: Request, a: str, b: str | None = None, va: str | None = None, vb: str | None = None
    ) -> Response:
        """Two runs of the same dataset version compared; with `a` alone, the runs it can be compared to."""
        first = h.store.runs.get(a)
        if not b:
            same = [r for r in h.store.runs.list(200) if r.id != first.id and _dataset(r) == _dataset(first)]
            return page(request, "experiments/compare.html", {"a": first, "choices": same, "result": None})
        result = compare_runs(h.store, a, b, variant_a=va or None, variant_b=vb or None)
        return page(request, "experiments/compare.html", {"a": first, "choices": [], "result": result})

    @api.get("/experiments/{run_id}")
    def run_page(
        request: Request,
        run_id: str,
        baseline: str | None = None,
        show: str = "all",
        failed: str | None = None,
        q: str | None = None,
        order: str = "",
        offset: int = 0,
    ) -> Response:
        report = analyse_latest(h.store, run_id, baseline=baseline)
        changed: Changed | None = None
        if show in ("regressions", "improvements", "either"):
            changed = show  # type: ignore[assignment]
        elif show not in SHOW:
            raise InvalidInputError(f"unknown filter show={show!r}", hint=f"one of {', '.join(SHOW)}")
        listing = list_cases(
            h.store,
            report.run.id,
            baseline=report.baseline,
            changed=changed,
            failed=failed or None,
            errors=show == "errors",
            flaky=show == "flaky",
            search=q or None,
            order=order or None,  # type: ignore[arg-type]  # list_cases checks it
            limit=CASES_PER_PAGE,
            offset=max(offset, 0),
            report=report,
        )
        query: dict[str, Any] = {
            "baseline": report.baseline,
            "show": show,
            "failed": failed or "",
            "q": q or "",
            "order": order,
        }
        return page(
            request,
            "experiments/run.html",
            {
                "report": report,
                "summary": trusted(report_sections(report)),
                "listing": listing,
                "query": query,
                "shows": SHOW,
                "orders": ORDERS,
                "per_page": CASES_PER_PAGE,
            },
        )

    @api.get("/experiments/{run_id}/cases/{case_id:path}")
    def case_page(request: Request, run_id: str, case_id: str) -> Response:
        detail = case_detail(h.store, run_id, case_id)
        return page(
            request, "experiments/case.html", {"detail": detail, "run": h.store.runs.get(detail.run_id)}
        )

    return api
