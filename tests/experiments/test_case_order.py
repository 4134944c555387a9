"""`list_cases` orders and the flaky filter, on a run of two scripted variants with two repeats:

- v1 answers every case right but c1; v2 gets c1 right, c2 wrong, and c0 right only on its first sample
  (so c0 is flaky under v2, and its mean drops to 0.5 there).
- Mean `exact` score per case over both variants and samples: c0 0.75, c1 0.5, c2 0.5, the rest 1.0.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from honed.api import Honed
from honed.config import init_workspace, load_settings
from honed.datasets import Case, record_cases
from honed.errors import InvalidInputError
from honed.experiments import parse_spec, resolve, run_experiment
from honed.experiments.cases import list_cases
from honed.models.types import ChatRequest
from honed.prompts import Prompt, push
from honed.testing import scripted

N = 6


def answer(request: ChatRequest) -> str:
    case = str(request.messages[-1]["content"])
    second = "B" in str(request.messages[0]["content"])
    if case == "c1":
        return "yes" if second else "no"
    if case == "c2" and second:
        return "no"
    if case == "c0" and second:
        return "yes" if request.sample_index == 0 else "no"
    return "yes"


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Honed, str]]:
    h = Honed(load_settings(start=init_workspace(tmp_path_factory.mktemp("order"))))
    with scripted("order", answer) as model:
        for system in ("A", "B"):
            messages = [{"role": "system", "content": system}, {"role": "user", "content": "{{ case }}"}]
            push(h.store, [Prompt.model_validate({"name": "qa", "model": model, "messages": messages})])
        record_cases(
            h.store, "d", [Case(id=f"c{i}", inputs={"case": f"c{i}"}, reference="yes") for i in range(N)]
        )
        spec = {
            "name": "order",
            "dataset": "d",
            "variants": [{"prompt": "qa@v1"}, {"prompt": "qa@v2"}],
            "evaluators": [{"type": "exact"}],
            "repeats": 2,
        }
        run_id = run_experiment(h, resolve(h, parse_spec(spec))).id
    yield h, run_id
    h.close()


def ids(h: Honed, run_id: str, **kwargs: object) -> list[str]:
    return [c.case_id for c in list_cases(h.store, run_id, **kwargs).cases]  # type: ignore[arg-type]


def test_orders(run: tuple[Honed, str]) -> None:
    h, run_id = run
    assert ids(h, run_id) == ["c0", "c1", "c2", "c3", "c4", "c5"]  # the dataset's order by default
    # The lowest mean score first; ties (c1, c2 at 0.5) keep the dataset's order.
    assert ids(h, run_id, order="score") == ["c1", "c2", "c0", "c3", "c4", "c5"]
    changed = ids(h, run_id, order="change")
    assert set(changed[:2]) == {"c1", "c2"} and changed[2] == "c0"  # whole changes, then c0's half
    assert changed[3:] == ["c3", "c4", "c5"]  # the unchanged last, in the dataset's order
    # Changed cases come biggest change first by default; "case" puts them in the dataset's order.
    assert ids(h, run_id, changed="regressions", order="case") == ["c0", "c2"]
    listing = list_cases(h.store, run_id, order="score")
    assert listing.selection == "cases, the lowest score first"


def test_flaky_cases_are_those_whose_repeats_disagree(run: tuple[Honed, str]) -> None:
    h, run_id = run
    listing = list_cases(h.store, run_id, flaky=True)
    assert [c.case_id for c in listing.cases] == ["c0"] and listing.selection == "cases flaky"
    assert ids(h, run_id, flaky=True, variants=["qa@v1"]) == []  # v1 repeats itself


def test_an_unknown_order_is_a_one_line_error(run: tuple[Honed, str]) -> None:
    h, run_id = run
    with pytest.raises(InvalidInputError, match="unknown order 'best'") as caught:
        list_cases(h.store, run_id, order="best")  # type: ignore[arg-type]
    assert "case, change, score" in caught.value.one_line()


def test_the_ui_passes_the_order_and_the_flaky_filter(run: tuple[Honed, str]) -> None:
    from fastapi.testclient import TestClient

    from honed.serve import create_app

    h, run_id = run
    app = create_app(h.client, store=h.store, workspace=h)
    with TestClient(app, base_url="http://127.0.0.1") as http:
        page = http.get(f"/experiments/{run_id}", params={"order": "score"}).text
        flaky = http.get(f"/experiments/{run_id}", params={"show": "flaky"}).text
        bad = http.get(f"/experiments/{run_id}", params={"order": "best"})
    assert page.index("/cases/c1") < page.index("/cases/c2") < page.index("/cases/c0")
    assert "1 cases flaky" in flaky and "/cases/c0" in flaky and "/cases/c3" not in flaky
    assert bad.status_code == 400 and "unknown order" in bad.text
