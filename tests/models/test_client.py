"""The call layer: cache, sample independence, retries, concurrency limits, cost, structured output.

The scripted provider (a fake shipped in the package) stands in for a model here; the store is the real
SQLite one. HTTP-level behaviour is tested against a real server in test_openai_provider.py.
"""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import pytest

from honed.config import load_settings
from honed.errors import OutputParseError, ProviderError, RateLimitError, UnknownModelError
from honed.models.client import ModelClient, backoff_delay
from honed.models.types import ChatRequest, Params
from honed.store import Store
from honed.testing import scripted


def make_client(workspace: Path, *, use_cache: bool | None = None, toml: str = "") -> ModelClient:
    if toml:
        (workspace / "honed.toml").write_text(toml)
    settings = load_settings(start=workspace, env={})
    store = Store.open(settings.resolved_database_url())
    return ModelClient(settings, store=store, use_cache=use_cache)


FAST_RETRY = "[retry]\nbase_delay_s = 0.01\nmax_delay_s = 0.05\nmax_attempts = 4\n"


def test_cache_serves_identical_requests_and_survives_a_new_client(workspace: Path) -> None:
    calls: list[str] = []

    def reply(req: ChatRequest) -> str:
        calls.append(req.messages[-1]["content"])
        return f"answer {len(calls)}"

    with scripted("counter", reply) as model:
        client = make_client(workspace)
        first = client.run([ChatRequest.of(model, "q")])[0]
        second = client.run([ChatRequest.of(model, "q")])[0]
        assert not isinstance(first, Exception) and not isinstance(second, Exception)
        assert first.text == second.text == "answer 1"
        assert (first.cached, second.cached) == (False, True)
        # a new process (new client, same store) still hits the cache
        third = make_client(workspace).run([ChatRequest.of(model, "q")])[0]
        assert not isinstance(third, Exception) and third.cached and third.text == "answer 1"
        assert calls == ["q"]


def test_repeated_samples_are_independent_calls(workspace: Path) -> None:
    n = 0

    def reply(req: ChatRequest) -> str:
        nonlocal n
        n += 1
        return f"sample {n}"

    with scripted("sampler", reply) as model:
        client = make_client(workspace)
        reqs = [ChatRequest.of(model, "q", {"temperature": 1.0}, sample_index=i) for i in range(5)]
        out = client.run(reqs)
        texts = {c.text for c in out if not isinstance(c, Exception)}
        assert len(texts) == 5 and n == 5
        # run again: each sample comes back from the cache as itself, none is called twice
        again = client.run(reqs)
        assert [c.text for c in again if not isinstance(c, Exception)] == [
            c.text for c in out if not isinstance(c, Exception)
        ]
        assert n == 5


def test_no_cache_neither_reads_nor_writes(workspace: Path) -> None:
    n = 0

    def reply(req: ChatRequest) -> str:
        nonlocal n
        n += 1
        return "x"

    with scripted("nocache", reply) as model:
        client = make_client(workspace, use_cache=False)
        client.run([ChatRequest.of(model, "q")])
        client.run([ChatRequest.of(model, "q")])
        assert n == 2
        assert client.store is not None and client.store.cache.count() == 0


def test_different_params_or_messages_are_different_cache_entries(workspace: Path) -> None:
    a = ChatRequest.of("scripted/x", "q", {"temperature": 0})
    assert a.key() != ChatRequest.of("scripted/x", "q", {"temperature": 0.5}).key()
    assert a.key() != ChatRequest.of("scripted/x", "q2", {"temperature": 0}).key()
    assert a.key() != ChatRequest.of("scripted/y", "q", {"temperature": 0}).key()
    assert (
        a.key()
        == ChatRequest.of("scripted/x", [{"role": "user", "content": "q"}], Params(temperature=0)).key()
    )


def test_retries_429_honouring_retry_after_then_succeeds(workspace: Path) -> None:
    script = [
        RateLimitError("slow down", provider="s", status=429, retry_after=0.2, retryable=True),
        ProviderError("boom", provider="s", status=503, retryable=True),
        "finally",
    ]
    with scripted("flaky", script) as model:
        client = make_client(workspace, toml=FAST_RETRY)
        t0 = time.monotonic()
        out = client.run([ChatRequest.of(model, "q")])[0]
        elapsed = time.monotonic() - t0
    assert not isinstance(out, Exception) and out.text == "finally"
    assert elapsed >= 0.2  # waited as Retry-After said


def test_gives_up_after_max_attempts_and_says_so(workspace: Path) -> None:
    err = ProviderError("server error", provider="s", status=500, retryable=True)
    with scripted("down", [err]) as model:
        client = make_client(workspace, toml=FAST_RETRY)
        out = client.run([ChatRequest.of(model, "q")])[0]
    assert isinstance(out, ProviderError) and "gave up after 4 attempts" in str(out)


def test_non_retryable_errors_are_not_retried(workspace: Path) -> None:
    calls = 0

    def reply(req: ChatRequest) -> str | BaseException:
        nonlocal calls
        calls += 1
        return ProviderError("bad request", provider="s", status=400)

    with scripted("bad", reply) as model:
        out = make_client(workspace, toml=FAST_RETRY).run([ChatRequest.of(model, "q")])[0]
    assert isinstance(out, ProviderError) and calls == 1


def test_total_retry_time_is_bounded(workspace: Path) -> None:
    err = RateLimitError("wait", provider="s", status=429, retry_after=5.0, retryable=True)
    toml = "[retry]\nmax_attempts = 10\nmax_total_s = 1\n"
    with scripted("slow", [err]) as model:
        t0 = time.monotonic()
        out = make_client(workspace, toml=toml).run([ChatRequest.of(model, "q")])[0]
    assert isinstance(out, RateLimitError) and "retry budget spent" in str(out)
    assert time.monotonic() - t0 < 1.0


def test_backoff_is_exponential_with_full_jitter() -> None:
    for attempt in range(1, 6):
        cap = min(8.0, 0.5 * 2 ** (attempt - 1))
        delays = [backoff_delay(attempt, 0.5, 8.0, None) for _ in range(200)]
        assert all(0 <= d <= cap for d in delays)
        assert max(delays) > cap / 2  # jitter spreads over the range
    assert backoff_delay(3, 0.5, 8.0, 2.5) == 2.5


def test_concurrency_limit_per_endpoint(workspace: Path) -> None:
    toml = (
        '[endpoints.limited]\nprovider = "scripted"\nmax_concurrency = 3\nreplies = ["ok"]\ndelay_s = 0.05\n'
    )
    client = make_client(workspace, use_cache=False, toml=toml)
    provider, _, _ = client.resolve("limited/any")
    active = peak = 0
    original = provider.complete

    async def tracking(model: str, request: ChatRequest):  # type: ignore[no-untyped-def]
        nonlocal active, peak
        active += 1
        peak = max(peak, active)
        try:
            return await original(model, request)
        finally:
            active -= 1

    provider.complete = tracking  # type: ignore[method-assign]
    out = client.run([ChatRequest.of("limited/any", f"q{i}") for i in range(12)])
    assert all(not isinstance(c, Exception) for c in out)
    assert peak == 3


def test_cost_from_builtin_and_overridden_prices(workspace: Path) -> None:
    toml = (
        '[endpoints.paid]\nprovider = "scripted"\nreplies = ["one two three"]\n'
        '[prices."paid/m"]\ninput = 1000000.0\noutput = 2000000.0\n'
    )
    client = make_client(workspace, use_cache=False, toml=toml)
    c = client.run([ChatRequest.of("paid/m", "hello")])[0]
    assert not isinstance(c, Exception)
    assert c.cost_usd == pytest.approx(c.usage.input_tokens * 1.0 + c.usage.output_tokens * 2.0)
    assert client.prices.cost("openai/gpt-4o-mini-2024-07-18", c.usage) is not None
    assert client.prices.cost("vllm/unknown", c.usage) is None  # unknown is unknown, never guessed
    assert client.prices.cost("local/smollm2-135m-instruct", c.usage) == 0


def test_structured_output_is_parsed_and_garbage_is_an_error_with_raw_text(workspace: Path) -> None:
    schema = {"type": "object", "properties": {"answer": {"type": "string"}}}
    with scripted("json", ['```json\n{"answer": "42"}\n```', "I think 42"]) as model:
        client = make_client(workspace, use_cache=False)
        good, bad = client.run(
            [ChatRequest.of(model, "q", response_schema=schema, sample_index=i) for i in (0, 1)]
        )
    assert not isinstance(good, Exception) and good.parsed == {"answer": "42"}
    assert isinstance(bad, OutputParseError) and bad.raw == "I think 42"


def test_unknown_endpoint_and_malformed_reference() -> None:
    settings = load_settings(env={})
    client = ModelClient(settings)
    with pytest.raises(UnknownModelError, match="unknown endpoint 'nowhere'"):
        client.resolve("nowhere/model")
    with pytest.raises(UnknownModelError, match="ENDPOINT/MODEL"):
        client.resolve("just-a-name")


def test_cached_calls_are_fast_in_bulk(workspace: Path) -> None:
    with scripted("bulk", lambda r: r.messages[-1]["content"]) as model:
        client = make_client(workspace)
        reqs = [ChatRequest.of(model, f"q{i}") for i in range(300)]
        first = client.run(reqs)
        second = client.run(reqs)
    assert all(not isinstance(c, Exception) and c.cached for c in second)
    assert [c.text for c in first if not isinstance(c, Exception)] == [f"q{i}" for i in range(300)]


def test_client_works_across_event_loops(workspace: Path) -> None:
    with scripted("loops", ["a"]) as model:
        client = make_client(workspace, use_cache=False)
        for _ in range(3):
            c = asyncio.run(client.complete(ChatRequest.of(model, "q")))
            assert c.text == "a"


def test_retrained_adapter_under_the_same_name_is_not_served_from_cache(workspace: Path) -> None:
    import os

    folder = workspace / ".honed" / "adapters" / "mine"
    folder.mkdir(parents=True)
    (folder / "adapter_config.json").write_text("{}")
    weights = folder / "adapter_model.safetensors"
    weights.write_bytes(b"v1")
    client = make_client(workspace)
    ref = "local/smollm2-135m-instruct+mine"
    provider, parsed, endpoint = client.resolve(ref)
    request = ChatRequest.of(ref, "q")
    before = client.cache_key(request, endpoint, provider, parsed.model)
    assert before == client.cache_key(request, endpoint, provider, parsed.model)
    weights.write_bytes(b"version 2")
    os.utime(weights, ns=(1, 1))
    assert client.cache_key(request, endpoint, provider, parsed.model) != before


@pytest.mark.postgres
def test_the_cache_works_on_postgresql_too(fresh_postgres_url: str, tmp_path: Path) -> None:
    n = 0

    def reply(req: ChatRequest) -> str:
        nonlocal n
        n += 1
        return f"r{n}"

    settings = load_settings(start=tmp_path, env={"HONED_DATABASE_URL": fresh_postgres_url})
    with scripted("pg", reply) as model, Store.open(settings.resolved_database_url()) as store:
        reqs = [ChatRequest.of(model, "q", sample_index=i) for i in range(3)]
        first = ModelClient(settings, store=store).run(reqs)
        second = ModelClient(settings, store=store).run(reqs)
        assert [c.text for c in second if not isinstance(c, Exception)] == ["r1", "r2", "r3"]
        assert all(not isinstance(c, Exception) and c.cached for c in second)
        assert not any(not isinstance(c, Exception) and c.cached for c in first)
        assert store.cache.count() == 3 and n == 3


def test_latency_is_the_time_in_the_model_and_queueing_is_counted_apart(workspace: Path) -> None:
    # One call at a time, 0.2 s each: the fourth call waits 0.6 s for the endpoint, then takes 0.2 s.
    toml = '[endpoints.one]\nprovider = "scripted"\nmax_concurrency = 1\nreplies = ["ok"]\ndelay_s = 0.2\n'
    client = make_client(workspace, toml=toml)
    out = client.run([ChatRequest.of("one/m", f"q{i}") for i in range(4)])
    done = [c for c in out if not isinstance(c, Exception)]
    assert len(done) == 4
    for c in done:
        assert 0.19 <= c.latency_s < 0.35, c
    queued = sorted(c.queue_s or 0.0 for c in done)
    assert queued[0] < 0.1
    for i, q in enumerate(queued[1:], 1):
        assert q >= 0.19 * i - 0.01, queued
    # A cache hit keeps both figures of the call that made it.
    again, first = client.run([ChatRequest.of("one/m", "q3")])[0], out[3]
    assert not isinstance(again, Exception) and not isinstance(first, Exception) and again.cached
    assert (again.latency_s, again.queue_s) == (first.latency_s, first.queue_s)
