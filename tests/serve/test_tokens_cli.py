"""`honed tokens` and `honed serve --host 0.0.0.0` from the real console script, as a user runs them."""

from __future__ import annotations

import json
import subprocess
import time
from pathlib import Path

import httpx

from honed.store import Store
from tests.support.cli import HONED, assert_one_line_error, honed
from tests.support.stub_openai import free_port


def test_create_list_revoke_and_only_a_hash_is_stored(workspace: Path) -> None:
    created = honed(
        "tokens", "create", "chat-app", "--scope", "ingest", "--scope", "inference", cwd=workspace
    )
    assert created.returncode == 0, created.stderr
    secret = created.stdout.strip()
    assert secret.startswith("hnd_") and "\n" not in secret and "not shown again" in created.stderr

    listed = honed("tokens", "list", "--json", cwd=workspace)
    assert listed.returncode == 0, listed.stderr
    [token] = json.loads(listed.stdout)
    assert token["name"] == "chat-app" and token["scopes"] == ["ingest", "inference"] and token["active"]
    assert secret not in listed.stdout and token["id"] in secret
    db = (workspace / ".honed" / "honed.db").read_bytes()
    # hnd_<id>_<random part>: the random part may itself hold "_", so split twice from the left.
    assert secret.encode() not in db and secret.split("_", 2)[2].encode() not in db

    revoked = honed("tokens", "revoke", token["id"], "--json", cwd=workspace)
    assert revoked.returncode == 0 and json.loads(revoked.stdout)["revoked_at"] is not None
    with Store.open(f"sqlite:///{workspace / '.honed' / 'honed.db'}") as store:
        assert store.tokens.verify(secret) is None and store.tokens.active_count() == 0

    assert_one_line_error(
        honed("tokens", "create", "x", "--scope", "root", cwd=workspace), "unknown token scope"
    )


def test_serve_beyond_loopback_needs_a_token_then_checks_it(workspace: Path) -> None:
    port = str(free_port())
    refused = honed("serve", "--host", "0.0.0.0", "--port", port, "--endpoint", "scripted", cwd=workspace)
    assert_one_line_error(refused, "0.0.0.0", "honed tokens create")

    with Store.open(f"sqlite:///{workspace / '.honed' / 'honed.db'}") as store:
        _, secret = store.tokens.create("app", ["ingest"])
    proc = subprocess.Popen(
        [HONED, "serve", "--host", "0.0.0.0", "--port", port, "--endpoint", "scripted", "--no-warm"],
        cwd=workspace,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    base = f"http://127.0.0.1:{port}/v1"
    try:
        deadline = time.monotonic() + 60
        while True:
            assert proc.poll() is None, proc.stderr.read() if proc.stderr else ""
            try:
                reply = httpx.post(f"{base}/logs", json=[{"model": "m", "inputs": {}}], timeout=2)
                break
            except httpx.TransportError:
                assert time.monotonic() < deadline, "honed serve did not start within 60 s"
                time.sleep(0.2)
        assert reply.status_code == 401 and reply.json()["error"]["code"] == "invalid_api_key"
        auth = {"Authorization": f"Bearer {secret}"}
        ok = httpx.post(f"{base}/logs", json=[{"id": "x1", "model": "m", "inputs": {}}], headers=auth)
        assert ok.status_code == 200 and ok.json()["ids"] == ["x1"]
        assert httpx.get(f"{base}/models", headers=auth).status_code == 403  # an ingest-only token
    finally:
        proc.terminate()
        proc.wait(timeout=30)
        if proc.stderr:
            proc.stderr.close()
    with Store.open(f"sqlite:///{workspace / '.honed' / 'honed.db'}") as store:
        assert [r["id"] for r in store.logs.query()] == ["x1"]
