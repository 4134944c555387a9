"""Logs, runs, fine-tuning jobs and versions are found by their id or any unique prefix of it, as git does,
on SQLite and PostgreSQL; a prefix of several is "ambiguous", LIKE's wildcards match only themselves."""

from __future__ import annotations

import itertools
from collections.abc import Iterator

import pytest

from honed.errors import NotFoundError
from honed.hashing import content_hash
from honed.logs.record import LogRecord
from honed.store import Store


@pytest.fixture
def store(database_url: str) -> Iterator[Store]:
    with Store.open(database_url) as opened:
        yield opened


def test_logs_by_id_or_unique_prefix(store: Store) -> None:
    ids = ["log-27cb8bdf00", "log-27cb8bdf11", "log-3a00", "log_3a99"]
    store.logs.insert_many([LogRecord(id=i, model="vendor/m", output=i, inputs={"q": i}).row() for i in ids])
    assert store.logs.get("log-27cb8bdf00").log["output"] == "log-27cb8bdf00"
    assert store.logs.get("log-27cb8bdf1").log["id"] == "log-27cb8bdf11"
    assert store.logs.resolve_id("log-3") == "log-3a00"
    # `_` is a LIKE wildcard: the user's text must match literally, so "log_" is only the one id.
    assert store.logs.resolve_id("log_") == "log_3a99"
    with pytest.raises(
        NotFoundError, match=r"^ambiguous: 2 logs match 'log-27cb8bdf' \(give more characters\)$"
    ):
        store.logs.get("log-27cb8bdf")
    with pytest.raises(NotFoundError, match=r"^ambiguous: 3 logs match 'log-'"):
        store.logs.get("log-")
    with pytest.raises(NotFoundError, match=r"^no log 'log-4' "):
        store.logs.get("log-4")
    with pytest.raises(NotFoundError, match=r"^no log 'log%' "):
        store.logs.get("log%")


def test_runs_by_id_name_or_unique_prefix(store: Store) -> None:
    made = [store.runs.create({"i": i}, f"sha256:{i}").id for i in range(17)]
    # 17 hex ids: at least two share their first character (and a unique one is found by more).
    first = {run_id[0] for run_id in made}
    shared = next(c for c in sorted(first) if sum(r.startswith(c) for r in made) > 1)
    count = sum(r.startswith(shared) for r in made)
    with pytest.raises(NotFoundError, match=rf"^ambiguous: {count} runs match '{shared}' \(give more"):
        store.runs.get(shared)
    run_id = made[0]
    assert store.runs.get(run_id).id == run_id
    shortest = next(run_id[:n] for n in range(1, 13) if sum(r.startswith(run_id[:n]) for r in made) == 1)
    assert store.runs.get(shortest).id == run_id
    with pytest.raises(NotFoundError, match=r"^no experiment run 'zzz'"):
        store.runs.get("zzz")


def test_runs_by_name_before_prefix(store: Store) -> None:
    # A name that is also an id prefix names the run called so, not the one whose id starts with it.
    by_id = store.runs.create({"a": 1}, "sha256:a")
    named = store.runs.create({"b": 1}, "sha256:b", name=by_id.id[:3])
    assert store.runs.get(by_id.id[:3]).id == named.id


def test_finetune_jobs_by_id_or_unique_prefix(store: Store) -> None:
    for job_id in ("a1b2c3d4e5f6", "a1b2ffffffff", "b0000000000a"):
        store.jobs.create(job_id, "local", {"base": "m"})
    assert store.jobs.get("a1b2c3d4e5f6").id == "a1b2c3d4e5f6"
    assert store.jobs.get("a1b2c").id == "a1b2c3d4e5f6"
    assert store.jobs.get("b").id == "b0000000000a"
    with pytest.raises(NotFoundError, match=r"^ambiguous: 2 fine-tuning jobs match 'a1b2' \(give more"):
        store.jobs.get("a1b2")
    with pytest.raises(NotFoundError, match=r"^no fine-tuning job 'c0'"):
        store.jobs.get("c0")


def _two_bodies_sharing_six_hex_digits() -> tuple[dict[str, str], dict[str, str], str]:
    seen: dict[str, dict[str, str]] = {}
    for i in itertools.count():
        body = {"template": f"Answer {i}: {{{{ q }}}}"}
        digits = content_hash(body).removeprefix("sha256:")[:6]
        if digits in seen:
            return seen[digits], body, digits
        seen[digits] = body
    raise AssertionError("unreachable")


def test_versions_by_hash_or_unique_hash_prefix(store: Store) -> None:
    a, b, shared = _two_bodies_sharing_six_hex_digits()
    va, _ = store.names.record("prompt", "qa", a)
    vb, _ = store.names.record("prompt", "qa", b)
    assert store.names.resolve("prompt", "qa", va.hash).hash == va.hash
    digits = vb.hash.removeprefix("sha256:")
    unique = next(
        digits[:n] for n in range(7, 64) if not va.hash.removeprefix("sha256:").startswith(digits[:n])
    )
    assert store.names.resolve("prompt", "qa", unique).hash == vb.hash
    assert store.names.resolve("prompt", "qa", f"sha256:{unique}").hash == vb.hash
    with pytest.raises(
        NotFoundError, match=rf"^ambiguous: 2 versions of prompt 'qa' match 'sha256:{shared}'"
    ):
        store.names.resolve("prompt", "qa", shared)
    # The same content under another name is not a second match.
    store.names.record("prompt", "other", a)
    assert store.names.resolve("prompt", "other", shared).hash == va.hash
    with pytest.raises(NotFoundError, match="has no version or label 'ffffff0'"):
        store.names.resolve("prompt", "qa", "ffffff0")
