"""Experiments: a matrix of variants over a dataset version, run resumably, compared honestly."""

from honed.experiments.analysis import RunReport, analyse
from honed.experiments.cases import CaseListing, list_cases
from honed.experiments.report_html import render_html, write_html
from honed.experiments.runner import Pending, arun, estimate_cost, pending, plan, run_experiment
from honed.experiments.spec import (
    Experiment,
    ExperimentSpec,
    Variant,
    load_experiment,
    load_spec,
    parse_spec,
    resolve,
)

__all__ = [
    "CaseListing",
    "Experiment",
    "ExperimentSpec",
    "Pending",
    "RunReport",
    "Variant",
    "analyse",
    "arun",
    "estimate_cost",
    "list_cases",
    "load_experiment",
    "load_spec",
    "parse_spec",
    "pending",
    "plan",
    "render_html",
    "resolve",
    "run_experiment",
    "write_html",
]
