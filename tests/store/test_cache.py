"""The response cache: single and batched reads and writes, first-write-wins, clearing."""

from __future__ import annotations

import math
from collections.abc import Iterator

import pytest

from honed.errors import InvalidInputError
from honed.hashing import content_hash
from honed.store import CacheRow, Store


@pytest.fixture
def store(database_url: str) -> Iterator[Store]:
    with Store.open(database_url) as opened:
        yield opened


def row(n: int, model: str = "openai/gpt-4o-mini") -> CacheRow:
    request = {"model": model, "messages": [{"role": "user", "content": f"question {n}"}]}
    return content_hash(request), model, request, {"text": f"answer {n}", "usage": {"output_tokens": n}}


def test_get_of_an_uncached_key_is_none(store: Store) -> None:
    assert store.cache.get(row(1)[0]) is None
    assert store.cache.get_many([]) == {}
    assert store.cache.count() == 0


def test_put_then_get(store: Store) -> None:
    key, model, request, response = row(1)
    store.cache.put(key, model, request, response)
    assert store.cache.get(key) == response
    assert store.cache.count() == 1


def test_a_second_put_of_the_same_key_is_ignored(store: Store) -> None:
    key, model, request, response = row(1)
    store.cache.put(key, model, request, response)
    store.cache.put(key, model, request, {"text": "a later, different answer"})
    store.cache.put_many([(key, model, request, {"text": "yet another"})])
    assert store.cache.get(key) == response
    assert store.cache.count() == 1


def test_get_many_returns_only_cached_keys(store: Store) -> None:
    rows = [row(n) for n in range(5)]
    store.cache.put_many(rows[:3])
    keys = [r[0] for r in rows]
    found = store.cache.get_many([*keys, keys[0]])  # duplicates in the request are harmless
    assert found == {key: response for key, _, _, response in rows[:3]}


def test_put_many_with_duplicates_inside_one_batch_keeps_the_first(store: Store) -> None:
    key, model, request, _ = row(1)
    store.cache.put_many([(key, model, request, {"n": 1}), (key, model, request, {"n": 2})])
    assert store.cache.get(key) == {"n": 1}


def test_put_many_is_all_or_nothing(store: Store) -> None:
    bad = (*row(2)[:3], {"score": math.nan})
    with pytest.raises(InvalidInputError, match="not plain JSON"):
        store.cache.put_many([row(1), bad])
    assert store.cache.count() == 0


def test_clear_by_model_and_all(store: Store) -> None:
    store.cache.put_many([row(n, "a/model") for n in range(3)] + [row(n, "b/model") for n in range(2)])
    assert store.cache.clear("a/model") == 3
    assert store.cache.clear("no/such-model") == 0
    assert store.cache.count() == 2
    assert store.cache.clear() == 2
    assert store.cache.count() == 0


def test_two_thousand_rows_round_trip(store: Store) -> None:
    rows = [row(n) for n in range(2000)]
    store.cache.put_many(rows)
    assert store.cache.count() == 2000
    missing = [row(n)[0] for n in range(2000, 2010)]
    found = store.cache.get_many([r[0] for r in rows] + missing)
    assert len(found) == 2000
    assert found == {key: response for key, _, _, response in rows}
