"""LLM judges against a scripted model (the fake shipped in honed.testing), and judge calibration.

The scripted judge answers like a real one would: good JSON, JSON in a fence, prose, a score off the scale,
an order-biased verdict. The real local model is too weak to judge, so it is not used here.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from honed.config import load_settings
from honed.errors import InvalidInputError, ProviderError
from honed.evals.calibration import calibrate
from honed.evals.evaluators import (
    BuildContext,
    EvalInput,
    LLMJudge,
    PairwiseJudge,
    Score,
    build_evaluator,
    extract_json_object,
    self_agreement,
)
from honed.models.client import ModelClient
from honed.models.types import ChatRequest
from honed.store import Store
from honed.testing import scripted

ITEM = EvalInput(
    "Paris is the capital of France.", inputs={"question": "Capital of France?"}, reference="Paris", id="q1"
)


def client(tmp_path: Path, *, store: bool = False) -> ModelClient:
    settings = load_settings(start=tmp_path, env={})
    return ModelClient(settings, store=Store.open(settings.resolved_database_url()) if store else None)


def judge(model: str, c: ModelClient, **spec: Any) -> Any:
    base = {"type": "llm_judge", "model": model, "rubric": "Is the answer correct and complete?"}
    return build_evaluator({**base, **spec}, context=BuildContext(client=c))


# -- parsing --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "found"),
    [
        ('{"score": 4}', {"score": 4}),
        ('```json\n{"score": 4, "reasoning": "ok"}\n```', {"score": 4, "reasoning": "ok"}),
        ('Sure! Here is my verdict:\n```\n{"score": 2}\n```\nHope it helps.', {"score": 2}),
        (
            'My judgment: {"reasoning": "uses {braces}", "score": 5} - done',
            {"reasoning": "uses {braces}", "score": 5},
        ),
        ("I would give it a 4 out of 5.", None),
        ("[4]", None),
    ],
)
def test_extract_json_object_never_grabs_stray_digits(text: str, found: dict[str, Any] | None) -> None:
    assert extract_json_object(text) == found


# -- pointwise ------------------------------------------------------------------------------------------


def test_good_json_is_scored_with_threshold_and_reason(tmp_path: Path) -> None:
    prompts: list[ChatRequest] = []

    def reply(request: ChatRequest) -> str:
        prompts.append(request)
        return '{"reasoning": "Correct and complete.", "score": 5}'

    with scripted("good", reply) as model:
        score = judge(model, client(tmp_path), threshold=4)(ITEM)
    assert (score.value, score.passed, score.error) == (5.0, True, None)
    assert "Correct and complete." in score.reason and score.details["samples"] == [5.0]
    user = prompts[0].messages[-1]["content"]
    for part in (
        "Is the answer correct and complete?",
        "Capital of France?",
        "Paris is the capital",
        "1 (worst)",
    ):
        assert part in user
    assert prompts[0].params.temperature == 0.0


def test_fenced_json_with_prose_is_parsed(tmp_path: Path) -> None:
    with scripted("fenced", ['Let me think.\n```json\n{"reasoning": "Partly.", "score": "3"}\n```']) as model:
        score = judge(model, client(tmp_path), threshold=4)(ITEM)
    assert (score.value, score.passed) == (3.0, False)


@pytest.mark.parametrize(
    ("reply", "why"),
    [
        ("I'd say it deserves a 4, maybe a 5.", "no JSON object"),
        ('{"reasoning": "great", "score": 7}', "not on the scale 1-5"),
        ('{"reasoning": "great", "score": 3.5}', "not on the scale 1-5"),
        ('{"reasoning": "great", "rating": 4}', "no 'score'"),
    ],
)
def test_unparseable_or_out_of_scale_is_an_error_with_the_raw_text(
    tmp_path: Path, reply: str, why: str
) -> None:
    with scripted("bad", [reply]) as model:
        score = judge(model, client(tmp_path))(ITEM)
    assert score.error == "unparseable judgment" and score.value is None and score.passed is None
    assert score.raw == reply and why in score.reason


def test_pass_fail_scale(tmp_path: Path) -> None:
    with scripted(
        "pf", ['{"reasoning": "fine", "score": "PASS"}', '{"reasoning": "no", "score": "fail"}']
    ) as model:
        ev = judge(model, client(tmp_path), scale="pass_fail")
        first, second = ev(ITEM), ev(EvalInput("Lyon", reference="Paris"))
    assert (first.value, first.passed) == (1.0, True)
    assert (second.value, second.passed) == (0.0, False)
    with pytest.raises(InvalidInputError, match="threshold"):
        judge(model, client(tmp_path), scale="pass_fail", threshold=1)


def test_n_samples_are_n_independent_calls_with_agreement(tmp_path: Path, workspace: Path) -> None:
    calls: list[int] = []
    scores = {0: 4, 1: 4, 2: 3}

    def reply(request: ChatRequest) -> str:
        calls.append(request.sample_index)
        return json.dumps(
            {"reasoning": f"sample {request.sample_index}", "score": scores[request.sample_index]}
        )

    with scripted("sampler", reply) as model:
        c = client(workspace, store=True)
        ev = judge(model, c, samples=3, threshold=4)
        score = ev(ITEM)
        assert sorted(calls) == [0, 1, 2]
        assert score.value == pytest.approx(11 / 3) and score.passed is False
        d = score.details
        assert d["samples"] == [4.0, 4.0, 3.0] and d["mode"] == 4.0
        assert d["agreement"] == pytest.approx(2 / 3) and d["std"] == pytest.approx(0.4714, abs=1e-4)
        assert "67% of 3 valid samples agree on 4" in score.reason
        assert ev.temperature == 0.7
        # the cache serves each sample as itself: no new calls, the same answer
        again = ev(ITEM)
        assert again.value == score.value and again.details["samples"] == d["samples"]
        assert len(calls) == 3


def test_some_unparseable_samples_are_kept_as_errors_beside_the_score(tmp_path: Path) -> None:
    replies = ['{"score": 2}', "no idea", '{"score": 2}']
    with scripted("mixed", lambda r: replies[r.sample_index]) as model:
        score = judge(model, client(tmp_path), samples=3)(ITEM)
    assert score.value == 2.0 and score.details["n_valid"] == 2
    assert score.details["errors"] == [
        {"sample": 1, "error": "the reply contains no JSON object", "raw": "no idea"}
    ]


def test_failed_calls_are_errors_not_crashes(tmp_path: Path) -> None:
    down = ProviderError("server said no", provider="scripted", status=400)
    with scripted("down", [down]) as model:
        score = judge(model, client(tmp_path))(ITEM)
    assert score.error == "judge call failed" and "server said no" in score.reason and score.raw is None


def test_self_agreement_over_items(tmp_path: Path) -> None:
    def reply(request: ChatRequest) -> str:
        user = request.messages[-1]["content"]
        steady = "steady" in user
        return json.dumps({"score": 5 if steady else [1, 3, 5][request.sample_index]})

    with scripted("selfagree", reply) as model:
        ev = judge(model, client(tmp_path), samples=3)
        scores = ev.run([EvalInput("steady"), EvalInput("wobbly"), EvalInput("steady too")])
    assert [s.details["agreement"] for s in scores] == [1.0, pytest.approx(1 / 3), 1.0]
    report = self_agreement(scores)
    assert report.n_items == 3 and report.percent_agreement == pytest.approx(7 / 9)
    assert report.unanimous == pytest.approx(2 / 3)


def test_a_judge_needs_a_client() -> None:
    ev = build_evaluator({"type": "llm_judge", "model": "scripted/x", "rubric": "r"})
    with pytest.raises(InvalidInputError, match="needs a model client"):
        ev(ITEM)
    with pytest.raises(InvalidInputError, match="ENDPOINT/MODEL"):
        build_evaluator({"type": "llm_judge", "model": "gpt", "rubric": "r"})


# -- pairwise -------------------------------------------------------------------------------------------


def pairwise(model: str, c: ModelClient) -> PairwiseJudge:
    ev = build_evaluator(
        {"type": "pairwise_judge", "model": model, "rubric": "Which answer is more helpful?"},
        context=BuildContext(client=c),
    )
    assert isinstance(ev, PairwiseJudge)
    return ev


def response(user: str, slot: str) -> str:
    return user.split(f"[Response {slot}]\n", 1)[1].split("\n\n", 1)[0]


def test_swapping_the_order_cancels_a_position_biased_judge(tmp_path: Path) -> None:
    calls: list[str] = []

    def always_a(request: ChatRequest) -> str:
        calls.append(request.messages[-1]["content"])
        return '{"reasoning": "The first one.", "winner": "A"}'

    with scripted("biased", always_a) as model:
        score = pairwise(model, client(tmp_path))(EvalInput("answer one", baseline="answer two"))
    assert (
        len(calls) == 2
        and response(calls[0], "A") == "answer one"
        and response(calls[1], "A") == "answer two"
    )
    assert score.value == 0.0 and score.details["position_bias"] is True and "swapped" in score.reason


def test_a_consistent_judge_wins_in_both_orders(tmp_path: Path) -> None:
    def prefers_detail(request: ChatRequest) -> str:
        user = request.messages[-1]["content"]
        winner = "A" if "detailed" in response(user, "A") else "B"
        return json.dumps({"reasoning": "More detail.", "winner": winner})

    with scripted("fair", prefers_detail) as model:
        ev = pairwise(model, client(tmp_path))
        better, worse, missing = ev.run(
            [
                EvalInput("a detailed answer", baseline="short"),
                EvalInput("short", baseline="a detailed answer"),
                EvalInput("no baseline here"),
            ]
        )
    assert (
        better.value == 1.0 and better.details["position_bias"] is False and "More detail." in better.reason
    )
    assert worse.value == -1.0 and worse.details["consistent"] is True
    assert missing.error == "no baseline output to compare against"


def test_an_unparseable_pairwise_verdict_is_an_error_with_the_raw_text(tmp_path: Path) -> None:
    with scripted("vague", ['{"winner": "both"}']) as model:
        score = pairwise(model, client(tmp_path))(EvalInput("x", baseline="y"))
    assert (
        score.error == "unparseable judgment"
        and score.raw == '{"winner": "both"}'
        and "'both'" in score.reason
    )


# -- calibration ----------------------------------------------------------------------------------------


def test_calibration_pass_fail_against_a_hand_computed_example() -> None:
    judge_labels = [1, 1, 0, 1, 0, 0, 1, 1, 0, 1]
    human_labels = [1, 0, 0, 1, 0, 1, 1, 1, 0, 0]
    report = calibrate(judge_labels, human_labels, scale="pass_fail")
    # judge x human counts: (0,0)=3 (0,1)=1 (1,0)=2 (1,1)=4; p_o = 0.7; p_e = (4*5 + 6*5)/100 = 0.5
    assert report.n == 10 and report.accuracy == pytest.approx(0.7)
    assert report.kappa == pytest.approx(0.4) and report.weighted is None
    assert report.confusion == ((3, 1), (2, 4))
    assert report.to_dict()["labels"] == [0.0, 1.0]


def test_calibration_ordinal_weighted_with_scores_by_id() -> None:
    judge_scores: dict[str, Score | float] = {
        "a": 1,
        "b": 2,
        "c": 3,
        "d": Score(8 / 3, None, "mean of samples"),  # rounds to 3
        "e": Score.failed("unparseable judgment"),
        "only_judged": 2,
    }
    human_labels = {"a": 1, "b": 3, "c": 3, "d": 2, "e": 1, "only_human": 3}
    report = calibrate(judge_scores, human_labels, scale="1-3")
    # pairs (1,1) (2,3) (3,3) (3,2); quadratic weights 0.25 for a near miss, 1 for two apart
    # observed disagreement 0.5; chance (margins 1,1,2 each side): (6 * 0.25 + 4 * 1) / 4 = 1.375
    assert report.n == 4 and report.accuracy == pytest.approx(0.5)
    assert report.kappa == pytest.approx(1 - 0.5 / 1.375) and report.weighted == "quadratic"
    assert report.unweighted_kappa == pytest.approx((0.5 - 0.375) / 0.625)
    assert report.mean_abs_error == pytest.approx(0.5)
    assert (report.n_judge_errors, report.n_unlabelled, report.n_unjudged) == (1, 1, 1)
    assert report.confusion == ((1, 0, 0), (0, 0, 1), (0, 1, 1))
    assert "accuracy=0.500" in report.summary()


def test_calibration_rejects_mismatched_inputs() -> None:
    with pytest.raises(InvalidInputError, match="3 judge scores for 2 human labels"):
        calibrate([1, 2, 3], [1, 2])
    with pytest.raises(InvalidInputError, match="not on the scale"):
        calibrate([1, 9], [1, 2], scale="1-5")


def test_judge_scores_feed_calibration(tmp_path: Path) -> None:
    with scripted(
        "cal", lambda r: '{"score": 4}' if "good" in r.messages[-1]["content"] else '{"score": 2}'
    ) as model:
        ev = judge(model, client(tmp_path))
        assert isinstance(ev, LLMJudge)
        items = [EvalInput("good one", id="1"), EvalInput("bad one", id="2"), EvalInput("good again", id="3")]
        scores = dict(zip(["1", "2", "3"], ev.run(items), strict=True))
    report = calibrate(scores, {"1": 4, "2": 2, "3": 5})
    assert report.n == 3 and report.accuracy == pytest.approx(2 / 3)
