"""Fixtures for prompt tests: a real SQLite store, a model client on it, a workspace of the two, and a
helper to write files."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from textwrap import dedent

import pytest

from honed.config import Settings
from honed.models.client import ModelClient
from honed.store import Store

QA = """\
model: scripted/echo
params: {temperature: 0, max_tokens: 50}
messages:
  - role: system
    content: Answer briefly.
  - role: user
    content: "Question: {{ question }}"
"""


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    with Store.open(f"sqlite:///{tmp_path / 'honed.db'}") as opened:
        yield opened


@pytest.fixture
def client(store: Store) -> ModelClient:
    return ModelClient(Settings(default_model="scripted/echo"), store=store, use_cache=False)


@dataclass(frozen=True)
class Bare:
    """A `honed.workspace.Workspace` of a store and a client, without the facade's logging."""

    settings: Settings
    store: Store
    client: ModelClient

    def flush_logs(self) -> None:
        self.client.flush()


@pytest.fixture
def h(client: ModelClient, store: Store) -> Bare:
    return Bare(client.settings, store, client)


@pytest.fixture
def write(tmp_path: Path) -> Callable[[str, str], Path]:
    """`write("prompts/qa.yaml", text)`: a file under the test folder (text is dedented)."""

    def _write(name: str, text: str) -> Path:
        path = tmp_path / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(dedent(text), encoding="utf-8")
        return path

    return _write
