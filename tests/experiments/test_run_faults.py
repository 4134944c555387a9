"""Experiments under faults, run as a user runs them (the `honed` command in a subprocess) against a stub
OpenAI server on 127.0.0.1 that records every request it receives, so a call made twice is counted.

- a run whose calls fail exits non-zero and says why, grouped;
- kill -9 loses at most the calls in flight; Ctrl-C stops sending, stores the calls in flight, says how to
  resume, and the resume repeats none;
- a command that fails stores nothing (no prompt version left behind).
"""

from __future__ import annotations

import collections
import json
import os
import signal
import sqlite3
import subprocess
import time
from pathlib import Path

import pytest

from tests.support.cli import HONED, honed
from tests.support.stub_openai import Reply, StubServer, free_port, stub_openai

CONCURRENCY = 4


def _workspace(workspace: Path, base_url: str, n_cases: int) -> Path:
    (workspace / "honed.toml").write_text(
        f'[endpoints.stub]\nprovider = "openai"\nbase_url = "{base_url}"\nmax_concurrency = {CONCURRENCY}\n'
        "timeout_s = 5\n[retry]\nbase_delay_s = 0.01\nmax_delay_s = 0.02\nmax_attempts = 2\n"
    )
    (workspace / "prompt.yaml").write_text(
        "name: qa\nmodel: stub/gpt-x\nmessages:\n  - {role: user, content: '{{ q }}'}\n"
    )
    rows = [
        json.dumps({"id": f"c{i}", "inputs": {"q": f"q{i}"}, "reference": f"echo: q{i}"})
        for i in range(n_cases)
    ]
    (workspace / "cases.jsonl").write_text("\n".join(rows) + "\n")
    assert honed("datasets", "import", "d", "cases.jsonl", cwd=workspace).returncode == 0
    spec = workspace / "exp.yaml"
    spec.write_text("name: e\ndataset: d\nvariants: [{prompt: prompt.yaml}]\nevaluators: [{type: exact}]\n")
    return spec


def _env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("HONED_") or k == "HONED_MODEL_CACHE"}
    env["COLUMNS"] = "200"
    return env


def _stored(workspace: Path) -> int:
    try:
        with sqlite3.connect(workspace / ".honed" / "honed.db") as conn:
            return int(conn.execute("SELECT count(*) FROM results WHERE error IS NULL").fetchone()[0])
    except sqlite3.OperationalError:  # the database is being created or written
        return 0


def _start_and_stop(workspace: Path, spec: Path, sig: int, at: int) -> subprocess.Popen[str]:
    """Start `honed experiments run`, then send `sig` once `at` results are stored."""
    proc = subprocess.Popen(
        [HONED, "experiments", "run", str(spec), "--no-cache", "--json"],
        cwd=workspace,
        env=_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    deadline = time.monotonic() + 90
    while _stored(workspace) < at:
        assert proc.poll() is None, proc.communicate()
        assert time.monotonic() < deadline, "the run made no progress"
        time.sleep(0.02)
    proc.send_signal(sig)
    return proc


def _repeated(stub: StubServer) -> int:
    """How many calls the server received more than once (each case's question is distinct)."""
    seen = collections.Counter(r["body"]["messages"][-1]["content"] for r in stub.requests)
    return sum(n - 1 for n in seen.values())


@pytest.mark.slow
def test_kill_9_loses_at_most_the_calls_in_flight(workspace: Path) -> None:
    with stub_openai() as stub:
        stub.default_delay_s = 0.005  # fast calls: many finish between two writes of a buffering writer
        spec = _workspace(workspace, stub.base_url, n_cases=400)
        proc = _start_and_stop(workspace, spec, signal.SIGKILL, at=120)
        proc.communicate(timeout=30)
        r = honed("experiments", "run", str(spec), "--no-cache", "--json", cwd=workspace)
        assert r.returncode == 0, r.stderr
        assert json.loads(r.stdout)["run"]["status"] == "completed"
        assert len({q["body"]["messages"][-1]["content"] for q in stub.requests}) == 400
        assert _repeated(stub) <= CONCURRENCY


@pytest.mark.slow
def test_ctrl_c_stores_the_calls_in_flight_and_the_resume_repeats_none(workspace: Path) -> None:
    with stub_openai() as stub:
        stub.default_delay_s = 0.3  # slow calls: some are always in flight when Ctrl-C comes
        spec = _workspace(workspace, stub.base_url, n_cases=40)
        proc = _start_and_stop(workspace, spec, signal.SIGINT, at=8)
        _, err = proc.communicate(timeout=60)
        assert proc.returncode == 130, err
        last = [line for line in err.splitlines() if line.strip()][-1]
        assert last.startswith("interrupted: ") and "run the same command to resume" in last, err
        assert "Traceback" not in err
        stopped_at = _stored(workspace)
        assert 8 <= stopped_at < 40
        sent = len(stub.requests)
        assert sent == stopped_at  # every call sent was finished and stored: none dropped, none started after
        r = honed("experiments", "run", str(spec), "--no-cache", "--json", cwd=workspace)
        assert r.returncode == 0, r.stderr
        assert _repeated(stub) == 0 and len(stub.requests) == 40
    # The resumed run's header says what was kept and what is left, not the whole run's size.
    run_id = json.loads(r.stdout)["run"]["id"]
    assert f"resuming run {run_id}: {stopped_at} done, {40 - stopped_at} to go" in r.stderr, r.stderr


@pytest.mark.slow
def test_a_run_whose_calls_fail_exits_non_zero_with_the_reasons_grouped(workspace: Path) -> None:
    spec = _workspace(workspace, f"http://127.0.0.1:{free_port()}/v1", n_cases=5)
    r = honed("experiments", "run", str(spec), "--json", cwd=workspace)
    assert r.returncode == 3, r.stderr
    report = json.loads(r.stdout)
    assert report["run"]["status"] == "failed"
    [group] = report["errors"]
    assert (
        group["where"] == "call"
        and group["count"] == 5
        and "cannot reach endpoint 'stub'" in group["message"]
    )
    assert "5 call(s) failed after retries" in r.stderr
    assert "    5 x call: cannot reach endpoint 'stub'" in r.stderr
    with stub_openai() as stub:  # the endpoint is back: the same command retries the failed calls
        spec = _workspace(workspace, stub.base_url, n_cases=5)
        stub.script = [Reply(status=503)] * 10  # every call and its one retry (max_attempts 2) fail
        r = honed("experiments", "run", str(spec), "--json", cwd=workspace)
        assert r.returncode == 3 and "5 x call: endpoint 'stub' failed with HTTP 503" in r.stderr
        assert "gave up after 2 attempts" in r.stderr
        r = honed("experiments", "run", str(spec), "--json", cwd=workspace)  # and now they succeed
    assert r.returncode == 0 and json.loads(r.stdout)["errors"] == []


def test_a_failing_evaluator_makes_the_run_exit_non_zero(workspace: Path) -> None:
    with stub_openai() as stub:
        spec = _workspace(workspace, stub.base_url, n_cases=3)
        (workspace / "checks.py").write_text("def check(output):\n    raise ValueError('bad check')\n")
        spec.write_text(
            "name: e\ndataset: d\nvariants: [{prompt: prompt.yaml}]\n"
            "evaluators: [{type: exact}, {type: python, function: 'checks.py:check'}]\n"
        )
        r = honed("experiments", "run", str(spec), "--json", cwd=workspace)
    assert r.returncode == 3, r.stderr
    [group] = json.loads(r.stdout)["errors"]
    assert group["count"] == 3 and "bad check" in group["message"]


def test_a_failed_command_stores_no_prompt_version(workspace: Path) -> None:
    with stub_openai() as stub:
        spec = _workspace(workspace, stub.base_url, n_cases=3)
        spec.write_text(
            "name: e\ndataset: d\nvariants: [{prompt: prompt.yaml}]\nevaluators: [{type: no_such_check}]\n"
        )
        r = honed("experiments", "run", str(spec), cwd=workspace)
        assert r.returncode == 1 and "no_such_check" in r.stderr
        (workspace / "prompt.yaml").write_text(
            "name: qa\nmodel: stub/gpt-x\nmessages:\n  - {role: user, content: '{{ question }}'}\n"
        )
        spec.write_text(
            "name: e\ndataset: d\nvariants: [{prompt: prompt.yaml}]\nevaluators: [{type: exact}]\n"
        )
        r = honed("experiments", "run", str(spec), cwd=workspace)
        assert r.returncode == 1 and "question" in r.stderr
        assert stub.requests == []
    listed = honed("prompts", "list", "--json", cwd=workspace)
    assert listed.returncode == 0 and json.loads(listed.stdout) == []
    with sqlite3.connect(workspace / ".honed" / "honed.db") as conn:
        assert conn.execute("SELECT count(*) FROM runs").fetchone()[0] == 0
