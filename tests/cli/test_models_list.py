"""`honed models list` as a user runs it: the models they can call, not the endpoints.

A workspace with a fine-tuned LoRA adapter registered by a finished job (the adapter folder with its
config, as a local job publishes it; its weights are never loaded for a listing), an OpenAI-compatible
endpoint (the stub server, which reports `stub-model` at /v1/models) on which a job also made a model,
one that does not answer and one whose key is not set.
"""

from __future__ import annotations

import json
from pathlib import Path

import honed
from tests.support.cli import honed as run_honed
from tests.support.stub_openai import free_port, stub_openai

BASE = "local/smollm2-135m-instruct"


def register_jobs(workspace: Path) -> None:
    adapter = workspace / ".honed" / "adapters" / "ft-job1"
    adapter.mkdir(parents=True)
    (adapter / "adapter_config.json").write_text("{}", encoding="utf-8")
    (workspace / ".honed" / "adapters" / "hand-made").mkdir()
    (workspace / ".honed" / "adapters" / "hand-made" / "adapter_config.json").write_text("{}")
    with honed.connect(workspace) as h:
        jobs = h.store.jobs
        jobs.create("job1", "local", {"base_model": BASE, "training": "sha256:x"}, status="succeeded")
        jobs.update("job1", model=f"{BASE}+ft-job1")
        jobs.create("job2", "openai", {"base_model": "stub/stub-model", "training": "sha256:y"})
        jobs.update("job2", status="succeeded", model="stub/ft:stub-model:acme::abc")
        jobs.create("job3", "local", {"base_model": BASE, "training": "sha256:z"}, status="failed")


def test_models_list_shows_the_models_you_can_call(workspace: Path) -> None:
    register_jobs(workspace)
    with stub_openai() as stub:
        with (workspace / "honed.toml").open("a", encoding="utf-8") as toml:
            toml.write(
                f'\n[endpoints.stub]\nprovider = "openai"\nbase_url = "{stub.base_url}"\n'
                f'\n[endpoints.down]\nprovider = "openai"\nbase_url = "http://127.0.0.1:{free_port()}/v1"\n'
                f'\n[endpoints.keyed]\nprovider = "openai"\nbase_url = "{stub.base_url}"\n'
                'api_key_env = "HONED_TEST_UNSET_KEY"\n'
            )
        listed = run_honed("models", "list", "--json", cwd=workspace)
        table = run_honed("models", "list", cwd=workspace)
        only_stub = run_honed("models", "list", "--endpoint", "stub", "--json", cwd=workspace)

    assert listed.returncode == 0, listed.stderr
    rows = json.loads(listed.stdout)
    by_model = {r["model"]: r for r in rows}
    assert rows[0]["model"] == BASE and rows[0]["default"] is True and rows[0]["kind"] == "local"

    adapter = by_model[f"{BASE}+ft-job1"]
    assert (adapter["kind"], adapter["job"], adapter["base"], adapter["status"]) == (
        "adapter",
        "job1",
        BASE,
        "ready",
    )
    hand_made = by_model[f"{BASE}+hand-made"]  # an adapter no job made: listed, without a job
    assert (hand_made["kind"], hand_made["job"], hand_made["base"]) == ("adapter", None, BASE)

    assert (by_model["stub/stub-model"]["kind"], by_model["stub/stub-model"]["status"]) == ("served", "ready")
    # A job's model that its endpoint does not report is still shown, with its job and base.
    tuned = by_model["stub/ft:stub-model:acme::abc"]
    assert (tuned["kind"], tuned["job"], tuned["base"], tuned["status"]) == (
        "fine-tuned",
        "job2",
        "stub/stub-model",
        "missing",
    )
    assert by_model["down/*"]["status"] == "unreachable"
    assert (
        by_model["keyed/*"]["status"] == "no key" and "HONED_TEST_UNSET_KEY" in by_model["keyed/*"]["detail"]
    )
    assert "scripted/echo" in by_model
    assert not any(r["job"] == "job3" for r in rows)  # a failed job made nothing to call

    assert table.returncode == 0, table.stderr
    assert f"{BASE} (default)" in table.stdout and "+ft-job1" in table.stdout and "job1" in table.stdout
    assert "unreachable" in table.stdout and "no key: set HONED_TEST_UNSET_KEY" in table.stdout

    assert only_stub.returncode == 0, only_stub.stderr
    assert {r["endpoint"] for r in json.loads(only_stub.stdout)} == {"stub"}


def test_models_list_endpoints_keeps_the_endpoint_view(workspace: Path) -> None:
    listed = run_honed("models", "list", "--endpoints", "--json", cwd=workspace)
    assert listed.returncode == 0, listed.stderr
    assert [r["endpoint"] for r in json.loads(listed.stdout)] == ["local", "openai", "scripted"]
    unknown = run_honed("models", "list", "--endpoint", "nope", cwd=workspace)
    assert unknown.returncode == 1 and "unknown endpoint 'nope'" in unknown.stderr
