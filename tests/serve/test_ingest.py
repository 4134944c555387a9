"""`POST /v1/logs`, `POST /v1/feedback`, `GET /v1/logs/ID`: all-or-nothing batches into the real store.

FastAPI's TestClient drives the app in-process: a socket would add nothing to what these tests check (the
real-socket path is covered in test_auth.py and test_tokens_cli.py). The store is real SQLite and
PostgreSQL.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from honed.config import load_settings
from honed.models.client import ModelClient
from honed.serve import create_app, ingest
from honed.store import Store
from honed.store.logs import LogFilter

# A loopback server answers only to loopback Host names (TestClient's default is "testserver").
LOCAL = "http://127.0.0.1"


@pytest.fixture
def store(database_url: str) -> Iterator[Store]:
    with Store.open(database_url) as opened:
        yield opened


def app_client(store: Store | None, tmp_path: Path) -> TestClient:
    client = ModelClient(load_settings(start=tmp_path), use_cache=False)
    return TestClient(create_app(client, served_endpoints=("scripted",), store=store), base_url=LOCAL)


@pytest.fixture
def http(store: Store, tmp_path: Path) -> Iterator[TestClient]:
    with app_client(store, tmp_path) as c:
        yield c


def log(i: int, **extra: Any) -> dict[str, Any]:
    return {
        "id": f"app-{i}",
        "model": "gpt-4o-mini",
        "messages": [{"role": "user", "content": f"question {i}"}],
        "output": f"answer {i}",
        "input_tokens": 5,
        "output_tokens": 2,
        "session_id": "s-1",
        **extra,
    }


def test_a_batch_is_stored_and_readable(http: TestClient, store: Store) -> None:
    reply = http.post("/v1/logs", json={"logs": [log(1), log(2, created_at="2025-01-02T03:04:05Z")]})
    assert reply.status_code == 200, reply.text
    assert reply.json() == {"accepted": 2, "ids": ["app-1", "app-2"]}
    rows = {r["id"]: r for r in store.logs.query()}
    assert set(rows) == {"app-1", "app-2"}
    assert rows["app-1"]["source"] == "app" and rows["app-1"]["output"] == "answer 1"
    assert rows["app-2"]["created_at"].year == 2025
    # A bare list works too, and a record without an id gets one.
    reply = http.post("/v1/logs", json=[{"model": "m", "inputs": {"q": "x"}, "output": "y"}])
    assert reply.status_code == 200 and reply.json()["ids"][0].startswith("log-")
    assert store.logs.count() == 3


def test_one_bad_record_rejects_the_whole_batch(http: TestClient, store: Store) -> None:
    batch = [log(1), log(2), log(3, input_tokens=-1), log(4, colour="red")]
    reply = http.post("/v1/logs", json={"logs": batch})
    assert reply.status_code == 422
    error = reply.json()["error"]
    assert error["param"] == "logs[2].input_tokens"
    assert "logs[2].input_tokens" in error["message"] and "1 more invalid" in error["message"]
    assert "none of the 4 records were kept" in error["message"]
    reply = http.post("/v1/logs", json={"logs": [log(1), {"output": "no model, no messages"}]})
    assert reply.status_code == 422 and reply.json()["error"]["param"].startswith("logs[1]")
    assert store.logs.count() == 0


def test_duplicate_ids_keep_nothing(http: TestClient, store: Store) -> None:
    reply = http.post("/v1/logs", json={"logs": [log(1), log(2), log(1)]})
    assert reply.status_code == 409 and reply.json()["error"]["param"] == "logs[2].id"
    assert store.logs.count() == 0
    assert http.post("/v1/logs", json={"logs": [log(1)]}).status_code == 200
    # Resending a stored id with new ones: the new ones are not kept either.
    reply = http.post("/v1/logs", json={"logs": [log(5), log(1)]})
    assert reply.status_code == 409
    assert "'app-1' is already stored" in reply.json()["error"]["message"]
    assert [r["id"] for r in store.logs.query()] == ["app-1"]


def test_feedback_is_all_or_nothing(http: TestClient, store: Store) -> None:
    assert http.post("/v1/logs", json=[log(1), log(2)]).status_code == 200
    good = [
        {"log_id": "app-1", "kind": "thumbs", "value": "up"},
        {"log_id": "app-2", "kind": "rating", "value": 4},
        {"log_id": "app-2", "kind": "copied"},
    ]
    reply = http.post(
        "/v1/feedback", json={"feedback": [*good, {"log_id": "app-9", "kind": "thumbs", "value": 0}]}
    )
    assert reply.status_code == 404 and "'app-9'" in reply.json()["error"]["message"]
    assert store.logs.feedback_for(["app-1", "app-2"]) == {"app-1": [], "app-2": []}
    reply = http.post(
        "/v1/feedback", json={"feedback": [*good, {"log_id": "app-1", "kind": "thumbs", "value": 7}]}
    )
    assert reply.status_code == 422 and reply.json()["error"]["param"] == "feedback[3]"
    reply = http.post("/v1/feedback", json={"feedback": good})
    assert reply.status_code == 200 and reply.json()["accepted"] == 3
    assert [r["id"] for r in store.logs.query(LogFilter(thumbs=1))] == ["app-1"]
    assert [r["id"] for r in store.logs.query(LogFilter(min_rating=4))] == ["app-2"]


def test_get_log_returns_feedback_and_scores(http: TestClient, store: Store) -> None:
    assert http.post("/v1/logs", json=[log(1)]).status_code == 200
    assert http.post(
        "/v1/feedback", json=[{"log_id": "app-1", "kind": "comment", "text": "great"}]
    ).is_success
    score = {"log_id": "app-1", "evaluator": "judge", "evaluator_version": "sha256:v", "value": 4.0}
    store.logs.put_scores(
        [{**score, "passed": True, "reason": "ok", "error": None, "created_at": datetime.now(UTC)}]
    )
    reply = http.get("/v1/logs/app-1")
    assert reply.status_code == 200
    body = reply.json()
    assert body["log"]["id"] == "app-1" and body["log"]["messages"][0]["content"] == "question 1"
    assert [f["text"] for f in body["feedback"]] == ["great"]
    assert [(s["evaluator"], s["value"], s["reason"]) for s in body["scores"]] == [("judge", 4.0, "ok")]
    missing = http.get("/v1/logs/nope")
    assert missing.status_code == 404 and "'nope'" in missing.json()["error"]["message"]


def test_limits_and_malformed_bodies(http: TestClient, store: Store, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(ingest, "MAX_RECORDS", 3)
    reply = http.post("/v1/logs", json=[log(i) for i in range(4)])
    assert reply.status_code == 413 and "at most 3 records" in reply.json()["error"]["message"]
    # The body-size limit, the same on every route, is tested in test_guard.py.
    reply = http.post("/v1/logs", content=b"{not json", headers={"content-type": "application/json"})
    assert reply.status_code == 400 and "not JSON" in reply.json()["error"]["message"]
    reply = http.post("/v1/logs", json={"log": [log(1)]})
    assert reply.status_code == 400 and "unknown key 'log'" in reply.json()["error"]["message"]
    assert store.logs.count() == 0


def test_a_server_without_a_database_says_so(tmp_path: Path) -> None:
    with app_client(None, tmp_path) as http:
        reply = http.post("/v1/logs", json=[log(1)])
    assert reply.status_code == 503 and "no database" in reply.json()["error"]["message"]
