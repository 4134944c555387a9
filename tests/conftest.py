"""Test isolation: every test runs in its own empty folder with no HONED_* settings from the machine.

The converted local model is the one exception: it lives in the per-user model cache (converted once per
machine), so tests share it instead of paying ~20 s each.
"""

from __future__ import annotations

import collections
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

#: Handed to the workers first, longest first (wall times on 2 cores under load, from `--durations`).
#: `--dist loadfile` gives files out in collection order, and a long file started late runs on alone at
#: the end while the other core idles: the Cranfield module (it embeds 1,400 abstracts twice) did so for
#: its last minutes. scripts/test.sh turns off pytest-xdist's own reordering (most tests first), which
#: would put these three-test files near the end again; the other files follow in that same order.
FIRST = (
    "tests/rag/test_cranfield.py",  # ~375 s
    "tests/optimize/test_ladder_local.py",  # ~85 s
    "tests/rag/test_kb_import.py",
    "tests/rag/test_rag_experiment.py",
    "tests/importers/test_promptfoo.py",
    "tests/finetune/test_resume.py",
    "tests/cli/test_kb_finetune_cli.py",
    "tests/finetune/test_compare.py",  # ~40 s
)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    files = collections.Counter(item.nodeid.split("::", 1)[0] for item in items)
    rank = {path: i for i, path in enumerate(FIRST)}

    def order(item: pytest.Item) -> tuple[int, int]:
        path = item.nodeid.split("::", 1)[0]
        return rank.get(path, len(FIRST)), -files[path]

    items.sort(key=order)  # stable: a file's tests stay together and in their order


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
