"""A ladder on the real local model: instructions -> retrieval -> a LoRA fine-tune trained by the ladder
itself (two steps: the behaviour is not the point here, the path is), then the same plan again, which
reuses the finished job and is served from the response cache."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from honed.api import Honed
from honed.config import load_settings
from honed.finetune import list_jobs
from honed.optimize import load_plan, run_ladder
from tests.optimize.catalogue import PRODUCTS, TRAIN, setup_catalogue

pytestmark = pytest.mark.slow

TAIL = """\
steps:
  - {id: instructions, prompt: prompts/qa.yaml}
  - {id: rag, retrieve: {kb: shop, k: 1, into: facts}}
  - id: fine-tuned
    finetune: {split: train, hyperparameters: {max_steps: 2, batch_size: 4, checkpoint_every: 1}}
"""


def test_the_ladder_trains_its_fine_tuned_step_once(workspace: Path) -> None:
    plan = load_plan(setup_catalogue(workspace, TAIL))
    messages: list[str] = []
    h = Honed(load_settings(start=workspace))
    try:
        ledger = run_ladder(h, plan, n_boot=500, notify=messages.append)
        [job] = list_jobs(h)
        assert job.status == "succeeded" and job.model is not None
        tuned = ledger.step("fine-tuned")
        assert tuned.model == job.model and tuned.model.startswith("local/smollm2-135m-instruct+ft-")
        assert tuned.finetune is not None and tuned.finetune["reused"] is False
        assert (
            tuned.finetune["train_examples"] == 16 and tuned.finetune["base_model"] == ledger.steps[0].model
        )
        assert tuned.prompt == ledger.step("rag").prompt  # the same prompt, another model
        assert tuned.calls == 16 and tuned.errors == 0

        # The job trained on the step's prompt as rendered for train cases, facts included, with the
        # plan's target as the reply; no evaluated (test) product is in it.
        data = h.store.objects.get(job.spec.training)["examples"]
        assert len(data) == 16
        train_values = {v for slug in TRAIN for v in PRODUCTS[slug][1:]}
        replies = [json.loads(m["messages"][-1]["content"])["answer"] for m in data]
        assert sorted(replies) == sorted(train_values)
        assert all(m["messages"][-2]["content"].startswith("Facts:\n[1] (") for m in data)
        assert any("fine-tuning" in m for m in messages)

        assert any(f"job {job.id} step " in m for m in messages)  # its training metrics, as they came
        messages.clear()
        again = run_ladder(h, plan, n_boot=500, notify=messages.append)
        assert [j.id for j in list_jobs(h)] == [job.id]  # reused, not trained again
        assert again.step("fine-tuned").finetune == {**tuned.finetune, "reused": True}
        assert all(s.cached == s.calls for s in again.steps)
        assert any(f"reusing fine-tuning job {job.id}" in m and ", loss " in m for m in messages)
        assert not any(f"job {job.id} step " in m for m in messages), messages  # no replayed history
    finally:
        h.close()
