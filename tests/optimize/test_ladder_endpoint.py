"""The same ladder on another OpenAI-compatible endpoint by one setting (HONED_DEFAULT_MODEL).

`honed serve` on 127.0.0.1, a real HTTP server, in front of a scripted model stands in for vLLM or any app
server: the ladder runs in a `honed` subprocess, which can reach the scripted model only over HTTP. Such a
server has no fine-tuning API, so the plan's fine-tuning step is refused before the first call is made,
and `--until` climbs the steps before it.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from honed.api import Honed
from honed.config import load_settings
from honed.models.types import ChatRequest
from honed.serve import create_app
from tests.optimize.catalogue import setup_catalogue
from tests.optimize.test_diagnose import recording
from tests.support.cli import assert_one_line_error, honed
from tests.support.servers import running

pytestmark = pytest.mark.slow  # the knowledge base embeds with the real local embedder

TAIL = """\
diagnose: {kb: shop, few_shot: {split: train, k: 2}}
steps:
  - {id: instructions, prompt: prompts/qa.yaml}
  - {id: few-shot, few_shot: {split: train, k: 2}}
  - {id: rag, retrieve: {kb: shop, k: 2, into: facts}}
  - {id: fine-tuned, few_shot: none, finetune: {split: train}}
"""


def test_the_ladder_moves_to_another_endpoint_by_one_setting(workspace: Path) -> None:
    from honed.testing import scripted

    setup_catalogue(workspace, TAIL)
    seen: list[ChatRequest] = []
    with scripted("app", recording(seen)):
        server = Honed(load_settings(start=workspace))
        try:
            with running(create_app(server.client, served_endpoints=("scripted",))) as base_url:
                with (workspace / "honed.toml").open("a", encoding="utf-8") as f:
                    f.write(f'\n[endpoints.srv]\nprovider = "openai"\nbase_url = "{base_url}"\n')
                env = {"HONED_DEFAULT_MODEL": "srv/scripted/app"}

                refused = honed("optimize", "run", "ladder.yaml", cwd=workspace, env=env, timeout=300)
                assert_one_line_error(
                    refused,
                    "step fine-tuned cannot fine-tune srv/scripted/app",
                    f"endpoint 'srv' ({base_url}) has no fine-tuning API",
                    "HTTP 404",
                    "honed optimize run ladder.yaml --until rag",
                )
                assert seen == []  # refused before the diagnosis made its first call
                assert honed("optimize", "show", "shop-ladder", cwd=workspace).returncode != 0

                done = honed(
                    "optimize", "run", "ladder.yaml", "--until", "rag", "--json", cwd=workspace, env=env,
                    timeout=300,
                )  # fmt: skip
        finally:
            server.close()
    assert done.returncode == 0, done.stderr
    ledger = json.loads(done.stdout)
    steps = {s["id"]: s for s in ledger["steps"]}
    assert list(steps) == ["instructions", "few-shot", "rag"]
    assert {s["model"] for s in steps.values()} == {"srv/scripted/app"}
    # Every call went over HTTP to the server (the subprocess has no scripted model of its own), and the
    # ladder measured there what it measures on the scripted endpoint itself (test_ladder_steps).
    # Four diagnosis ablations of 16 test cases each, then only the rag step's 16: the instructions and
    # few-shot steps send exactly the as-is and few-shot ablations' requests, answered from the cache.
    # Then each step's latency, from a warm-up call and five timed ones made one at a time: uncached
    # here, though the server may answer some of them from its own cache.
    assert 4 * 16 + 16 <= len(seen) <= 4 * 16 + 16 + 3 * 6
    assert all(s["latency_mode"] == "one at a time" and s["latency_calls"] == 5 for s in steps.values())
    q = {sid: s["quality"] for sid, s in steps.items()}
    assert q["instructions"]["format"]["mean"] == 0 and q["few-shot"]["format"]["mean"] == 1
    assert q["rag"]["strict"]["mean"] == pytest.approx(0.5)
    assert ledger["diagnosis"]["axis"] == "both"

    bad = honed("optimize", "run", "ladder.yaml", "--until", "nope", cwd=workspace, env=env)
    assert_one_line_error(bad, "no step 'nope' to stop at", "one of instructions, few-shot, rag, fine-tuned")
