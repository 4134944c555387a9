"""The one secret masker, and the boundaries it guards: errors printed by the CLI, errors stored in results,
settings shown by `honed config show`. The endpoint is a stub OpenAI server on 127.0.0.1 that echoes the
key it was sent, as some servers (and OpenAI, partly) do."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pytest

from honed.errors import ProviderError
from honed.secrets import mask, register_env
from tests.support.cli import honed
from tests.support.stub_openai import Reply, stub_openai

KEY = "sk-proj-Zq8vX2mN4pL7rT1wY6uB3cD9"


@pytest.mark.parametrize(
    ("text", "secret"),
    [
        ("postgresql://honed:s3cr3t-pw@db.internal:5432/honed", "s3cr3t-pw"),
        ("postgresql://honed:p@ss@word!@db.internal/honed", "p@ss@word!"),  # an @ inside the password
        ("postgresql://db.internal/honed?user=honed&password=hunter2hunter2", "hunter2hunter2"),
        ("host=db user=honed password='two words here' dbname=x", "two words here"),
        ("Authorization: Bearer abcdefghijklmnop0123", "abcdefghijklmnop0123"),
        ("Authorization: Basic dXNlcjpwYXNzd29yZA==", "dXNlcjpwYXNzd29yZA=="),
        (f"Incorrect API key provided: {KEY}. You can find yours at ...", KEY),
        ("stripe key sk_live_4eC39HqLyjWDarjtT1zdp7dc", "sk_live_4eC39HqLyjWDarjtT1zdp7dc"),
        ("aws AKIAIOSFODNN7EXAMPLE", "AKIAIOSFODNN7EXAMPLE"),
    ],
)
def test_shapes_of_secrets_are_masked(text: str, secret: str) -> None:
    masked = mask(text)
    assert secret not in masked and "***" in masked


def test_values_of_secret_variables_are_masked_whatever_they_look_like(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("MY_LLM_CREDS", "plain-looking-value-42")
    assert "plain-looking-value-42" in mask("got plain-looking-value-42")  # not a secret's name
    register_env("MY_LLM_CREDS")  # an endpoint's api_key_env
    assert mask("got plain-looking-value-42") == "got ***"
    monkeypatch.setenv("VENDOR_TOKEN", "another-plain-value")  # named like a secret
    assert mask("x another-plain-value y") == "x *** y"
    err = ProviderError("the server said: another-plain-value is wrong", provider="p", hint=KEY)
    assert "another-plain-value" not in err.one_line() and KEY not in err.one_line()


def test_ordinary_text_is_left_alone() -> None:
    text = "The capital of France is Paris; see https://example.com/a?b=c and run 'honed kb search docs'."
    assert mask(text) == text


def _echoing_key_server_workspace(workspace: Path, base_url: str) -> None:
    (workspace / "honed.toml").write_text(
        f'[endpoints.stub]\nprovider = "openai"\nbase_url = "{base_url}"\napi_key_env = "STUB_LLM_KEY"\n'
        "[retry]\nmax_attempts = 1\n"
    )


def test_a_key_echoed_by_the_endpoint_is_neither_printed_nor_stored(workspace: Path) -> None:
    env = {"STUB_LLM_KEY": KEY}
    bad_key = Reply(status=401, body={"error": {"message": f"Incorrect API key provided: {KEY}."}})
    with stub_openai() as stub:
        _echoing_key_server_workspace(workspace, stub.base_url)
        stub.script = [bad_key]
        r = honed("models", "run", "stub/gpt-x", "hi", cwd=workspace, env=env)
        assert r.returncode != 0 and "rejected the API key" in r.stderr
        assert KEY not in r.stderr + r.stdout and "***" in r.stderr

        (workspace / "prompt.yaml").write_text(
            "name: p\nmodel: stub/gpt-x\nmessages:\n  - {role: user, content: '{{ q }}'}\n"
        )
        (workspace / "cases.jsonl").write_text('{"inputs": {"q": "a"}, "reference": "a"}\n')
        assert honed("datasets", "import", "d", "cases.jsonl", cwd=workspace).returncode == 0
        (workspace / "exp.yaml").write_text(
            "name: e\ndataset: d\nvariants: [{prompt: prompt.yaml}]\nevaluators: [{type: exact}]\n"
        )
        stub.script = [bad_key]
        r = honed("experiments", "run", "exp.yaml", "--json", cwd=workspace, env=env)
    assert r.returncode == 3, r.stderr
    assert KEY not in r.stdout + r.stderr
    with sqlite3.connect(workspace / ".honed" / "honed.db") as conn:
        stored = " ".join(str(row) for row in conn.execute("SELECT error FROM results"))
        logged = " ".join(str(row) for row in conn.execute("SELECT error FROM logs"))
    assert "rejected the API key" in stored and KEY not in stored
    assert "rejected the API key" in logged and KEY not in logged


def test_config_show_masks_database_passwords(workspace: Path) -> None:
    url = "postgresql+psycopg://honed:p@ss@word!@127.0.0.1:1/honed?sslpassword=topsecret99"
    for args in (("config", "show"), ("config", "show", "--json")):
        r = honed(*args, cwd=workspace, env={"HONED_DATABASE_URL": url})
        assert r.returncode == 0, r.stderr
        assert "p@ss@word!" not in r.stdout and "topsecret99" not in r.stdout and "***" in r.stdout
    shown = json.loads(r.stdout)
    assert shown["settings"]["database_url"].startswith("postgresql+psycopg://honed:***@127.0.0.1:1/honed")


def test_a_store_error_does_not_show_the_database_password(workspace: Path) -> None:
    url = "postgresql+psycopg://honed:p@ss@word!@127.0.0.1:1/honed?password=other-secret-1"
    r = honed("prompts", "list", cwd=workspace, env={"HONED_DATABASE_URL": url})
    assert r.returncode == 1 and "Traceback" not in r.stderr
    assert "p@ss@word!" not in r.stderr and "other-secret-1" not in r.stderr and "127.0.0.1" in r.stderr
