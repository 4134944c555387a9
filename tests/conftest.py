"""Test isolation: every test runs in its own empty folder with no HONED_* settings from the machine.

The converted local model is the one exception: it lives in the per-user model cache (converted once per
machine), so tests share it instead of paying ~20 s each.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

pytest_plugins = ["tests.support.postgres", "tests.support.chroma"]

# Under pytest-xdist every worker would start as many torch/OpenMP threads as there are cores: two workers
# on two cores then run four busy threads that spin against each other. One thread each keeps every core
# busy without that. Set before torch is imported (here, or by a `honed` subprocess that inherits it).
if os.environ.get("PYTEST_XDIST_WORKER") and int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1")) > 1:
    for _var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
        os.environ.setdefault(_var, "1")

PROJECT_ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(autouse=True)
def _isolated(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    keep = {"HONED_MODEL_CACHE"}
    for var in list(os.environ):
        if var.startswith("HONED_") and var not in keep:
            monkeypatch.delenv(var, raising=False)
    for var in ("OPENAI_API_KEY", "OPENAI_BASE_URL"):
        monkeypatch.delenv(var, raising=False)
    # A run on the local model times a few calls one at a time afterwards (honed.experiments.latency):
    # seconds per variant that only the tests of that probe need; they set it back.
    monkeypatch.setenv("HONED_LOCAL_LATENCY_CALLS", "0")
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("TRANSFORMERS_OFFLINE", "1")
    monkeypatch.chdir(tmp_path)
    yield


@pytest.fixture
def workspace(tmp_path: Path) -> Path:
    """An initialised, empty honed workspace (the current folder)."""
    from honed.config import init_workspace

    return init_workspace(tmp_path)
