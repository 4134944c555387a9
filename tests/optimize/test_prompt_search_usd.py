"""A prompt search under `budget: {usd: X}` on a scripted student with a price (honed.toml's `[prices]`).

The student (see `test_prompt_search.Student`) records every request, so what the search says it spent is
checked against the calls it made, priced here from the scripted provider's token counts.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from honed.api import Honed
from honed.config import load_settings
from honed.datasets import record_cases
from honed.errors import BudgetExceededError
from honed.models.tokens import count_text
from honed.models.types import ChatRequest
from tests.optimize.test_prompt_search import Student, cases, run, spec

#: USD per million tokens: input and output priced differently, so a mix-up of the two shows.
INPUT_USD, OUTPUT_USD = 20.0, 5.0
# max_tokens bounds the estimate of each reply (it would otherwise assume 256 tokens a reply and hold back
# fifty times what a call costs), so the budget is spent on calls rather than on a reserve.
START = """\
name: qa
params: {max_tokens: 4}
messages:
  - {role: system, content: Answer the question.}
  - {role: user, content: '{{ q }}'}
"""
STRATEGIES = {"few_shot": {"k": [1, 2, 3, 4], "bootstrap_cases": 4}}


class Priced(Student):
    """The student, keeping each request and its reply."""

    def __init__(self) -> None:
        super().__init__()
        self.made: list[tuple[ChatRequest, str]] = []

    def __call__(self, req: ChatRequest) -> str:
        reply = super().__call__(req)
        self.made.append((req, reply))
        return reply

    def usd(self) -> float:
        """What the calls cost at the price: the scripted provider counts tokens as gpt-4o's."""
        total = 0.0
        for req, reply in self.made:
            tokens_in = count_text("gpt-4o", "\n".join(m["content"] for m in req.messages))
            total += (tokens_in * INPUT_USD + count_text("gpt-4o", reply) * OUTPUT_USD) / 1e6
        return total


@pytest.fixture
def priced(workspace: Path) -> Path:
    with (workspace / "honed.toml").open("a", encoding="utf-8") as f:
        f.write(f'\n[prices."scripted/student"]\ninput = {INPUT_USD}\noutput = {OUTPUT_USD}\n')
    (workspace / "start.yaml").write_text(START, encoding="utf-8")
    h = Honed(load_settings(start=workspace))
    record_cases(h.store, "qa", cases())
    h.close()
    return workspace


def least_usd(priced: Path) -> float:
    """The search's own estimate of the least it needs, read from its refusal of a budget of $0.00001."""
    student = Priced()
    with pytest.raises(BudgetExceededError) as exc:
        run(priced, spec(budget={"usd": 0.00001}, strategies=STRATEGIES), student)
    assert student.calls == 0
    found = re.search(r"budget\.usd \$0\.0000 is below the \$([0-9.]+) the search needs", exc.value.message)
    assert found, exc.value.message
    return float(found.group(1))


def test_a_usd_budget_below_the_least_stops_before_the_first_call(priced: Path) -> None:
    least = least_usd(priced)
    assert least > 0
    student = Priced()
    with pytest.raises(BudgetExceededError) as exc:
        run(priced, spec(budget={"usd": least * 0.95}, strategies=STRATEGIES), student)
    assert student.calls == 0
    assert "\n" not in exc.value.one_line() and "budget.usd" in exc.value.message


def test_a_usd_budget_that_runs_out_mid_search_still_ends_with_the_verdict(priced: Path) -> None:
    least = least_usd(priced)
    # Room for the start, the bootstrap and some of the four few-shot candidates on dev, not all.
    budget = 2 * least
    student = Priced()
    result = run(priced, spec(budget={"usd": budget}, strategies=STRATEGIES), student)

    stopped = result["budget"]["stopped"]
    assert stopped and "few-shot: the budget has no room for another candidate" in stopped
    fewshot = [c for c in result["candidates"] if c["strategy"] == "few-shot"]
    on_dev = [c for c in fewshot if c["dev"] is not None]
    assert 1 <= len(on_dev) < 4 and len(fewshot) == len(on_dev) + 1 and fewshot[-1]["dev"] is None
    # The verdict on test is still given: start against the best of what was scored.
    assert result["best"]["version"] == on_dev[0]["version"] and result["diff"]["verdict"] == "better"
    assert result["best"]["test"]["n"] == 16

    # What it reports spending is what the calls it made cost, and within the budget.
    assert result["calls"] == student.calls == len(student.made)
    assert result["cost_usd"] == pytest.approx(student.usd(), rel=1e-9)
    assert result["budget"]["used_usd"] == pytest.approx(student.usd(), rel=1e-9)
    assert student.usd() <= budget
    assert sum(p["cost_usd"] for p in result["phases"].values()) == pytest.approx(student.usd(), rel=1e-9)
    assert result["budget"]["usd"] == budget and result["budget"]["calls"] is None


def test_a_usd_budget_just_above_the_least_pays_for_a_candidate(priced: Path) -> None:
    # The least counts the bootstrap and a candidate's demonstrations: a budget that passes the check
    # scores at least one candidate on dev, rather than ending with the start compared to itself.
    least = least_usd(priced)
    student = Priced()
    result = run(priced, spec(budget={"usd": least * 1.05}, strategies=STRATEGIES), student)
    on_dev = [c for c in result["candidates"] if c["strategy"] == "few-shot" and c["dev"] is not None]
    assert on_dev and student.usd() <= least * 1.05
