"""The optimisation loop: a declarative ladder of steps, run as one experiment, with a ledger of what
each step bought in quality, tokens, latency and cost."""

from honed.optimize.ladder import KIND, Ledger, LedgerStep, ladder_experiment, run_ladder, stored_ledger
from honed.optimize.plan import LadderPlan, Step, load_plan, parse_plan

__all__ = [
    "KIND",
    "LadderPlan",
    "Ledger",
    "LedgerStep",
    "Step",
    "ladder_experiment",
    "load_plan",
    "parse_plan",
    "run_ladder",
    "stored_ledger",
]
