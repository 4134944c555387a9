"""Fixtures for dataset tests: a real store on each backend, and a helper that writes input files."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from honed.store import Store

WriteFile = Callable[[str, str], Path]


@pytest.fixture
def store(database_url: str) -> Iterator[Store]:
    """An empty store, once on SQLite and once on PostgreSQL."""
    with Store.open(database_url) as opened:
        yield opened


@pytest.fixture
def write(tmp_path: Path) -> WriteFile:
    """`write("name.jsonl", text)` -> the path of a UTF-8 file holding exactly `text`."""

    def _write(name: str, text: str) -> Path:
        path = tmp_path / name
        path.write_bytes(text.encode("utf-8"))
        return path

    return _write
