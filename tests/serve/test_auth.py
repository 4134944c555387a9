"""API tokens: stored as hashes, checked on every request when required, scoped, revocable.

The repository runs on real SQLite and PostgreSQL; the app's checks run through FastAPI's TestClient; the
`openai` SDK talks to a real uvicorn server on 127.0.0.1 with a token as its API key.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import openai
import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import select

import honed
from honed.config import load_settings
from honed.errors import ConfigError, InvalidInputError, NotFoundError
from honed.models.client import ModelClient
from honed.serve import create_app
from honed.serve.auth import TokenGate, check_can_listen, scope_for
from honed.store import Store
from honed.store.schema import api_tokens
from honed.testing import scripted
from tests.support.servers import running

# A loopback server answers only to loopback Host names (TestClient's default is "testserver").
LOCAL = "http://127.0.0.1"


@pytest.fixture
def store(database_url: str) -> Iterator[Store]:
    with Store.open(database_url) as opened:
        yield opened


def test_tokens_are_kept_as_hashes_and_verified(store: Store) -> None:
    token, secret = store.tokens.create("chat-app", ["inference", "ingest", "inference"])
    assert token.scopes == ("ingest", "inference") and token.active
    assert secret.startswith(f"hnd_{token.id}_") and len(secret) > 50
    with store.read() as conn:
        row = conn.execute(select(api_tokens)).mappings().one()
    # The random part may itself contain "_" (base64url): take everything after the id, not the last piece.
    assert secret not in str(dict(row)) and secret.removeprefix(f"hnd_{token.id}_") not in str(dict(row))
    assert str(row["hash"]).startswith("sha256:")

    assert store.tokens.verify(secret) == token
    assert store.tokens.verify(secret[:-1] + ("A" if secret[-1] != "A" else "B")) is None
    assert store.tokens.verify("hnd_nonsense") is None and store.tokens.verify("") is None
    other, other_secret = store.tokens.create("other", ["ingest"])
    assert store.tokens.active_count() == 2

    revoked = store.tokens.revoke(token.id)
    assert revoked.revoked_at is not None and not revoked.active
    assert store.tokens.verify(secret) is None and store.tokens.verify(other_secret) == other
    assert store.tokens.revoke(token.id).revoked_at == revoked.revoked_at  # idempotent
    assert [t.id for t in store.tokens.list(include_revoked=False)] == [other.id]
    assert len(store.tokens.list()) == 2 and store.tokens.active_count() == 1


def test_bad_token_requests_are_refused(store: Store) -> None:
    with pytest.raises(InvalidInputError, match="unknown token scope 'root'"):
        store.tokens.create("x", ["ingest", "root"])
    with pytest.raises(InvalidInputError, match="at least one scope"):
        store.tokens.create("x", [])
    with pytest.raises(NotFoundError, match="no API token"):
        store.tokens.revoke("0123456789abcdef")
    assert store.tokens.list() == []


def test_last_used_is_written_at_most_once_a_minute(store: Store) -> None:
    token, secret = store.tokens.create("app", ["ingest"])
    gate = TokenGate(store)
    gate.check(f"Bearer {secret}", "ingest")
    first = store.tokens.get(token.id).last_used_at
    assert first is not None
    gate.check(f"Bearer {secret}", "ingest")
    assert store.tokens.get(token.id).last_used_at == first
    eager = TokenGate(store, touch_every_s=0)
    eager.check(f"Bearer {secret}", "ingest")
    time.sleep(0.01)
    eager.check(f"Bearer {secret}", "ingest")
    later = store.tokens.get(token.id).last_used_at
    assert later is not None and later > first


def test_listening_beyond_loopback_needs_a_token(store: Store) -> None:
    assert check_can_listen("127.0.0.1", store, require_token=False) is False
    assert check_can_listen("::1", None, require_token=False) is False
    with pytest.raises(ConfigError, match="honed tokens create"):
        check_can_listen("0.0.0.0", store, require_token=False)
    with pytest.raises(ConfigError, match="--require-token without an API token"):
        check_can_listen("localhost", store, require_token=True)
    with pytest.raises(ConfigError, match="honed init"):
        check_can_listen("10.1.2.3", None, require_token=False)
    first, _ = store.tokens.create("app", ["ingest"])
    store.tokens.revoke(first.id)
    with pytest.raises(ConfigError):
        check_can_listen("0.0.0.0", store, require_token=False)  # a revoked token does not count
    store.tokens.create("app2", ["inference"])
    assert check_can_listen("0.0.0.0", store, require_token=False) is True


def test_scope_of_each_path() -> None:
    assert scope_for("/v1/chat/completions") == scope_for("/v1/models") == "inference"
    assert scope_for("/v1/logs") == scope_for("/v1/logs/abc") == scope_for("/v1/feedback") == "ingest"
    assert scope_for("/v1/logsx") is None and scope_for("/") is None


def guarded_app(store: Store, tmp_path: Path) -> FastAPI:
    client = ModelClient(load_settings(start=tmp_path), use_cache=False)
    return create_app(client, served_endpoints=("scripted",), store=store, gate=TokenGate(store))


def test_missing_wrong_or_revoked_tokens_get_401_and_write_nothing(store: Store, tmp_path: Path) -> None:
    ingest, ingest_secret = store.tokens.create("ingester", ["ingest"])
    _, infer_secret = store.tokens.create("chat", ["inference"])
    batch = [{"id": "l1", "model": "m", "inputs": {"q": 1}, "output": "a"}]
    chat = {"model": "scripted/echo", "messages": [{"role": "user", "content": "hi"}]}
    with TestClient(guarded_app(store, tmp_path), base_url=LOCAL) as http:
        for headers in ({}, {"Authorization": "Bearer hnd_x"}, {"Authorization": ingest_secret}):
            reply = http.post("/v1/logs", json=batch, headers=headers)
            assert reply.status_code == 401, reply.text
            assert reply.json()["error"]["code"] == "invalid_api_key"
            assert reply.headers["www-authenticate"] == "Bearer"
        assert http.get("/nothing-here").status_code == 401  # no path probing without a token
        # The wrong scope: 403, in OpenAI's shape, naming the scope.
        reply = http.post("/v1/logs", json=batch, headers={"Authorization": f"Bearer {infer_secret}"})
        assert reply.status_code == 403 and "'ingest' scope" in reply.json()["error"]["message"]
        reply = http.post(
            "/v1/chat/completions", json=chat, headers={"Authorization": f"Bearer {ingest_secret}"}
        )
        assert reply.status_code == 403 and reply.json()["error"]["type"] == "permission_error"
        assert store.logs.count() == 0

        auth = {"Authorization": f"Bearer {ingest_secret}"}
        assert http.post("/v1/logs", json=batch, headers=auth).json() == {"accepted": 1, "ids": ["l1"]}
        assert http.get("/v1/logs/l1", headers=auth).json()["log"]["output"] == "a"
        assert http.get("/v1/models", headers={"Authorization": f"Bearer {infer_secret}"}).status_code == 200
        store.tokens.revoke(ingest.id)
        batch2 = [{"id": "l2", "model": "m", "inputs": {"q": 2}}]
        assert http.post("/v1/logs", json=batch2, headers=auth).status_code == 401
    assert [r["id"] for r in store.logs.query()] == ["l1"]


def test_the_openai_sdk_chats_with_a_token_and_gets_the_log_id(workspace: Path) -> None:
    h = honed.connect(workspace)
    try:
        _, secret = h.store.tokens.create("sdk", ["inference"])
        app = create_app(h.client, served_endpoints=("scripted",), store=h.store, gate=TokenGate(h.store))
        with scripted("helper", ["Paris is the capital."]) as model, running(app) as base:
            sdk = openai.OpenAI(base_url=base, api_key=secret, max_retries=0)
            raw = sdk.chat.completions.with_raw_response.create(
                model=model,
                messages=[{"role": "user", "content": "Capital of France?"}],
                extra_headers={"X-Honed-Session-Id": "sess-7", "X-Honed-Trace-Id": "trace-9"},
            )
            reply = raw.parse()
            assert reply.choices[0].message.content == "Paris is the capital."
            assert reply.id.startswith("chatcmpl-")
            log_id = raw.headers["x-honed-log-id"]
            with pytest.raises(openai.AuthenticationError):
                openai.OpenAI(base_url=base, api_key="sk-wrong", max_retries=0).models.list()
        h.flush_logs()
        entry = h.store.logs.get(log_id)
        assert entry.log["source"] == "serve" and entry.log["model"] == model
        assert entry.log["session_id"] == "sess-7" and entry.log["trace_id"] == "trace-9"
        assert entry.log["output"] == "Paris is the capital."
        assert secret not in str(entry.log)
    finally:
        h.close()
