"""Experiments: a matrix of variants over a dataset version, run resumably, compared honestly."""

from honed.experiments.analysis import RunReport, analyse
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
    "resolve",
    "run_experiment",
]
