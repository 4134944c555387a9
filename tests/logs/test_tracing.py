"""Logging the user's own application: `Honed.log`, `feedback`, the `trace` decorator, `generation`."""

from __future__ import annotations

import asyncio
import subprocess
import sys
from pathlib import Path

import pytest

import honed
from honed.api import connect
from honed.errors import InvalidInputError, NotFoundError
from honed.logs.context import log_context
from honed.store.logs import LogFilter
from honed.testing import scripted


def test_log_then_feedback_on_the_id_just_returned(workspace: Path) -> None:
    with connect() as h:
        with log_context(session_id="s1", metadata={"tenant": "acme"}):
            log_id = h.log(
                model="my-app/answer",
                messages=[{"role": "user", "content": "hi"}],
                output="hello",
                latency_s=0.3,
                metadata={"route": "/chat"},
            )
        h.feedback(log_id, "thumbs", "down")
        h.feedback(log_id, "correction", text="Hello! How can I help?")
        entry = h.store.logs.get(log_id)
    assert entry.log["source"] == "app" and entry.log["session_id"] == "s1"
    assert entry.log["metadata"] == {"tenant": "acme", "route": "/chat"}
    assert [(f["kind"], f["value"], f["text"]) for f in entry.feedback] == [
        ("thumbs", 0.0, None),
        ("correction", None, "Hello! How can I help?"),
    ]


def test_bad_records_and_unknown_ids_are_errors_that_write_nothing(workspace: Path) -> None:
    with connect() as h:
        with pytest.raises(InvalidInputError, match="messages"):
            h.log(model="m", output="no input given")
        with pytest.raises(InvalidInputError, match="unknown_field"):
            h.log(model="m", inputs={}, unknown_field=1)
        log_id = h.log(model="m", inputs={"q": 1})
        with pytest.raises(NotFoundError, match="log-nope"):
            h.feedback("log-nope", "thumbs", 1)
        with pytest.raises(InvalidInputError, match="thumbs"):
            h.feedback(log_id, "thumbs", 3)
        h.flush_logs()
        assert h.store.logs.count() == 1
        assert h.store.logs.feedback_for([log_id, "log-nope"]) == {log_id: [], "log-nope": []}


def test_trace_logs_sync_calls_and_their_model_calls_share_the_trace(workspace: Path) -> None:
    with connect(use_cache=False) as h, scripted("t", ["Paris"]) as model:

        @h.trace(model="my-app/answer", prompt="qa")
        def answer(question: str, *, style: str = "short") -> dict[str, str]:
            return {"answer": h.complete(model, question).text, "style": style}

        assert answer("Capital?") == {"answer": "Paris", "style": "short"}
        h.flush_logs()
        (app_log,) = h.store.logs.query(LogFilter(source="app"))
        (call_log,) = h.store.logs.query(LogFilter(source="api"))
    assert app_log["model"] == "my-app/answer" and app_log["prompt"] == "qa"
    assert app_log["inputs"] == {"question": "Capital?", "style": "short"}
    assert app_log["output"] == '{"answer": "Paris", "style": "short"}' and app_log["latency_s"] > 0
    assert app_log["trace_id"] and call_log["trace_id"] == app_log["trace_id"]


def test_trace_logs_async_calls_and_exceptions_then_reraises(workspace: Path) -> None:
    with connect() as h:

        @h.trace
        async def fetch(n: int, blob: object = None) -> str:
            await asyncio.sleep(0)
            if n < 0:
                raise ValueError("negative")
            return f"got {n}"

        assert asyncio.run(fetch(3)) == "got 3"
        with pytest.raises(ValueError, match="negative"):
            asyncio.run(fetch(-1, blob=object()))
        h.flush_logs()
        ok = h.store.logs.query(LogFilter(has_error=False))
        bad = h.store.logs.query(LogFilter(has_error=True))
    assert [r["output"] for r in ok] == ["got 3"] and ok[0]["model"].endswith("fetch")
    assert bad[0]["error"] == "ValueError: negative" and bad[0]["output"] is None
    assert bad[0]["inputs"]["n"] == -1 and bad[0]["inputs"]["blob"].startswith("<object object")


def test_generation_block_is_logged_with_what_it_set(workspace: Path) -> None:
    with connect() as h:
        with h.generation(model="vendor/model-x", inputs={"q": "2+2"}) as g:
            g.output = "4"
            g.input_tokens, g.output_tokens = 7, 1
        with pytest.raises(KeyError), h.generation(model="vendor/model-x", inputs={"q": "?"}) as failed:
            raise KeyError("boom")
        h.flush_logs()
        log = h.store.logs.get(g.log_id or "").log
        bad = h.store.logs.get(failed.log_id or "").log
    assert (log["output"], log["input_tokens"], log["output_tokens"]) == ("4", 7, 1)
    assert bad["error"] == "KeyError: 'boom'"


def test_module_level_functions_use_the_current_workspace(workspace: Path) -> None:
    @honed.trace
    def shout(text: str) -> str:
        return text.upper()

    assert shout("hi") == "HI"
    log_id = honed.log(model="m", inputs={"a": 1}, output="b")
    honed.feedback(log_id, "copied")
    with connect() as h:
        honed.api.default_workspace().flush_logs()
        assert h.store.logs.count() == 2 and h.store.logs.count(LogFilter(feedback="copied")) == 1
    honed.api.close_default_workspace()


def test_logging_does_not_import_the_facade() -> None:
    # honed.api imports honed.logs; the reverse would be a cycle (the default workspace lives in honed.api)
    code = "import sys, honed.logs.tracing, honed.logs.online; assert 'honed.api' not in sys.modules"
    subprocess.run([sys.executable, "-c", code], check=True)
