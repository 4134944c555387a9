"""Content-addressed versions: hashing, idempotency, lookups, and immutability down to the database."""

from __future__ import annotations

import math
import re
from collections.abc import Iterator
from datetime import UTC

import pytest
import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError

from honed.errors import ImmutableVersionError, InvalidInputError, NotFoundError
from honed.hashing import content_hash
from honed.store import Store


@pytest.fixture
def store(database_url: str) -> Iterator[Store]:
    with Store.open(database_url) as opened:
        yield opened


def test_put_returns_the_content_hash_and_get_returns_the_body(store: Store) -> None:
    body = {"template": "Réponds en {{ lang }} ✓", "params": [1, 2.5, None, True], "nested": {"x": []}}
    key = store.objects.put("prompt", body)
    assert re.fullmatch(r"sha256:[0-9a-f]{64}", key)
    assert key == content_hash(body)
    assert store.objects.get(key) == body
    assert store.objects.get_kind(key) == "prompt"
    assert store.objects.exists(key)


def test_the_hash_does_not_depend_on_key_order(store: Store) -> None:
    first = store.objects.put("dataset", {"a": 1, "b": {"c": 2, "d": 3}})
    second = store.objects.put("dataset", {"b": {"d": 3, "c": 2}, "a": 1})
    assert first == second
    assert len(store.objects.list("dataset")) == 1


def test_putting_the_same_body_again_writes_nothing(store: Store) -> None:
    key = store.objects.put("prompt", {"template": "x"})
    [(_, created)] = store.objects.list("prompt")
    assert store.objects.put("prompt", {"template": "x"}) == key
    assert store.objects.list("prompt") == [(key, created)]


def test_the_same_content_under_another_kind_is_refused(store: Store) -> None:
    key = store.objects.put("prompt", {"v": 1})
    with pytest.raises(ImmutableVersionError, match="already stored as a 'prompt' version"):
        store.objects.put("dataset", {"v": 1})
    assert store.objects.get_kind(key) == "prompt"


def test_missing_versions_raise_not_found_with_a_hint(store: Store) -> None:
    missing = content_hash({"never": "stored"})
    assert not store.objects.exists(missing)
    with pytest.raises(NotFoundError, match=re.escape(missing)):
        store.objects.get(missing)
    with pytest.raises(NotFoundError):
        store.objects.get_kind(missing)
    with pytest.raises(NotFoundError) as info:
        store.objects.get("sha256:abc")
    assert "64 hex digits" in str(info.value)


def test_list_gives_newest_first_and_only_that_kind(store: Store) -> None:
    keys = [store.objects.put("prompt", {"n": n}) for n in range(3)]
    store.objects.put("dataset", {"n": "other"})
    listed = store.objects.list("prompt")
    assert [key for key, _ in listed] == keys[::-1]
    times = [created for _, created in listed]
    assert all(t.tzinfo == UTC for t in times)
    assert times == sorted(times, reverse=True)
    assert store.objects.list("evaluator") == []


@pytest.mark.parametrize("body", [{"x": math.nan}, {"x": {1, 2}}, {"x": math.inf}])
def test_non_json_bodies_are_rejected_before_storing(store: Store, body: dict[str, object]) -> None:
    with pytest.raises(InvalidInputError, match="must be plain JSON"):
        store.objects.put("prompt", body)
    assert store.objects.list("prompt") == []


def test_there_is_no_update_method(store: Store) -> None:
    public = [name for name in dir(store.objects) if not name.startswith("_")]
    assert sorted(public) == ["exists", "get", "get_kind", "list", "put"]


def test_a_raw_sql_update_is_rejected_by_the_database(store: Store) -> None:
    key = store.objects.put("prompt", {"template": "original"})
    update = sa.text("UPDATE objects SET body = :body, kind = 'hacked' WHERE hash = :hash")
    # Straight through the engine, bypassing honed's code and error translation:
    with pytest.raises(IntegrityError, match="immutable"), store.engine.begin() as conn:
        conn.execute(update, {"body": '{"template": "changed"}', "hash": key})
    # And through a Store transaction, where it becomes honed's own error:
    with pytest.raises(ImmutableVersionError, match="immutable"), store.write() as conn:
        conn.execute(update, {"body": '{"template": "changed"}', "hash": key})
    assert store.objects.get(key) == {"template": "original"}
    assert store.objects.get_kind(key) == "prompt"
