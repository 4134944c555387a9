"""Latency that matches a call made alone: a run on the local model (which batches its calls) times a few
calls one at a time afterwards, stores them with the run, and every report shows those, marked."""

from __future__ import annotations

import json
import statistics
from pathlib import Path

import pytest

from honed.api import Honed
from honed.config import load_settings
from honed.datasets import Case, record_cases
from honed.experiments import analyse, parse_spec, resolve, run_experiment
from honed.experiments.gate import measure
from honed.prompts import Prompt, push
from honed.store.schema import logs
from tests.support.cli import honed

LOCAL = "local/smollm2-135m-instruct"


def _setup(workspace: Path, model: str, n_cases: int = 3) -> None:
    h = Honed(load_settings(start=workspace))
    prompt = {
        "name": "qa",
        "model": model,
        "params": {"max_tokens": 8, "temperature": 0},
        "messages": [{"role": "user", "content": "Capital of {{ country }}?"}],
    }
    push(h.store, [Prompt.model_validate(prompt)], note="v1")
    countries = ["France", "Spain", "Italy", "Peru", "Chile"][:n_cases]
    record_cases(h.store, "caps", [Case(id=f"c{i}", inputs={"country": c}) for i, c in enumerate(countries)])
    h.close()


def _spec(workspace: Path, **extra: object) -> Path:
    path = workspace / "exp.yaml"
    body = {
        "name": "lat",
        "dataset": "caps",
        "variants": [{"prompt": "qa@latest"}],
        "evaluators": [{"type": "contains", "strings": ["a"]}],
        **extra,
    }
    path.write_text(json.dumps(body))
    return path


@pytest.mark.slow
def test_a_local_run_reports_calls_timed_one_at_a_time(
    workspace: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _setup(workspace, LOCAL)
    monkeypatch.setenv("HONED_LOCAL_LATENCY_CALLS", "2")
    spec = str(_spec(workspace))
    r = honed("experiments", "run", spec, cwd=workspace, env={"COLUMNS": "100"}, timeout=300)
    assert r.returncode == 0, r.stderr
    assert "2 calls timed one at a time after the run" in r.stdout, r.stdout
    assert "and a call took its batch's time: p50 qa@" in r.stdout
    assert max(len(line) for line in r.stdout.splitlines()) <= 100
    row = next(line for line in r.stdout.splitlines() if line.startswith("│ qa@"))
    assert row.rstrip("│ ").endswith(" ms *") or row.rstrip("│ ").endswith(" s *"), row

    h = Honed(load_settings(start=workspace))
    run = h.store.runs.list()[0]
    assert run.latency_probe is not None and run.latency_probe["calls"] == 2
    [(variant, times)] = run.latency_probe["variants"].items()
    assert len(times) == 2 and all(t > 0 for t in times)
    usage = analyse(h.store, run.id, n_boot=100).usage[variant]
    assert (usage.latency_mode, usage.latency_calls) == ("one at a time", 2)
    assert usage.latency_p50_s == pytest.approx(statistics.median(times))
    assert usage.run_latency_p50_s is not None  # the batched run's own figure is kept beside it
    # The probe's calls (a warm-up and the two timed) are logged with the run id, uncached.
    with h.store.read() as conn:
        probe_logs = [
            m
            for (m,) in conn.execute(logs.select().with_only_columns(logs.c.metadata))
            if (m or {}).get("purpose") == "latency probe"
        ]
    assert len(probe_logs) == 3 and all(m["run_id"] == run.id for m in probe_logs)
    h.close()

    shown = json.loads(honed("experiments", "show", run.id[:6], "--json", cwd=workspace).stdout)
    assert shown["usage"][variant]["latency_mode"] == "one at a time"

    # The same spec again, every call from the cache: nothing new ran, so nothing is timed again and
    # the first run's figures stand (as a cached answer keeps its call's latency).
    again = honed("experiments", "run", spec, "--new", cwd=workspace, env={"COLUMNS": "100"}, timeout=300)
    assert again.returncode == 0, again.stderr
    assert f"every call came from the cache: timing kept from run {run.id} (qa@v1)" in again.stdout
    h = Honed(load_settings(start=workspace))
    second = h.store.runs.list()[0]
    assert second.id != run.id and second.latency_probe is not None
    assert second.latency_probe["variants"][variant] == times
    assert second.latency_probe["reused_from"] == {variant: run.id}
    with h.store.read() as conn:
        n_probe_logs = sum(
            1
            for (m,) in conn.execute(logs.select().with_only_columns(logs.c.metadata))
            if (m or {}).get("purpose") == "latency probe"
        )
    assert n_probe_logs == 3  # no new probe calls
    h.close()

    # The CI gate checks the same figure the report shows.
    limits = {"latency_p95_s": 0.0001}
    gate = _spec(workspace, limits=limits)
    r = honed("eval", "run", str(gate), cwd=workspace, timeout=300)
    assert r.returncode == 1, r.stdout + r.stderr
    assert "2 calls timed one at a time after the run)" in r.stdout, r.stdout


def test_a_provider_that_does_not_batch_is_not_probed(
    workspace: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _setup(workspace, "scripted/echo")
    monkeypatch.setenv("HONED_LOCAL_LATENCY_CALLS", "3")
    h = Honed(load_settings(start=workspace))
    exp = resolve(h, parse_spec(json.loads(_spec(workspace).read_text())), base=workspace)
    run = run_experiment(h, exp)
    assert run.latency_probe is None
    usage = analyse(h.store, run.id, n_boot=100).usage["qa@v1"]
    assert (usage.latency_mode, usage.latency_calls, usage.run_latency_p50_s) == ("in the run", 3, None)
    h.close()


def test_the_gate_and_the_report_share_one_latency(workspace: Path) -> None:
    """A stored probe stands for the variant's latency everywhere; without one, the run's rows do (a
    cached row keeping its call's figure)."""
    _setup(workspace, "scripted/echo", n_cases=5)
    h = Honed(load_settings(start=workspace))
    exp = resolve(h, parse_spec(json.loads(_spec(workspace).read_text())), base=workspace)
    run = run_experiment(h, exp)
    again = run_experiment(h, exp, new=True)  # every call from the cache
    for run_id in (run.id, again.id):
        report = analyse(h.store, run_id, n_boot=100)
        u = report.usage["qa@v1"]
        assert u.latency_calls == 5 and u.latency_p95_s is not None
        assert measure(h.store, report)["qa@v1"].latency_p95_s == u.latency_p95_s
    h.store.runs.set_latency_probe(run.id, {"calls": 4, "variants": {"qa@v1": [0.1, 0.2, 0.3, 0.4]}})
    report = analyse(h.store, run.id, n_boot=100)
    u = report.usage["qa@v1"]
    assert (u.latency_p50_s, u.latency_p95_s, u.latency_calls) == (
        pytest.approx(0.25),
        pytest.approx(0.385),
        4,
    )
    assert measure(h.store, report)["qa@v1"].latency_p95_s == pytest.approx(0.385)
    h.close()
