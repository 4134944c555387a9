"""The optimisation loop: a diagnosis of context vs behaviour, a declarative ladder of steps run as one
experiment, a ledger of what each step bought in quality, tokens, latency and cost, and its HTML report."""

from honed.optimize.diagnose import Diagnosis, diagnose_plan, stored_diagnosis
from honed.optimize.ladder import KIND, Ledger, LedgerStep, ladder_experiment, run_ladder, stored_ledger
from honed.optimize.plan import LadderPlan, Step, load_plan, parse_plan, up_to
from honed.optimize.report import render_ladder_html, write_ladder_html

__all__ = [
    "KIND",
    "Diagnosis",
    "LadderPlan",
    "Ledger",
    "LedgerStep",
    "Step",
    "diagnose_plan",
    "ladder_experiment",
    "load_plan",
    "parse_plan",
    "render_ladder_html",
    "run_ladder",
    "stored_diagnosis",
    "stored_ledger",
    "up_to",
    "write_ladder_html",
]
