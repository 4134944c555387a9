"""The CLI as a user runs it: the real `honed` console script in a subprocess.

Every error a user can cause must end in one line on stderr, a non-zero exit, and no traceback.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.support.cli import assert_one_line_error, honed
from tests.support.stub_openai import free_port


def test_init_creates_a_migrated_workspace_found_from_subfolders(tmp_path: Path) -> None:
    r = honed("init", "proj", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    assert (tmp_path / "proj" / "honed.toml").is_file() and (
        tmp_path / "proj" / ".honed" / "honed.db"
    ).is_file()
    sub = tmp_path / "proj" / "deep" / "er"
    sub.mkdir(parents=True)
    status = honed("db", "status", "--json", cwd=sub)
    data = json.loads(status.stdout)
    assert data["up_to_date"] is True and str(tmp_path / "proj" / ".honed" / "honed.db") in data["database"]


def test_honed_home_points_anywhere(tmp_path: Path) -> None:
    honed("init", "ws", cwd=tmp_path)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    r = honed("config", "show", "--json", cwd=elsewhere, env={"HONED_HOME": str(tmp_path / "ws")})
    shown = json.loads(r.stdout)
    assert shown["settings"]["root"] == str(tmp_path / "ws")
    assert shown["sources"]["root"] == "environment HONED_HOME"


def test_config_precedence_and_sources_through_the_cli(workspace: Path) -> None:
    (workspace / "honed.toml").write_text('cache = true\ndefault_model = "scripted/file"\n')
    shown = json.loads(honed("config", "show", "--json", cwd=workspace).stdout)
    assert shown["settings"]["default_model"] == "scripted/file"
    assert shown["sources"]["default_model"] == "honed.toml:2"
    env = {"HONED_DEFAULT_MODEL": "scripted/env", "HONED_DATABASE_URL": "postgresql://u:hunter2@h/db"}
    shown = json.loads(honed("config", "show", "--json", cwd=workspace, env=env).stdout)
    assert shown["settings"]["default_model"] == "scripted/env"
    assert shown["sources"]["default_model"] == "environment HONED_DEFAULT_MODEL"
    assert "hunter2" not in shown["settings"]["database_url"]
    table = honed("config", "show", cwd=workspace, env=env).stdout
    rows = {line.split()[1]: line.split()[2:] for line in table.splitlines() if line.startswith("│")}
    assert rows["default_model"][-3:] == ["environment", "HONED_DEFAULT_MODEL", "│"]
    assert rows["cache"][-2:] == ["honed.toml:1", "│"] and rows["retry.max_attempts"][-2:] == ["default", "│"]
    assert "hunter2" not in table


def test_unknown_key_in_config_is_a_one_line_error(workspace: Path) -> None:
    (workspace / "honed.toml").write_text("cache = true\ncolour = 'blue'\n")
    assert_one_line_error(honed("models", "list", cwd=workspace), "colour", "honed.toml:2")


def test_models_run_one_prompt(workspace: Path) -> None:
    r = honed("models", "run", "scripted/echo", "say this back", cwd=workspace)
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == "say this back"
    assert "in /" in r.stderr and "out tokens" in r.stderr


def test_models_run_file_table_json_and_cache(workspace: Path) -> None:
    prompts = workspace / "p.jsonl"
    prompts.write_text('{"id": "a", "prompt": "first"}\n{"id": "b", "prompt": "second"}\n')
    table = honed("models", "run", "scripted/echo", "--file", str(prompts), cwd=workspace)
    assert table.returncode == 0, table.stderr
    assert "first" in table.stdout and "second" in table.stdout and "2 ok, 0 failed" in table.stdout
    rows = json.loads(
        honed("models", "run", "scripted/echo", "-f", str(prompts), "--json", cwd=workspace).stdout
    )
    assert [r["text"] for r in rows] == ["first", "second"] and all(r["cached"] for r in rows)
    fresh = json.loads(
        honed(
            "models", "run", "scripted/echo", "-f", str(prompts), "--json", "--no-cache", cwd=workspace
        ).stdout
    )
    assert not any(r["cached"] for r in fresh)


def test_models_run_samples(workspace: Path) -> None:
    r = honed("models", "run", "scripted/echo", "x", "-n", "3", "--json", cwd=workspace)
    rows = json.loads(r.stdout)
    assert [row["sample"] for row in rows] == [0, 1, 2]
    assert len({row["request_key"] for row in rows}) == 3


@pytest.mark.parametrize(
    ("args", "fragments"),
    [
        (["models", "run", "nowhere/model", "hi"], ["unknown endpoint 'nowhere'", "honed.toml"]),
        (
            ["models", "run", "openai/gpt-4o-mini", "hi"],
            ["OPENAI_API_KEY is not set", "export OPENAI_API_KEY"],
        ),
        (["models", "run", "badref", "hi"], ["ENDPOINT/MODEL"]),
        (["models", "run", "scripted/echo"], ["give a prompt or --file"]),
        (["models", "run", "scripted/echo", "--file", "missing.jsonl"], ["missing.jsonl: no such file"]),
        (["models", "run", "scripted/echo", "hi", "--temperature", "7"], ["temperature 7.0 is out of range"]),
        (["serve", "--host", "0.0.0.0"], ["refusing to listen on 0.0.0.0"]),
        # The user's word, not the store's kind (`ladder-ledger`).
        (["optimize", "show", "nope"], ["no ladder named 'nope'", "known ladders: none yet"]),
    ],
)
def test_user_errors_are_one_line(workspace: Path, args: list[str], fragments: list[str]) -> None:
    assert_one_line_error(honed(*args, cwd=workspace), *fragments)


def test_malformed_prompt_file_names_file_and_line(workspace: Path) -> None:
    bad = workspace / "bad.jsonl"
    bad.write_text('{"prompt": "ok"}\n{"prompt": "x", "temprature": 1}\n')
    assert_one_line_error(
        honed("models", "run", "scripted/echo", "-f", str(bad), cwd=workspace), "bad.jsonl:2", "temprature"
    )
    bad.write_text('{"prompt": "ok"}\nnot json\n')
    assert_one_line_error(
        honed("models", "run", "scripted/echo", "-f", str(bad), cwd=workspace),
        "bad.jsonl:2",
        "not valid JSON",
    )


def test_unreachable_endpoint_is_a_one_line_error(workspace: Path) -> None:
    (workspace / "honed.toml").write_text(
        f'[endpoints.vllm]\nprovider = "openai"\nbase_url = "http://127.0.0.1:{free_port()}/v1"\n'
    )
    assert_one_line_error(
        honed("models", "run", "vllm/llama", "hi", cwd=workspace), "cannot reach endpoint 'vllm'"
    )


def test_unreachable_database_is_a_one_line_error(workspace: Path) -> None:
    url = f"postgresql://me:secretpw@127.0.0.1:{free_port()}/honed"
    r = honed("db", "upgrade", cwd=workspace, env={"HONED_DATABASE_URL": url})
    assert_one_line_error(r, "127.0.0.1")
    assert "secretpw" not in r.stderr


def test_models_list(workspace: Path) -> None:
    rows = json.loads(honed("models", "list", "--endpoints", "--json", cwd=workspace).stdout)
    endpoints = {r["endpoint"]: r for r in rows}
    assert {"openai", "local", "scripted"} <= set(endpoints)
    assert endpoints["openai"]["api_key_env"] == "OPENAI_API_KEY"


def test_db_upgrade_is_idempotent(workspace: Path) -> None:
    first = json.loads(honed("db", "upgrade", "--json", cwd=workspace).stdout)
    second = json.loads(honed("db", "upgrade", "--json", cwd=workspace).stdout)
    assert first["to"] == second["to"] == second["from"]


def test_outside_a_workspace_store_commands_say_how_to_start(tmp_path: Path) -> None:
    assert_one_line_error(honed("db", "upgrade", cwd=tmp_path), "honed init")


@pytest.mark.postgres
def test_db_upgrade_on_postgresql(fresh_postgres_url: str, workspace: Path) -> None:
    env = {"HONED_DATABASE_URL": fresh_postgres_url}
    before = json.loads(honed("db", "status", "--json", cwd=workspace, env=env).stdout)
    assert before["revision"] is None and before["up_to_date"] is False
    up = json.loads(honed("db", "upgrade", "--json", cwd=workspace, env=env).stdout)
    assert up["from"] is None and up["to"] == before["head"]
    r = honed("models", "run", "scripted/echo", "stored in postgres", "--json", cwd=workspace, env=env)
    again = honed("models", "run", "scripted/echo", "stored in postgres", "--json", cwd=workspace, env=env)
    assert json.loads(r.stdout)[0]["cached"] is False and json.loads(again.stdout)[0]["cached"] is True


def test_a_file_run_with_failed_rows_exits_non_zero(workspace: Path) -> None:
    (workspace / "honed.toml").write_text(
        f'[endpoints.down]\nprovider = "openai"\nbase_url = "http://127.0.0.1:{free_port()}/v1"\n'
    )
    prompts = workspace / "p.jsonl"
    prompts.write_text('{"prompt": "a"}\n{"prompt": "b"}\n')
    r = honed("models", "run", "down/m", "--file", str(prompts), cwd=workspace)
    assert r.returncode == 1 and "0 ok, 2 failed" in r.stdout
