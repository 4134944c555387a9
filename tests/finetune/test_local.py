"""The local LoRA backend, for real: SmolLM2-135M-Instruct, peft, a few CPU steps, no mocks.

The worker's `run_job` runs in this process (the subprocess path is in test_resume/test_cli_finetune), so
pytest's warnings-as-errors covers the whole peft/transformers training path.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import openai
import pytest

import honed
from honed.api import Honed
from honed.finetune.backend import FinetuneSpec
from honed.finetune.jobs import create_job
from honed.finetune.worker import run_job
from honed.serve import create_app
from tests.finetune.lora_data import BASE, SYSTEM, TINY, examples
from tests.support.servers import running

pytestmark = pytest.mark.slow


@pytest.fixture
def h(workspace: Path) -> Iterator[Honed]:
    with honed.connect(workspace) as opened:
        yield opened


def spec(**hp: object) -> FinetuneSpec:
    return FinetuneSpec(backend="local", base_model=BASE, training="", hyperparameters={**TINY, **hp})


def test_a_job_trains_records_its_curve_and_its_model_answers(h: Honed, workspace: Path) -> None:
    job = create_job(h, spec(), examples(12), examples(4, start=50), start=False)
    assert run_job(job.id, h.settings) == 0
    job.refresh()
    assert job.status == "succeeded", job.error
    assert job.model == f"{BASE}+ft-{job.id}"
    assert job.result(timeout=0) == job.model

    metrics = [e["data"] for e in job.events(kind="metric")]
    train = [m for m in metrics if "loss" in m]
    assert [m["step"] for m in train] == [1, 2, 3, 4, 5, 6]
    assert all(m["tokens"] > 0 and m["lr"] > 0 for m in train)
    assert train[-1]["loss"] < train[0]["loss"] / 2  # it learned
    assert [m["step"] for m in metrics if "val_loss" in m] == [3, 6]  # once an epoch by default
    checkpoints = [e["data"]["step"] for e in job.events(kind="checkpoint")]
    assert checkpoints == [2, 4]
    assert sorted(p.name for p in (job.workdir / "checkpoints").iterdir()) == [
        "step-00000002",
        "step-00000004",
    ]
    summary = job.summary()
    assert summary["curve"]["steps"] == 6 and summary["metrics"]["tokens"] == sum(m["tokens"] for m in train)

    adapter = workspace / ".honed" / "adapters" / f"ft-{job.id}"
    assert (adapter / "adapter_config.json").is_file()
    messages = [
        {"role": "system", "content": SYSTEM},
        {"role": "user", "content": "What is the code of the item number 7?"},
    ]
    params = {"max_tokens": 12, "temperature": 0}
    tuned = h.complete(job.model, messages, params)
    base = h.complete(BASE, messages, params)
    assert tuned.model == job.model
    assert tuned.text != base.text
    assert '"code"' in tuned.text, tuned.text  # the trained format

    # The registered model is served to the official openai SDK like any other (`honed serve`'s app).
    app = create_app(h.client, served_endpoints=("local",), store=h.store)
    with running(app) as base_url:
        sdk = openai.OpenAI(base_url=base_url, api_key="unused-on-loopback", max_retries=0)
        assert f"smollm2-135m-instruct+ft-{job.id}" in {m.id for m in sdk.models.list().data}
        reply = sdk.chat.completions.create(
            model=f"smollm2-135m-instruct+ft-{job.id}", messages=messages, max_tokens=12, temperature=0
        )
    assert reply.choices[0].message.content == tuned.text


def test_early_stopping_keeps_the_best_adapter(h: Honed) -> None:
    # A learning rate this high makes the validation loss climb after the first steps.
    hp = {"learning_rate": 0.05, "eval_every": 1, "patience": 2, "epochs": 4}
    job = create_job(h, spec(**hp), examples(12), examples(4, start=50), start=False)
    assert run_job(job.id, h.settings) == 0
    job.refresh()
    assert job.status == "succeeded", job.error
    vals = [
        (e["data"]["step"], e["data"]["val_loss"])
        for e in job.events(kind="metric")
        if "val_loss" in e["data"]
    ]
    best_step = min(vals, key=lambda v: v[1])[0]
    m = job.metrics
    assert m["early_stopped"] is True and m["step"] < m["total_steps"] == 12
    assert m["best_step"] == best_step and m["step"] == best_step + 2  # two evaluations without improvement
    published = Path(h.settings.data_folder or "") / "adapters" / f"ft-{job.id}" / "adapter_model.safetensors"
    assert published.read_bytes() == (job.workdir / "best" / "adapter_model.safetensors").read_bytes()
