"""Every model call honed makes is logged (not cache hits), with the log context's fields."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest

from honed.api import Honed, connect
from honed.datasets import Case, record_cases
from honed.errors import ProviderError
from honed.experiments import parse_spec, resolve, run_experiment
from honed.logs.context import current, log_context
from honed.models.types import ChatRequest
from honed.prompts import Prompt, push
from honed.run import run_prompt, run_prompt_many
from honed.store.logs import LogFilter
from honed.testing import scripted


def stored(h: Honed, log_id: str | None) -> dict[str, Any]:
    assert log_id is not None
    h.flush_logs()
    return h.store.logs.get(log_id).log


def test_a_call_is_logged_with_tokens_latency_and_messages(workspace: Path) -> None:
    with connect(use_cache=False) as h, scripted("m", ["Paris."]) as model:
        c = h.complete(model, "Capital of France?", {"temperature": 0.2, "max_tokens": 5})
        log = stored(h, c.log_id)
        assert log["source"] == "api" and log["model"] == model and log["output"] == "Paris."
        assert log["messages"] == [{"role": "user", "content": "Capital of France?"}]
        assert log["params"] == {"temperature": 0.2, "max_tokens": 5}
        assert (log["input_tokens"], log["output_tokens"]) == (c.usage.input_tokens, c.usage.output_tokens)
        assert log["latency_s"] == pytest.approx(c.latency_s) and log["error"] is None
        # the log id is what feedback refers to
        h.feedback(c.log_id, "thumbs", "up")
        assert h.store.logs.count(LogFilter(thumbs=1)) == 1


def test_a_failed_call_is_logged_with_its_error_and_no_key(
    workspace: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test-0123456789secret")
    down = ProviderError("bad key sk-test-0123456789secret", provider="scripted", status=401)
    with connect() as h, scripted("down", [down]) as model:
        with pytest.raises(ProviderError):
            h.complete(model, "hi")
        h.flush_logs()
        (log,) = h.store.logs.query(LogFilter(has_error=True))
    assert log["model"] == model and log["output"] is None and log["latency_s"] >= 0
    assert "bad key" in log["error"] and "0123456789secret" not in log["error"]


def test_cache_hits_are_not_logged(workspace: Path) -> None:
    with connect(use_cache=True) as h, scripted("c", ["same"]) as model:
        first = h.complete(model, "q")
        again = h.complete(model, "q")
        assert again.cached and again.log_id is None and first.log_id is not None
        h.flush_logs()
        assert h.store.logs.count() == 1


def test_logging_can_be_turned_off(workspace: Path) -> None:
    with connect(logging={"enabled": False}) as h, scripted("off", ["x"]) as model:
        assert h.complete(model, "q").log_id is None
        assert h.store.logs.count() == 0


def test_context_fields_nest_and_reach_concurrent_calls(workspace: Path) -> None:
    with connect(use_cache=False) as h, scripted("ctx", lambda r: "ok") as model:
        requests = [ChatRequest.of(model, f"q{i}") for i in range(5)]
        with log_context(source="serve", session_id="s-1", metadata={"user": "u1"}):
            with log_context(trace_id="t-9", metadata={"route": "/chat"}):
                assert current()["metadata"] == {"user": "u1", "route": "/chat"}
                results = h.client.run(requests)
            assert "trace_id" not in current()
        assert current() == {}
        h.flush_logs()
        logs = h.store.logs.query(LogFilter(session_id="s-1"))
    assert len(logs) == 5 and {c.log_id for c in results if not isinstance(c, Exception)} == {
        r["id"] for r in logs
    }
    assert all(r["source"] == "serve" and r["trace_id"] == "t-9" for r in logs)
    assert all(r["metadata"] == {"user": "u1", "route": "/chat"} for r in logs)


def test_context_does_not_leak_between_tasks(workspace: Path) -> None:
    async def task(name: str) -> dict[str, Any]:
        with log_context(session_id=name):
            await asyncio.sleep(0.01)
            return current()

    async def main() -> list[dict[str, Any]]:
        return list(await asyncio.gather(task("a"), task("b")))

    assert [c["session_id"] for c in asyncio.run(main())] == ["a", "b"]


def test_prompt_runs_and_experiments_log_what_produced_them(workspace: Path) -> None:
    with connect(use_cache=False) as h, scripted("p", lambda r: "capital") as model:
        prompt = Prompt.model_validate(
            {"name": "qa", "model": model, "messages": [{"role": "user", "content": "{{ country }}?"}]}
        )
        run_prompt(h, prompt, {"country": "France"})
        h.flush_logs()
        (log,) = h.store.logs.query(LogFilter(prompt="qa"))
        assert log["prompt_version"] == prompt.version() and log["inputs"] == {"country": "France"}

        push(h.store, [prompt], note="v1")
        record_cases(h.store, "caps", [Case(id=f"c{i}", inputs={"country": f"x{i}"}) for i in range(3)])
        spec = {
            "name": "t",
            "dataset": "caps",
            "variants": [{"prompt": "qa"}],
            "evaluators": [{"type": "exact"}],
        }
        run = run_experiment(h, resolve(h, parse_spec(spec)))
        h.flush_logs()
        logs = h.store.logs.query(LogFilter(source="experiment"))
    assert len(logs) == 3
    assert {r["metadata"]["case_id"] for r in logs} == {"c0", "c1", "c2"}
    assert all(r["metadata"]["run_id"] == run.id and r["prompt"] == "qa" for r in logs)
    assert {r["inputs"]["country"] for r in logs} == {"x0", "x1", "x2"}


def test_many_runs_of_a_prompt_each_log_their_own_inputs(workspace: Path) -> None:
    with (
        connect(use_cache=False) as h,
        scripted("many", lambda r: str(r.messages[-1]["content"])[::-1]) as model,
    ):
        prompt = Prompt.model_validate(
            {"name": "rev", "model": model, "messages": [{"role": "user", "content": "{{ word }}"}]}
        )
        results = run_prompt_many(h, prompt, [{"word": w} for w in ("abc", "xyz", "{{")])
        assert [r.text for r in results if not isinstance(r, Exception)] == ["cba", "zyx", "{{"[::-1]]
        h.flush_logs()
        by_input = {r["inputs"]["word"]: r for r in h.store.logs.query(LogFilter(prompt="rev"))}
    assert set(by_input) == {"abc", "xyz", "{{"}
    assert all(r["prompt_version"] == prompt.version() for r in by_input.values())
    assert by_input["xyz"]["output"] == "zyx"
    assert {r.log_id for r in results if not isinstance(r, Exception)} == {r["id"] for r in by_input.values()}
