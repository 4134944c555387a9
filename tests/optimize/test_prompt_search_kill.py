"""`honed optimize prompt` killed with SIGKILL mid-search, then run again: same result, no call repeated.

The student is the stub OpenAI server on 127.0.0.1 (an endpoint of honed.toml, so the `honed` subprocess
reaches it), answering as `test_prompt_search.Student` does: right only after demonstrations. The server
counts every request. To kill at a known point it holds back every request after the first `HOLD_AFTER`
answers: the search is then stuck mid-way with those answers delivered, and is killed there. "Completed"
is thus exact: a held request never got an answer, so the rerun may send it; an answered one it must not.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from honed.api import Honed
from honed.config import load_settings
from honed.datasets import record_cases
from tests.optimize.test_prompt_search import START, cases, spec
from tests.support.cli import HONED, honed
from tests.support.stub_openai import Reply, StubServer, completion, stub_openai

pytestmark = pytest.mark.slow  # three `honed` processes and about 200 calls over HTTP

HOLD_AFTER = 25  # of 72 calls: start on dev (12), the bootstrap (4), then into the first candidate on dev


class Student(StubServer):
    """Answers right only after demonstrations; records, per run, which requests it answered and which
    it was sent. Holds every request of `hold_run` after `HOLD_AFTER` answers until `release`."""

    def __init__(self) -> None:
        super().__init__()
        self.run = ""
        self.hold_run: str | None = None
        self.answered: dict[str, list[str]] = {}
        self.sent: dict[str, list[str]] = {}
        self.held = 0
        self.release = threading.Event()

    def next_reply(self, body: dict[str, Any], headers: dict[str, str]) -> Reply:
        super().next_reply(body, headers)
        messages = body["messages"]
        key = json.dumps(messages, sort_keys=True)
        with self.lock:
            run = self.run
            self.sent.setdefault(run, []).append(key)
            hold = run == self.hold_run and len(self.answered.get(run, [])) >= HOLD_AFTER
            if hold:
                self.held += 1
        if hold:
            self.release.wait()
            return Reply(drop=True)  # the process that asked is gone: no answer, never completed
        demos = any(m["role"] == "assistant" for m in messages)
        text = messages[-1]["content"].replace("q", "a") if demos else "no idea"
        with self.lock:
            self.answered.setdefault(run, []).append(key)
        return Reply(body=completion(text), delay_s=0.01)


@pytest.fixture
def student() -> Iterator[Student]:
    with stub_openai(Student()) as server:
        assert isinstance(server, Student)
        try:
            yield server
        finally:
            server.release.set()  # held requests end before the server stops, whatever the test did


def workspace_at(root: Path, student: Student) -> Path:
    from honed.config import init_workspace

    ws = init_workspace(root)
    (ws / "start.yaml").write_text(START, encoding="utf-8")
    with (ws / "honed.toml").open("a", encoding="utf-8") as f:
        f.write(f'\n[endpoints.stub]\nprovider = "openai"\nbase_url = "{student.base_url}"\n')
        f.write("max_concurrency = 4\n")
    data = spec(student="stub/student", proposer="stub/student")
    (ws / "search.yaml").write_text(json.dumps(data), encoding="utf-8")
    h = Honed(load_settings(start=ws))
    record_cases(h.store, "qa", cases())
    h.close()
    return ws


def result_of(out: subprocess.CompletedProcess[str]) -> dict[str, Any]:
    assert out.returncode == 0, out.stderr
    body = json.loads(out.stdout)
    assert isinstance(body, dict)
    return body


def comparable(r: dict[str, Any]) -> dict[str, Any]:
    """What a search found and judged, without the ids of its runs and what this process sent afresh."""
    return {
        "start": r["start"],
        "best": r["best"],
        "diff": r["diff"],
        "candidates": r["candidates"],
        "calls": r["calls"],
        "budget": {k: v for k, v in r["budget"].items()},
        "tokens": r["tokens"],
        "phases": {k: {**v, "fresh": None} for k, v in r["phases"].items()},
    }


def test_a_search_killed_mid_way_resumes_to_the_same_result_repeating_no_answered_call(
    tmp_path: Path, student: Student
) -> None:
    # The search run through without interruption, for the result to compare with.
    whole = workspace_at(tmp_path / "whole", student)
    student.run = "whole"
    expected = result_of(honed("optimize", "prompt", "search.yaml", "--json", cwd=whole))
    assert len(student.sent["whole"]) == expected["calls"] > HOLD_AFTER

    # The same search in a fresh workspace, killed once HOLD_AFTER calls were answered.
    ws = workspace_at(tmp_path / "killed", student)
    student.run, student.hold_run = "killed", "killed"
    env = {k: v for k, v in os.environ.items() if not k.startswith("HONED_")}
    proc = subprocess.Popen(
        [HONED, "optimize", "prompt", "search.yaml", "--json"],
        cwd=ws,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + 60
        while student.held == 0 and proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.05)
        assert student.held > 0 and proc.poll() is None, proc.stderr.read() if proc.stderr else ""
        # The held requests are in flight; the answered ones have had a second to be stored.
        time.sleep(1.0)
        assert proc.poll() is None
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=10)
    finally:
        if proc.poll() is None:
            proc.kill()
        if proc.stderr:
            proc.stderr.close()
    assert proc.returncode == -signal.SIGKILL
    answered = list(student.answered["killed"])
    assert len(answered) == HOLD_AFTER

    # The same command again: it finishes, as the uninterrupted search did, without re-asking anything.
    student.run = "rerun"
    student.release.set()
    again = result_of(honed("optimize", "prompt", "search.yaml", "--json", cwd=ws))
    rerun = student.sent["rerun"]
    assert rerun, "the kill came after the search had finished"
    assert not set(answered) & set(rerun)
    assert len(answered) + len(rerun) == len(student.sent["whole"])  # every call made once, in all
    assert comparable(again) == comparable(expected)
    assert again["fresh_calls"] == len(rerun) and again["calls"] == expected["calls"]
