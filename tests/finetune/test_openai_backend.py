"""The openai training backend against tests/support/stub_finetune.py: a real HTTP server on 127.0.0.1
replaying OpenAI's fine-tuning API (a fake only because OpenAI's API cannot be reached from here).

The backend is driven through `run(ctx)` with a small JobContext of the test's own, as the worker would.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import openai
import pytest

from honed.config import Settings, load_settings
from honed.errors import (
    FinetuneCancelled,
    FinetuneError,
    InvalidInputError,
    MissingAPIKeyError,
    ProviderError,
)
from honed.finetune.backend import ChatExample, FinetuneSpec, TrainResult
from honed.finetune.openai import OpenAIBackend
from tests.support.stub_finetune import FinetuneStub, finetune_stub

KEY = "sk-test-0123456789abcdefghij-secret"
BASE = "openai/gpt-4o-mini-2024-07-18"


class Killed(BaseException):
    """Stands in for SIGKILL of the worker: nothing after it runs, nothing is cleaned up."""


@dataclass
class Ctx:
    job_id: str
    spec: FinetuneSpec
    workdir: Path
    settings: Settings
    training: list[ChatExample]
    validation: list[ChatExample] | None = None
    events: list[tuple[str, str, dict[str, Any] | None]] = field(default_factory=list)
    metrics: list[tuple[int, dict[str, float]]] = field(default_factory=list)
    cancel: bool = False
    kill_on: str | None = None  # raise Killed when an event whose message contains this is recorded
    cancel_on: str | None = None  # request cancel when such an event is recorded

    def training_examples(self) -> list[ChatExample]:
        return self.training

    def validation_examples(self) -> list[ChatExample] | None:
        return self.validation

    def event(self, message: str, *, kind: str = "message", data: dict[str, Any] | None = None) -> None:
        self.events.append((kind, message, data))
        if self.kill_on is not None and self.kill_on in message:
            raise Killed
        if self.cancel_on is not None and self.cancel_on in message:
            self.cancel = True

    def metric(self, step: int, **values: float) -> None:
        self.metrics.append((step, values))

    def cancel_requested(self) -> bool:
        return self.cancel


def examples(n: int = 12) -> list[ChatExample]:
    return [
        {
            "messages": [
                {"role": "user", "content": f"capital of country{i}?"},
                {"role": "assistant", "content": f"capital{i}"},
            ]
        }
        for i in range(n)
    ]


@pytest.fixture
def stub() -> Iterator[FinetuneStub]:
    with finetune_stub(api_key=KEY) as server:
        yield server


def make_ctx(
    tmp_path: Path, stub: FinetuneStub, monkeypatch: pytest.MonkeyPatch, *, key: str | None = KEY, **kw: Any
) -> Ctx:
    (tmp_path / "honed.toml").write_text(
        f'[endpoints.openai]\nprovider = "openai"\nbase_url = "{stub.base_url}"\n', encoding="utf-8"
    )
    if key is not None:
        monkeypatch.setenv("OPENAI_API_KEY", key)
    spec = FinetuneSpec(
        backend="openai",
        base_model=BASE,
        training="sha256:train",
        hyperparameters=kw.pop("hyperparameters", {"n_epochs": 3}),
        suffix=kw.pop("suffix", None),
    )
    return Ctx(
        job_id="job1",
        spec=spec,
        workdir=tmp_path / ".honed" / "finetune" / "job1",
        settings=load_settings(start=tmp_path),
        training=examples(),
        **kw,
    )


def backend() -> OpenAIBackend:
    return OpenAIBackend(poll_interval_s=0.01, max_retries=0)


def test_a_finished_remote_job_registers_its_model_with_events_and_metrics(
    tmp_path: Path, stub: FinetuneStub, monkeypatch: pytest.MonkeyPatch
) -> None:
    ctx = make_ctx(tmp_path, stub, monkeypatch, validation=examples(3))
    result = backend().run(ctx)

    assert result == TrainResult(
        model="openai/ft:gpt-4o-mini-2024-07-18:org::abc",
        metrics={
            "remote_job_id": "ftjob-000000000000000000000001",
            "trained_tokens": 12_345,
            "train_loss": 0.5,
            "result_files": ["file-result0000000000000000001"],
        },
    )
    # The data went up as JSONL, one example per line, for fine-tuning; the job names both files.
    [train_id, valid_id] = stub.uploads
    assert [json.loads(line) for line in stub.uploads[train_id].decode().splitlines()] == examples()
    assert stub.files[train_id]["purpose"] == "fine-tune"
    [create] = stub.creates
    assert create["training_file"] == train_id and create["validation_file"] == valid_id
    assert create["model"] == "gpt-4o-mini-2024-07-18"
    assert create["method"] == {"type": "supervised", "supervised": {"hyperparameters": {"n_epochs": 3}}}
    # Remote events are mirrored once each, oldest first; the loss curve comes from the metric events.
    remote = [
        m for kind, m, _ in ctx.events if kind == "remote" and not m.startswith(("uploaded", "created"))
    ]
    assert remote == [e["message"] for e in next(iter(stub.jobs.values())).events]
    assert [step for step, _ in ctx.metrics] == [1, 2, 3, 4]
    assert ctx.metrics[0][1]["loss"] == 2.0 and "train_mean_token_accuracy" in ctx.metrics[0][1]
    statuses = [m.split(": ")[-1] for kind, m, _ in ctx.events if kind == "status"]
    assert statuses == ["validating_files", "queued", "running", "succeeded"]


def test_events_are_read_across_pages(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    with finetune_stub(api_key=KEY, page_size=2) as stub:
        ctx = make_ctx(tmp_path, stub, monkeypatch)
        backend().run(ctx)
        remote = [m for kind, m, _ in ctx.events if kind == "remote" and "Step" in m]
        assert remote == [f"Step {i}/4: training loss={2.0 / i:.2f}" for i in range(1, 5)]


def test_a_killed_worker_reattaches_to_the_same_remote_job(
    tmp_path: Path, stub: FinetuneStub, monkeypatch: pytest.MonkeyPatch
) -> None:
    ctx = make_ctx(tmp_path, stub, monkeypatch, kill_on=": running")
    with pytest.raises(Killed):
        backend().run(ctx)
    assert json.loads((ctx.workdir / "state.json").read_text())["job_id"] == "ftjob-000000000000000000000001"

    again = make_ctx(tmp_path, stub, monkeypatch)
    result = backend().run(again)

    assert result.model == "openai/ft:gpt-4o-mini-2024-07-18:org::abc"
    assert len(stub.creates) == 1 and stub.count("POST", "/v1/files") == 1  # one paid job, one upload
    assert again.events[0][1] == "re-attached to OpenAI fine-tuning job ftjob-000000000000000000000001"
    # The resumed worker mirrors only the events the first one had not recorded.
    seen = [m for _, m, _ in ctx.events + again.events if m.startswith("Step")]
    assert seen == [f"Step {i}/4: training loss={2.0 / i:.2f}" for i in range(1, 5)]


def test_a_kill_during_create_finds_the_job_by_its_metadata(
    tmp_path: Path, stub: FinetuneStub, monkeypatch: pytest.MonkeyPatch
) -> None:
    ctx = make_ctx(tmp_path, stub, monkeypatch, kill_on="created OpenAI fine-tuning job")
    with pytest.raises(Killed):
        backend().run(ctx)
    # Simulate dying after the create call but before its id was saved.
    state = json.loads((ctx.workdir / "state.json").read_text())
    state.pop("job_id")
    state["creating"] = True
    (ctx.workdir / "state.json").write_text(json.dumps(state))

    again = make_ctx(tmp_path, stub, monkeypatch)
    assert backend().run(again).model.startswith("openai/ft:")
    assert len(stub.creates) == 1
    assert any(m.startswith("re-attached") for _, m, _ in again.events)


def test_cancel_while_running_cancels_the_remote_job(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    with finetune_stub(api_key=KEY, outcome="running") as stub:
        ctx = make_ctx(tmp_path, stub, monkeypatch, cancel_on="Fine-tuning job started")
        with pytest.raises(FinetuneCancelled, match="was cancelled"):
            backend().run(ctx)
        [job] = stub.jobs.values()
        assert job.body["status"] == "cancelled"
        assert stub.count("POST", f"/v1/fine_tuning/jobs/{job.body['id']}/cancel") == 1


def test_cancel_from_another_process_reaches_the_remote_job(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with finetune_stub(api_key=KEY, outcome="running") as stub:
        ctx = make_ctx(tmp_path, stub, monkeypatch, kill_on="Step 1/")
        with pytest.raises(Killed):
            backend().run(ctx)
        backend().cancel(make_ctx(tmp_path, stub, monkeypatch))
        [job] = stub.jobs.values()
        assert job.body["status"] == "cancelled"
        # A worker that resumes now finds the job cancelled and says so.
        with pytest.raises(FinetuneCancelled):
            backend().run(make_ctx(tmp_path, stub, monkeypatch))


def test_a_failed_remote_job_raises_openais_message(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    with finetune_stub(api_key=KEY, outcome="failed") as stub:
        ctx = make_ctx(tmp_path, stub, monkeypatch)
        with pytest.raises(FinetuneError) as info:
            backend().run(ctx)
    message = info.value.one_line()
    assert "failed (invalid_training_file)" in message
    assert "Unrecognized key(s) in object: 'contnet'" in message
    assert "\n" not in message


def test_a_missing_key_fails_before_any_request(
    tmp_path: Path, stub: FinetuneStub, monkeypatch: pytest.MonkeyPatch
) -> None:
    ctx = make_ctx(tmp_path, stub, monkeypatch, key=None)
    with pytest.raises(MissingAPIKeyError, match="OPENAI_API_KEY is not set"):
        backend().run(ctx)
    assert stub.requests == []
    assert not (ctx.workdir / "state.json").exists()


@pytest.mark.parametrize("echo", [False, True], ids=["masked-as-openai", "echoed-whole"])
def test_a_rejected_key_is_one_line_without_the_key(
    tmp_path: Path, stub: FinetuneStub, monkeypatch: pytest.MonkeyPatch, echo: bool
) -> None:
    stub.echo_key = echo
    wrong = "sk-wrong-key-9876543210-zyxwvu"
    ctx = make_ctx(tmp_path, stub, monkeypatch, key=wrong)
    with pytest.raises(ProviderError) as info:
        backend().run(ctx)
    error = info.value
    assert error.status == 401
    line = error.one_line()
    assert line.startswith("endpoint 'openai' rejected the API key (HTTP 401): Incorrect API key provided")
    assert "check the key in OPENAI_API_KEY" in line
    assert wrong not in line and wrong not in repr(error.args) and "\n" not in line
    assert stub.creates == []


def test_check_refuses_what_openai_would_refuse(tmp_path: Path, stub: FinetuneStub) -> None:
    spec = FinetuneSpec(backend="openai", base_model=BASE, training="sha256:t")
    b = backend()
    b.check(spec, examples(), examples(2))
    with pytest.raises(InvalidInputError, match=r"3 example\(s\); OpenAI needs at least 10"):
        b.check(spec, examples(3), None)
    no_target = [{"messages": [{"role": "user", "content": "hi"}]}] * 10
    with pytest.raises(InvalidInputError, match="line 1: "):
        b.check(spec, no_target, None)
    bad_role = [{"messages": [{"role": "bot", "content": "hi"}]}]
    with pytest.raises(InvalidInputError, match=r"^validation data: .*line 1: .*bot"):
        b.check(spec, examples(), bad_role)
    with pytest.raises(InvalidInputError, match="does not take hyperparameter"):
        b.check(
            FinetuneSpec(backend="openai", base_model=BASE, training="t", hyperparameters={"epochs": 3}),
            examples(),
            None,
        )
    with pytest.raises(InvalidInputError, match="ENDPOINT/MODEL"):
        b.check(FinetuneSpec(backend="openai", base_model="gpt-4o-mini", training="t"), examples(), None)


def test_sdk_errors_keep_their_status(
    tmp_path: Path, stub: FinetuneStub, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A state file naming a job the server does not know: OpenAI answers 404 with its error object.
    ctx = make_ctx(tmp_path, stub, monkeypatch)
    ctx.workdir.mkdir(parents=True)
    (ctx.workdir / "state.json").write_text(json.dumps({"job_id": "ftjob-gone"}))
    with pytest.raises(ProviderError) as info:
        backend().run(ctx)
    assert info.value.status == 404 and "Unknown request URL" in info.value.one_line()
    assert not isinstance(info.value.__cause__, openai.AuthenticationError)
