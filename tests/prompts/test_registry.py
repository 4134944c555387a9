"""Prompts in the store: pushes are idempotent, references resolve, labels move; SQLite and PostgreSQL."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from honed.errors import InvalidInputError, NotFoundError
from honed.prompts import (
    Chain,
    Prompt,
    get_chain,
    get_item,
    get_prompt,
    history,
    list_all,
    load_prompt,
    parse_ref,
    push,
    remove_label,
    set_label,
)
from honed.store import Store
from tests.prompts.conftest import QA


def qa(text: str = "Answer briefly.") -> Prompt:
    return Prompt.parse(
        {"name": "qa", "model": "scripted/echo", "messages": [{"role": "system", "content": text}]}
    )


def test_push_records_new_versions_and_is_idempotent(store: Store) -> None:
    [first] = push(store, [qa()], note="first")
    assert first.created and first.version.number == 1 and first.version.note == "first"
    [again] = push(store, [qa()])
    assert not again.created and again.version.hash == first.version.hash
    [second] = push(store, [qa("Answer at length.")])
    assert second.created and second.version.number == 2
    assert [v.number for v in history(store, "qa")] == [1, 2]


def test_references_resolve_to_the_right_content(store: Store) -> None:
    v1 = push(store, [qa("one")])[0].version
    v2 = push(store, [qa("two")])[0].version

    def content(ref: str) -> str:
        return get_prompt(store, ref)[1].messages[0].content

    assert content("qa") == content("qa@latest") == content("qa@v2") == "two"
    assert content("qa@v1") == content(f"qa@{v1.hash[7:13]}") == content(f"qa@{v1.hash}") == "one"
    version, prompt = get_prompt(store, "qa@v1")
    assert version.hash == v1.hash == prompt.version() and prompt.name == "qa"
    assert get_prompt(store, "qa")[0].hash == v2.hash
    with pytest.raises(NotFoundError, match="has 2 version"):
        get_prompt(store, "qa@v3")
    with pytest.raises(NotFoundError, match="no version or label 'prod'"):
        get_prompt(store, "qa@prod")
    with pytest.raises(NotFoundError, match="no prompt or chain named 'nope'"):
        get_item(store, "nope")


def test_labels_move_and_are_removed(store: Store) -> None:
    push(store, [qa("one")])
    push(store, [qa("two")], label="production")
    assert get_prompt(store, "qa@production")[0].number == 2
    moved = set_label(store, "qa@v1", "production")
    assert moved.number == 1 and moved.labels == ("production",)
    assert get_prompt(store, "qa@production")[1].messages[0].content == "one"
    assert history(store, "qa")[1].labels == ()
    [summary] = list_all(store)
    assert (summary.name, summary.versions, summary.labels) == ("qa", 2, {"production": 1})
    remove_label(store, "qa", "production")
    with pytest.raises(NotFoundError):
        get_prompt(store, "qa@production")
    with pytest.raises(InvalidInputError, match="cannot be a label"):
        set_label(store, "qa@v1", "v2")


def test_a_bad_label_or_duplicate_records_nothing(store: Store) -> None:
    with pytest.raises(InvalidInputError, match="cannot be a label"):
        push(store, [qa()], label="latest")
    with pytest.raises(InvalidInputError, match="pushed twice"):
        push(store, [qa("a"), qa("b")])
    assert list_all(store) == []


def test_chains_are_versioned_beside_prompts(store: Store, write: Callable[[str, str], Path]) -> None:
    chain = Chain.parse({"name": "flow", "steps": [{"prompt": "qa@production", "output": "a"}]})
    results = push(store, [load_prompt(write("qa.yaml", QA)), chain])
    assert [(r.kind, r.version.name) for r in results] == [("prompt", "qa"), ("chain", "flow")]
    assert get_chain(store, "flow")[1] == chain
    assert isinstance(get_item(store, "flow@v1")[1], Chain)
    assert [s.kind for s in list_all(store)] == ["prompt", "chain"]
    clash = Chain.parse({"name": "qa", "steps": [{"prompt": "qa", "output": "a"}]})
    with pytest.raises(InvalidInputError, match="'qa' is already the name of a prompt"):
        push(store, [clash])


def test_parse_ref() -> None:
    assert parse_ref("qa") == ("qa", None)
    assert parse_ref("qa@production") == ("qa", "production")
    for bad in ("@v1", "qa@", ""):
        with pytest.raises(InvalidInputError):
            parse_ref(bad)


@pytest.mark.postgres
def test_push_labels_and_references_on_postgresql(fresh_postgres_url: str) -> None:
    with Store.open(fresh_postgres_url) as pg:
        first = push(pg, [qa("one")], label="staging")[0]
        assert first.created and first.version.labels == ("staging",)
        assert not push(pg, [qa("one")])[0].created
        push(pg, [qa("two")])
        set_label(pg, "qa@v2", "staging")
        assert get_prompt(pg, "qa@staging")[1].messages[0].content == "two"
        assert get_prompt(pg, f"qa@{first.version.hash[7:15]}")[0].number == 1
