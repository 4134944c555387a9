"""Experiments end to end on the real SQLite store with a scripted model (a fake shipped in honed)."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import time
from pathlib import Path

import pytest

from honed.api import Honed
from honed.config import load_settings
from honed.datasets import Case, record_cases
from honed.errors import BudgetExceededError, InvalidInputError
from honed.experiments import analyse, parse_spec, resolve, run_experiment
from honed.prompts import Prompt, push
from honed.testing import scripted
from tests.support.cli import HONED, assert_one_line_error, honed


def setup(workspace: Path, model: str, n_cases: int = 6) -> Honed:
    h = Honed(load_settings(start=workspace))
    for i, system in enumerate(["Answer.", "Answer with the capital only."], 1):
        prompt = Prompt.model_validate(
            {
                "name": "qa",
                "model": model,
                "messages": [
                    {"role": "system", "content": system},
                    {"role": "user", "content": "{{ country }}"},
                ],
            }
        )
        push(h.store, [prompt], note=f"v{i}")
    cases = [
        Case(id=f"c{i}", inputs={"country": f"country{i}"}, reference=f"capital{i}") for i in range(n_cases)
    ]
    record_cases(h.store, "caps", cases)
    return h


def spec(**extra: object) -> dict[str, object]:
    return {
        "name": "t",
        "dataset": "caps",
        "variants": [{"prompt": "qa@v1"}, {"prompt": "qa@v2"}],
        "evaluators": [{"type": "exact"}],
        **extra,
    }


def answer_v2_only(req) -> str:  # type: ignore[no-untyped-def]
    country = req.messages[-1]["content"]
    good = "capital only" in req.messages[0]["content"]
    return country.replace("country", "capital") if good else "I don't know"


def test_a_clear_improvement_is_called_better_with_ci_and_tests(workspace: Path) -> None:
    with scripted("cap", answer_v2_only) as model:
        h = setup(workspace, model, n_cases=12)
        run = run_experiment(h, resolve(h, parse_spec(spec(repeats=2))))
        assert run.status == "completed"
        report = analyse(h.store, run.id)
    stats = report.stats["exact"]
    assert stats.summaries["qa@v1"].mean == 0 and stats.summaries["qa@v2"].mean == 1
    comparison = stats.comparisons["qa@v2"]
    assert comparison.verdict == "better" and comparison.ci is not None and comparison.ci.low > 0
    assert comparison.passes is not None and comparison.passes.mcnemar.p_value < 0.001
    assert len(h.store.runs.results(run.id)) == 2 * 12 * 2
    rows = h.store.runs.results(run.id)
    assert {r["prompt_hash"] for r in rows} == {
        v.prompt_version.hash for v in resolve(h, parse_spec(spec())).variants
    }
    assert all(r["dataset_hash"] and r["model"] == model for r in rows)
    assert {s["evaluator_version"] for s in h.store.runs.scores(run.id)} != {None}


def test_repeats_are_independent_calls(workspace: Path) -> None:
    calls = 0

    def count(req) -> str:  # type: ignore[no-untyped-def]
        nonlocal calls
        calls += 1
        return "x"

    with scripted("rep", count) as model:
        h = setup(workspace, model, n_cases=3)
        run_experiment(h, resolve(h, parse_spec(spec(repeats=4))))
    assert calls == 2 * 3 * 4


def test_a_crashed_run_resumes_without_repeating_finished_calls(workspace: Path) -> None:
    calls: list[str] = []
    crash_after = 7

    def crashing(req) -> str:  # type: ignore[no-untyped-def]
        if len(calls) >= crash_after:
            raise RuntimeError("simulated crash")
        calls.append(req.key())
        return "x"

    with scripted("crashy", crashing) as model:
        h = setup(workspace, model)
        exp = resolve(h, parse_spec(spec()))
        with pytest.raises(RuntimeError, match="simulated crash"):
            run_experiment(h, exp)
        [stopped] = h.store.runs.list()
        assert stopped.status == "stopped"
        finished = h.store.runs.done_keys(stopped.id)
        assert 0 < len(finished) <= crash_after
    resumed_calls: list[str] = []

    def fine(req) -> str:  # type: ignore[no-untyped-def]
        resumed_calls.append(req.key())
        return "x"

    with scripted("crashy", fine):
        h2 = Honed(load_settings(start=workspace), use_cache=False)
        run = run_experiment(h2, resolve(h2, parse_spec(spec())))
    assert run.id == stopped.id and run.status == "completed"
    assert len(resumed_calls) == 2 * 6 - len(finished)
    assert len(h2.store.runs.results(run.id)) == 12


def test_errors_are_recorded_not_scored_as_zero(workspace: Path) -> None:
    from honed.errors import ProviderError

    def flaky(req) -> str | BaseException:  # type: ignore[no-untyped-def]
        if req.messages[-1]["content"] == "country0":
            return ProviderError("bad request", provider="s", status=400)
        return "capital"

    with scripted("err", flaky) as model:
        h = setup(workspace, model)
        run = run_experiment(h, resolve(h, parse_spec(spec())))
    assert run.status == "failed"
    errored = [r for r in h.store.runs.results(run.id) if r["error"]]
    assert len(errored) == 2 and "bad request" in errored[0]["error"]
    summary = analyse(h.store, run.id).stats["exact"].summaries["qa@v1"]
    assert summary.n_errors == 1 and summary.n_scored == 5


def test_budget_is_checked_before_the_run(workspace: Path) -> None:
    (workspace / "honed.toml").write_text(
        '[endpoints.paid]\nprovider = "scripted"\nreplies = ["capital"]\n'
        '[prices."paid/m"]\ninput = 1000.0\noutput = 1000.0\n'
    )
    h = setup(workspace, "paid/m")
    with pytest.raises(BudgetExceededError, match="over its budget"):
        run_experiment(h, resolve(h, parse_spec(spec(budget_usd=0.01))))
    assert h.store.runs.list() == []
    run = run_experiment(h, resolve(h, parse_spec(spec(budget_usd=0.01))), force=True)
    assert run.status == "budget_exceeded"
    assert 0 < len(h.store.runs.results(run.id)) < 12


def test_budget_with_unknown_price_is_refused(workspace: Path) -> None:
    (workspace / "honed.toml").write_text('[endpoints.mystery]\nprovider = "scripted"\nreplies = ["x"]\n')
    h = setup(workspace, "mystery/m")
    with pytest.raises(BudgetExceededError, match="no price for mystery/m"):
        run_experiment(h, resolve(h, parse_spec(spec(budget_usd=1.0))))


def test_missing_variable_fails_before_any_call(workspace: Path) -> None:
    calls = 0

    def count(req) -> str:  # type: ignore[no-untyped-def]
        nonlocal calls
        calls += 1
        return "x"

    with scripted("var", count) as model:
        h = setup(workspace, model)
        record_cases(h.store, "caps", [Case(id="odd", inputs={"nation": "x"})])
        with pytest.raises(InvalidInputError, match=r"case 'odd'.*country"):
            run_experiment(h, resolve(h, parse_spec(spec())))
    assert calls == 0


def test_bad_spec_keys_are_named(workspace: Path) -> None:
    with pytest.raises(
        InvalidInputError,
        match=r"^spec: repeat: unknown key \(allowed keys here: name, dataset, split, repeats,",
    ):
        parse_spec({**spec(), "repeat": 2})


def _spec_file(workspace: Path) -> Path:
    (workspace / "honed.toml").write_text(
        '[endpoints.slow]\nprovider = "scripted"\nreplies = ["capital"]\n'
        "delay_s = 0.15\nmax_concurrency = 2\n"
    )
    path = workspace / "exp.yaml"
    path.write_text(
        json.dumps(
            {
                **spec(),
                "variants": [{"prompt": "qa@v1", "model": "slow/m"}, {"prompt": "qa@v2", "model": "slow/m"}],
            }
        )
    )
    return path


def test_cli_run_killed_midway_resumes_with_no_repeated_calls(workspace: Path) -> None:
    h = setup(workspace, "slow/m", n_cases=10)
    h.close()
    path = _spec_file(workspace)
    env = {k: v for k, v in os.environ.items() if not k.startswith("HONED_")}
    proc = subprocess.Popen(
        [HONED, "experiments", "run", str(path), "--no-cache", "--json"],
        cwd=workspace,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    db = workspace / ".honed" / "honed.db"
    deadline = time.monotonic() + 60
    done_before = 0
    while time.monotonic() < deadline:
        time.sleep(0.1)
        try:
            with sqlite3.connect(db) as conn:
                done_before = conn.execute("SELECT count(*) FROM results").fetchone()[0]
        except sqlite3.OperationalError:
            continue
        if done_before >= 4:
            break
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    with sqlite3.connect(db) as conn:
        before = dict(conn.execute("SELECT case_id || variant, created_at FROM results").fetchall())
    assert 4 <= len(before) < 20
    r = honed("experiments", "run", str(path), "--no-cache", "--json", cwd=workspace)
    assert r.returncode == 0, r.stderr
    report = json.loads(r.stdout)
    assert report["run"]["status"] == "completed"
    with sqlite3.connect(db) as conn:
        after = dict(conn.execute("SELECT case_id || variant, created_at FROM results").fetchall())
        runs = conn.execute("SELECT count(*) FROM runs").fetchone()[0]
    assert runs == 1 and len(after) == 20
    assert all(after[k] == v for k, v in before.items())  # finished calls were not made again


@pytest.mark.slow
def test_cli_list_show_compare_and_errors(workspace: Path) -> None:
    with scripted("unused", ["x"]):
        pass
    h = setup(workspace, "scripted/echo", n_cases=3)
    h.close()
    path = workspace / "exp.yaml"
    path.write_text(json.dumps(spec()))
    assert honed("experiments", "run", str(path), "--json", cwd=workspace).returncode == 0
    runs = json.loads(honed("experiments", "list", "--json", cwd=workspace).stdout)
    assert len(runs) == 1 and runs[0]["status"] == "completed"
    shown = json.loads(
        honed("experiments", "compare", runs[0]["id"], "--baseline", "qa@v2", "--json", cwd=workspace).stdout
    )
    assert shown["baseline"] == "qa@v2" and "qa@v1" in shown["evaluators"]["exact"]["comparisons"]
    table = honed("experiments", "show", runs[0]["id"], cwd=workspace)
    assert "paired comparison" in table.stdout and "no detectable difference" in table.stdout
    assert_one_line_error(honed("experiments", "show", "zzzz", cwd=workspace), "no experiment run 'zzzz'")
    assert_one_line_error(
        honed("experiments", "run", "missing.yaml", cwd=workspace), "no such experiment spec"
    )


def test_cli_resume_continues_a_stopped_run_by_id(workspace: Path) -> None:
    calls = 0

    def crashing(req) -> str:  # type: ignore[no-untyped-def]
        nonlocal calls
        calls += 1
        if calls > 3:
            raise RuntimeError("simulated crash")
        return "x"

    with scripted("resumable", crashing) as model:
        h = setup(workspace, model, n_cases=4)
        with pytest.raises(RuntimeError):
            run_experiment(h, resolve(h, parse_spec(spec())))
    [stopped] = h.store.runs.list()
    h.close()
    (workspace / "honed.toml").write_text('[endpoints.scripted]\nprovider = "scripted"\nreplies = ["x"]\n')
    r = honed("experiments", "resume", stopped.id[:6], "--json", cwd=workspace)
    assert r.returncode == 0, r.stderr
    report = json.loads(r.stdout)
    assert report["run"]["id"] == stopped.id and report["run"]["status"] == "completed"
    again = honed("experiments", "resume", stopped.id, cwd=workspace)
    assert "already complete" in again.stderr


def test_tool_calls_are_stored_and_reach_evaluators(workspace: Path) -> None:
    from honed.models.types import ProviderResult, Usage

    call = {"id": "1", "name": "lookup", "arguments": '{"country": "x"}'}
    tool = {"type": "function", "function": {"name": "lookup", "parameters": {"type": "object"}}}
    (workspace / "checks.py").write_text(
        "def called(tool_calls):\n    return bool(tool_calls) and tool_calls[0]['name'] == 'lookup'\n"
    )
    with scripted(
        "tools", lambda req: ProviderResult("", Usage(1, 1), "tool_calls", tool_calls=(call,))
    ) as m:
        h = setup(workspace, m, n_cases=2)
        prompt = Prompt.model_validate(
            {
                "name": "qa",
                "model": m,
                "messages": [{"role": "user", "content": "{{ country }}"}],
                "tools": [tool],
            }
        )
        push(h.store, [prompt])
        exp = resolve(
            h,
            parse_spec(
                {
                    **spec(),
                    "variants": [{"prompt": "qa@v3"}],
                    "evaluators": [{"type": "python", "function": "checks.py:called"}],
                }
            ),
            base=workspace,
        )
        run = run_experiment(h, exp)
    rows = h.store.runs.results(run.id)
    assert all(r["tool_calls"] == [call] for r in rows)
    assert all(s["value"] == 1.0 for s in h.store.runs.scores(run.id))
