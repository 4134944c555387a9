"""What a prompt search found: every candidate with its lineage and dev score, the chosen one, and the
verdict of start vs chosen on the test split; stored as a version of `prompt-search/NAME`."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from honed.workspace import Workspace

__all__ = ["KIND", "CandidateRecord", "SearchResult", "stored_search"]

KIND = "prompt-search"


@dataclass(frozen=True)
class CandidateRecord:
    """One candidate: its stored version, the version it was derived from and how, its strategy, and its
    dev score (None when it never reached dev: GEPA rejected it on its train minibatch)."""

    id: str
    version: str
    hash: str
    parent: str | None
    change: str
    strategy: str
    order: int
    dev: dict[str, Any] | None
    prompt_tokens: float | None


@dataclass(frozen=True)
class SearchResult:
    name: str
    dataset: str
    splits: dict[str, dict[str, Any]]
    primary: str
    student: str
    proposer: str
    start: dict[str, Any]
    best: dict[str, Any]
    diff: dict[str, Any]
    candidates: list[CandidateRecord]
    calls: int
    fresh_calls: int
    cost_usd: float | None
    tokens: dict[str, int]
    phases: dict[str, dict[str, Any]]
    budget: dict[str, Any]
    search: dict[str, Any]
    test_run: str

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def stored_search(h: Workspace, name: str, ref: str | None = None) -> dict[str, Any]:
    """The result last stored for the search `name` (or the version `ref` names)."""
    _, body = h.store.names.get(KIND, name, ref, noun="prompt search")
    return body
