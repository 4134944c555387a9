"""Experiments: a matrix of variants over a dataset version, run resumably, compared honestly."""

from honed.experiments.analysis import RunReport, analyse
from honed.experiments.report_html import render_html, write_html
from honed.experiments.runner import arun, estimate_cost, plan, run_experiment
from honed.experiments.spec import Experiment, ExperimentSpec, Variant, load_spec, parse_spec, resolve

__all__ = [
    "Experiment",
    "ExperimentSpec",
    "RunReport",
    "Variant",
    "analyse",
    "arun",
    "estimate_cost",
    "load_spec",
    "parse_spec",
    "plan",
    "render_html",
    "resolve",
    "run_experiment",
    "write_html",
]
