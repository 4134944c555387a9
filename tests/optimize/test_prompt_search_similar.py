"""Similar-demonstration candidates (`few_shot: {select: [similar]}`): per case, the nearest train cases.

Similarity is the examples embedder's (`local/all-MiniLM-L6-v2`). Here its endpoint is the stub OpenAI
server on 127.0.0.1, whose vectors are hashes of the text: meaningless as meaning, but known, so the test
can compute which train cases are nearest to each case and check that exactly those were shown, in that
order. The scripted student records what it was sent.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from honed.api import Honed
from honed.config import load_settings
from honed.datasets import Case, record_cases
from honed.models.types import ChatRequest
from tests.optimize.test_prompt_search import START, Student, cases, run, spec
from tests.support.stub_openai import StubServer, stub_openai, stub_vector

K = 2


class Recording(Student):
    def __init__(self) -> None:
        super().__init__()
        self.requests: list[ChatRequest] = []

    def __call__(self, req: ChatRequest) -> str:
        self.requests.append(req)
        return super().__call__(req)


@pytest.fixture
def stub() -> Iterator[StubServer]:
    with stub_openai() as server:
        yield server


@pytest.fixture
def ws(workspace: Path, stub: StubServer) -> Path:
    (workspace / "start.yaml").write_text(START, encoding="utf-8")
    with (workspace / "honed.toml").open("a", encoding="utf-8") as f:
        # The examples embedder's endpoint, served by the stub (no local model is loaded).
        f.write(f'\n[endpoints.local]\nprovider = "openai"\nbase_url = "{stub.base_url}"\n')
    h = Honed(load_settings(start=workspace))
    record_cases(h.store, "qa", cases())
    h.close()
    return workspace


def nearest(text: str, pool: list[Case], k: int) -> list[str]:
    """The `k` cases of `pool` whose question's stub vector is closest (cosine) to `text`'s, closest first."""

    def unit(t: str) -> np.ndarray:
        v = np.array(stub_vector(t), dtype=np.float64)
        return v / np.linalg.norm(v)

    q = unit(text)
    sims = [float(unit(c.inputs["q"]) @ q) for c in pool]
    order = sorted(range(len(pool)), key=lambda i: -sims[i])
    return [pool[i].inputs["q"] for i in order[:k]]


def test_similar_demonstrations_are_the_nearest_train_cases_of_each_case(ws: Path, stub: StubServer) -> None:
    student = Recording()
    data = spec(strategies={"few_shot": {"k": [K], "select": ["similar"]}})
    result = run(ws, data, student)
    [candidate] = [c for c in result["candidates"] if c["strategy"] == "few-shot"]
    assert candidate["change"] == f"few-shot: {K} similar demonstrations of train"
    assert result["best"]["version"] == candidate["version"] and result["best"]["dev"]["mean"] == 1.0

    everything = cases()
    train = [c for c in everything if c.split == "train"]
    shown: dict[str, list[str]] = {}
    for req in student.requests:
        users = [m["content"] for m in req.messages if m["role"] == "user"]
        if len(users) > 1:  # a call of the candidate: demonstrations, then the case
            shown[users[-1]] = users[:-1]
    by_split = {split: [c for c in everything if c.split == split] for split in ("dev", "test")}
    # The candidate ran on every dev case (its score) and every test case (the chosen prompt's verdict).
    assert set(shown) == {c.inputs["q"] for c in by_split["dev"] + by_split["test"]}
    for question, demos in shown.items():
        assert demos == nearest(question, train, K), question
    # The demonstrations change with the case, and which train cases are chosen for a given case is known.
    assert len({tuple(d) for d in shown.values()}) > 1
    first_dev = by_split["dev"][0].inputs["q"]
    assert shown[first_dev] == nearest(first_dev, train, K)

    # Never a dev or test case: among all the other cases, some of these cases' nearest are not train
    # cases, so a pool drawn from the whole dataset would have shown them (and failed the checks above).
    leaks = 0
    for c in by_split["dev"] + by_split["test"]:
        others = [o for o in everything if o.id != c.id]
        leaks += nearest(c.inputs["q"], others, K) != shown[c.inputs["q"]]
    assert leaks > 0
    train_questions = {c.inputs["q"] for c in train}
    assert all(set(demos) <= train_questions for demos in shown.values())
    # The pool the stub embedded is the train split, nothing else; the other texts were single queries.
    inputs = [r["body"]["input"] for r in stub.requests]
    pools = [set(i) for i in inputs if isinstance(i, list) and len(i) > 1]
    assert pools == [train_questions], inputs
