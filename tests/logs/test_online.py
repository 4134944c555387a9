"""Online evaluation of logged generations: a deterministic sample, scored once per evaluator version."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from honed.api import connect
from honed.errors import InvalidInputError
from honed.logs.online import evaluate_logs, in_sample
from honed.models.types import ChatRequest
from honed.store.logs import LogFilter
from honed.testing import scripted


def test_the_sample_depends_on_the_id_only_and_grows_monotonically() -> None:
    ids = [f"log-{i}" for i in range(4000)]
    tenth = {i for i in ids if in_sample(i, 0.1)}
    fifth = {i for i in ids if in_sample(i, 0.2)}
    assert tenth <= fifth and 300 < len(tenth) < 500 and 700 < len(fifth) < 900
    assert tenth == {i for i in ids if in_sample(i, 0.1)}


def test_a_code_evaluator_scores_a_sample_once_per_version(workspace: Path) -> None:
    with connect() as h:
        ids = [h.log(model="app/m", inputs={"i": i}, output="Yes" if i % 2 else "no") for i in range(400)]
        h.log(model="app/m", inputs={"i": -1}, error="timeout")
        spec = {"type": "regex", "pattern": "^Yes"}
        first = evaluate_logs(h, spec, sample=0.25)
        assert first.matched == 400 and first.skipped == 0 and first.scored == first.sampled
        assert 60 < first.sampled < 140
        scored = {r["id"] for r in h.store.logs.query(LogFilter(min_scores={"regex": 0}))}
        assert scored == {i for i in ids if in_sample(i, 0.25)}
        again = evaluate_logs(h, spec, sample=0.25)
        assert (again.sampled, again.skipped, again.scored) == (first.sampled, first.sampled, 0)
        # a changed evaluator is a new version: it scores again and replaces the old scores
        changed = evaluate_logs(h, {"type": "regex", "pattern": "^no"}, sample=0.25)
        assert changed.scored == first.sampled and changed.version != first.version
        passing = h.store.logs.query(LogFilter(min_scores={"regex": 1}))
        assert passing and all(r["output"] == "no" for r in passing)
        with pytest.raises(InvalidInputError):
            evaluate_logs(h, spec, sample=0)


def test_a_judge_scores_logs_against_corrections_and_its_calls_are_logged_as_judge(workspace: Path) -> None:
    seen: list[ChatRequest] = []

    def judge_reply(request: ChatRequest) -> str:
        seen.append(request)
        return '{"reasoning": "fine", "score": 4}'

    with connect(use_cache=False) as h, scripted("judge", judge_reply) as judge:
        log_id = h.log(model="app/m", inputs={"question": "Capital of France?"}, output="Lyon")
        h.feedback(log_id, "correction", text="Paris")
        spec = {"type": "llm_judge", "model": judge, "rubric": "Is it right?", "name": "right"}
        result = evaluate_logs(h, spec, where=LogFilter(source="app"))
        assert result.scored == 1 and result.mean == 4.0
        assert "Paris" in seen[0].messages[-1]["content"]  # the correction is the reference
        (score,) = h.store.logs.get(log_id).scores
        assert score["evaluator"] == "right" and score["value"] == 4.0
        h.flush_logs()
        judged = h.store.logs.query(LogFilter(source="judge"))
        assert len(judged) == 1 and judged[0]["model"] == judge
        assert evaluate_logs(h, spec, where=LogFilter(source="app")).scored == 0 and len(seen) == 1


def test_rules_score_the_logs_that_arrive_while_a_server_runs(workspace: Path) -> None:
    from datetime import UTC, datetime, timedelta

    from honed.config import OnlineEvalRule
    from honed.logs.online import OnlineEvaluation

    with connect() as h:
        yesterday = datetime.now(UTC) - timedelta(days=1)
        before = h.log(model="app/m", inputs={"i": 0}, output="Yes", created_at=yesterday)
        h.flush_logs()
        rules = [
            OnlineEvalRule(evaluator={"type": "regex", "pattern": "^Y"}, prompt="qa"),
            OnlineEvalRule(evaluator="json_valid", model="app/json"),
        ]
        online = OnlineEvaluation(h.settings, rules, interval_s=0.05).start()
        try:
            qa = [h.log(model="m/m", prompt="qa", inputs={"i": i}, output=o) for i, o in enumerate("NYY")]
            other = h.log(model="app/m", prompt="other", inputs={"i": 9}, output="Yes")
            js = h.log(model="app/json", inputs={"i": 10}, output='{"a": 1}')
            h.flush_logs()
            deadline = time.monotonic() + 30
            while len(h.store.logs.scores_for([*qa, js])[js]) == 0 or online.passes < 2:
                assert time.monotonic() < deadline, online.last_error
                time.sleep(0.05)
        finally:
            online.stop()
        scores = h.store.logs.scores_for([before, *qa, other, js])
    regex = {i: s["regex"]["value"] for i, s in scores.items() if "regex" in s}
    assert regex == {qa[0]: 0.0, qa[1]: 1.0, qa[2]: 1.0}  # "N", "Y", "Y" against ^Y
    assert scores[js]["json_valid"]["passed"] is True
    assert scores[before] == {} and scores[other] == {}  # older than the server, or another prompt


def test_a_rule_naming_an_unknown_evaluator_fails_before_serving(workspace: Path) -> None:
    from honed.config import OnlineEvalRule
    from honed.errors import HonedError
    from honed.logs.online import OnlineEvaluation

    with connect() as h, pytest.raises(HonedError, match="nope"):
        OnlineEvaluation(h.settings, [OnlineEvalRule(evaluator="nope")], interval_s=1)


def test_cli_eval_shows_failed_judgments_grouped_with_an_example_and_exits_3(workspace: Path) -> None:
    from tests.support.cli import honed

    (workspace / "honed.toml").write_text(
        '[endpoints.judge]\nprovider = "scripted"\nreplies = ["I think it is fine, really."]\n'
    )
    with connect() as h:
        for i in range(6):
            h.log(model="app/m", inputs={"question": f"q{i}"}, output=f"answer {i}")
    judge = '{"type": "llm_judge", "name": "helpful", "model": "judge/m", "rubric": "Is it helpful?"}'
    r = honed("logs", "eval", judge, "--source", "app", cwd=workspace)
    assert r.returncode == 3, r.stdout + r.stderr
    assert "6 scored now (6 failed, 0 without a score)" in r.stdout
    assert "6 evaluation(s) failed:" in r.stderr
    assert "6 x unparseable judgment (the reply contains no JSON object)" in r.stderr
    assert "answered: 'I think it is fine, really.'" in r.stderr  # the raw answer the judge gave
    # Each failed judgment is kept on its score row, and --json carries the groups.
    judge2 = judge.replace('"helpful"', '"helpful2"')
    r = honed("logs", "eval", judge2, "--source", "app", "--json", cwd=workspace)
    assert r.returncode == 3
    out = json.loads(r.stdout)
    [group] = out["error_groups"]
    assert out["failed"] is True and group["count"] == 6 and group["error"] == "unparseable judgment"
    assert group["example_raw"] == "I think it is fine, really." and group["example_log"].startswith("log-")
    with connect() as h:
        rows = h.store.logs.query(LogFilter(source="app"))
        scores = h.store.logs.scores_for([row["id"] for row in rows])
    assert all(s["helpful"]["error"] == "unparseable judgment" for s in scores.values())


def test_cli_eval_without_references_is_not_a_failure(workspace: Path) -> None:
    from tests.support.cli import honed

    with connect() as h:
        h.log(model="app/m", inputs={"q": 1}, output="yes")
        ok = h.log(model="app/m", inputs={"q": 2}, output="no")
        h.feedback(ok, "correction", text="no")
    r = honed("logs", "eval", "exact", cwd=workspace)
    assert r.returncode == 0, r.stderr
    assert "(0 failed, 1 without a score), mean 1.000" in r.stdout
    assert "1 log(s) without a score (not failures):" in r.stderr
