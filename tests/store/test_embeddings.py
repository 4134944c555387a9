"""The embedding cache table: exact float32 round trips, batched reads, first-write-wins, clearing."""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import pytest

from honed.hashing import content_hash
from honed.store import Store
from honed.store.embeddings import CHUNK


@pytest.fixture
def store(database_url: str) -> Iterator[Store]:
    with Store.open(database_url) as opened:
        yield opened


def key(n: int) -> str:
    return content_hash(["test-embedder", "d", f"text {n}"])


def vectors(n: int, dim: int = 384, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).standard_normal((n, dim)).astype(np.float32)


def test_vectors_round_trip_bit_for_bit(store: Store) -> None:
    awkward = np.array([0.1, -0.0, 1e-45, -3.4028235e38, np.float32(1) / 3, 7.0], dtype=np.float32)
    rows = [(key(0), "m", awkward), *((key(i + 1), "m", v) for i, v in enumerate(vectors(3)))]
    store.embeddings.put_many(rows)
    found = store.embeddings.get_many([k for k, _, _ in rows])
    assert set(found) == {k for k, _, _ in rows}
    for k, _, v in rows:
        assert found[k].dtype == np.float32
        assert found[k].tobytes() == np.asarray(v, dtype=np.float32).tobytes()


def test_missing_keys_are_absent_and_duplicates_are_harmless(store: Store) -> None:
    assert store.embeddings.get_many([]) == {}
    store.embeddings.put_many([])
    store.embeddings.put_many([(key(1), "m", vectors(1)[0])])
    found = store.embeddings.get_many([key(1), key(2), key(1)])
    assert list(found) == [key(1)]
    assert store.embeddings.count() == 1


def test_the_first_vector_written_for_a_key_wins(store: Store) -> None:
    first, second, third = vectors(3)
    store.embeddings.put_many([(key(1), "m", first), (key(1), "m", second)])
    store.embeddings.put_many([(key(1), "m", third)])
    assert store.embeddings.get_many([key(1)])[key(1)].tobytes() == first.tobytes()
    assert store.embeddings.count() == 1


def test_more_keys_than_one_in_list_holds(store: Store) -> None:
    n = 2 * CHUNK + 17
    vs = vectors(n, dim=16)
    store.embeddings.put_many([(key(i), "m", vs[i]) for i in range(n)])
    found = store.embeddings.get_many([key(i) for i in range(n + 5)])
    assert len(found) == n
    assert all(found[key(i)].tobytes() == vs[i].tobytes() for i in range(n))


def test_other_dtypes_are_stored_as_float32(store: Store) -> None:
    store.embeddings.put_many([(key(1), "m", [0.5, 0.25]), (key(2), "m", np.array([1.0, 2.0]))])
    found = store.embeddings.get_many([key(1), key(2)])
    assert found[key(1)].tolist() == [0.5, 0.25]
    assert found[key(2)].dtype == np.float32 and found[key(2)].tolist() == [1.0, 2.0]


def test_count_and_clear_by_model(store: Store) -> None:
    store.embeddings.put_many([(key(i), "a", v) for i, v in enumerate(vectors(3))])
    store.embeddings.put_many([(key(10 + i), "b", v) for i, v in enumerate(vectors(2))])
    assert store.embeddings.count("a") == 3
    assert store.embeddings.clear("a") == 3
    assert store.embeddings.clear("no-such-model") == 0
    assert store.embeddings.count() == 2
    assert store.embeddings.clear() == 2
    assert store.embeddings.count() == 0
