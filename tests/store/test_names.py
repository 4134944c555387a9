"""Named versions and labels, on SQLite and PostgreSQL."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from honed.errors import InvalidInputError, NotFoundError
from honed.store import Store


@pytest.fixture
def store(database_url: str) -> Iterator[Store]:
    with Store.open(database_url) as opened:
        yield opened


def test_history_numbers_versions_and_ignores_repeats(store: Store) -> None:
    v1, new1 = store.names.record("prompt", "qa", {"t": "one"}, note="first")
    v2, new2 = store.names.record("prompt", "qa", {"t": "two"})
    again, new_again = store.names.record("prompt", "qa", {"t": "one"})
    assert (new1, new2, new_again) == (True, True, False)
    assert again.hash == v1.hash and again.number == 1
    history = store.names.history("prompt", "qa")
    assert [(v.number, v.hash) for v in history] == [(1, v1.hash), (2, v2.hash)]
    assert history[0].note == "first"
    assert store.names.names("prompt")[0][:2] == ("qa", 2)


def test_references_latest_ordinal_prefix_and_label(store: Store) -> None:
    v1, _ = store.names.record("prompt", "qa", {"t": "one"})
    v2, _ = store.names.record("prompt", "qa", {"t": "two"})
    r = store.names.resolve
    assert r("prompt", "qa").hash == r("prompt", "qa", "latest").hash == v2.hash
    assert r("prompt", "qa", "v1").hash == v1.hash
    assert r("prompt", "qa", v1.hash[7:15]).hash == v1.hash
    assert r("prompt", "qa", v1.hash).hash == v1.hash
    store.names.set_label("prompt", "qa", "production", "v1")
    assert r("prompt", "qa", "production").hash == v1.hash
    before, moved = store.names.set_label("prompt", "qa", "production", "v2")
    assert (
        before == v1.hash
        and moved.labels == ("production",)
        and r("prompt", "qa", "production").hash == v2.hash
    )
    assert store.names.history("prompt", "qa")[0].labels == ()
    version, body = store.names.get("prompt", "qa", "production")
    assert body == {"t": "two"} and version.number == 2
    store.names.remove_label("prompt", "qa", "production")
    with pytest.raises(NotFoundError, match="no version or label 'production'"):
        r("prompt", "qa", "production")


def test_names_are_per_kind_and_errors_say_what_exists(store: Store) -> None:
    store.names.record("prompt", "qa", {"t": "one"})
    with pytest.raises(NotFoundError, match="no dataset named 'qa'"):
        store.names.resolve("dataset", "qa")
    with pytest.raises(NotFoundError, match="has 1 version"):
        store.names.resolve("prompt", "qa", "v5")
    with pytest.raises(InvalidInputError):
        store.names.record("prompt", "bad name!", {"t": 1})
    with pytest.raises(InvalidInputError):
        store.names.set_label("prompt", "qa", "latest", "v1")
    with pytest.raises(NotFoundError):
        store.names.remove_label("prompt", "qa", "nope")


def test_the_same_content_can_belong_to_two_names(store: Store) -> None:
    a, _ = store.names.record("prompt", "a", {"t": "shared"})
    b, _ = store.names.record("prompt", "b", {"t": "shared"})
    assert a.hash == b.hash and a.name == "a" and b.name == "b"
