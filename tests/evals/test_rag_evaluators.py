"""The RAG metrics (faithfulness, answer relevance, context precision, context recall).

Almost every test here drives them with the scripted model (a fake shipped in honed.testing, standing in
for a capable judge such as an OpenAI model, which cannot be reached from here): it replies like a judge
would, in good JSON, in garbage, or leaving a claim out, so the value math, the parsing and the error paths
are checked exactly. One slow test runs faithfulness with the real local model, to show the pipeline runs
end to end; a 135M model is too weak to judge well, so it checks only that each item gets a value or an
error with the raw reply.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest

from honed.config import load_settings
from honed.errors import InvalidInputError, ProviderError
from honed.evals.evaluators import BuildContext, EvalInput, Score, build_evaluator, builtin_registry
from honed.evals.evaluators.rag import (
    CHECK_SYSTEM,
    PRECISION_SYSTEM,
    SPLIT_SYSTEM,
    Faithfulness,
    average_precision,
    parse_claims,
    parse_verdicts,
)
from honed.models.client import ModelClient
from honed.models.types import ChatRequest
from honed.store import Store
from honed.testing import scripted

CONTEXT = [
    "Paris is the capital and largest city of France.",
    "The Eiffel Tower was completed in 1889.",
]
ITEM = EvalInput(
    "Paris is the capital of France. The Eiffel Tower opened in 1889. It is 500 metres tall.",
    inputs={"question": "Tell me about Paris."},
    reference="Paris is the capital of France and home of the Eiffel Tower.",
    context=CONTEXT,
    id="q1",
)
CLAIMS = [
    "Paris is the capital of France.",
    "The Eiffel Tower opened in 1889.",
    "The Eiffel Tower is 500 metres tall.",
]


def client(tmp_path: Path, *, store: bool = False) -> ModelClient:
    settings = load_settings(start=tmp_path, env={})
    return ModelClient(settings, store=Store.open(settings.resolved_database_url()) if store else None)


def metric(kind: str, model: str, c: ModelClient, **spec: Any) -> Any:
    return build_evaluator({"type": kind, "model": model, **spec}, context=BuildContext(client=c))


def user(request: ChatRequest) -> str:
    return request.messages[-1]["content"]


def system(request: ChatRequest) -> str:
    return request.messages[0]["content"]


def judge(
    *,
    claims: list[str] | str = CLAIMS,
    supported: Sequence[bool] | str = (True, True, False),
    log: list[ChatRequest] | None = None,
) -> Any:
    """A scripted claim splitter and checker: `claims` / `supported` are the replies (a str is sent raw)."""

    def reply(request: ChatRequest) -> str:
        if log is not None:
            log.append(request)
        if system(request) == SPLIT_SYSTEM:
            return claims if isinstance(claims, str) else json.dumps({"claims": claims})
        assert system(request) == CHECK_SYSTEM
        if isinstance(supported, str):
            return supported
        verdicts = [
            {"claim": i, "supported": ok, "reason": "stated" if ok else "not in the passages"}
            for i, ok in enumerate(supported, 1)
        ]
        return json.dumps({"verdicts": verdicts})

    return reply


# -- faithfulness ---------------------------------------------------------------------------------------


def test_faithfulness_is_supported_claims_over_claims_and_names_the_unsupported(tmp_path: Path) -> None:
    log: list[ChatRequest] = []
    with scripted("faith", judge(log=log)) as model:
        score = metric("faithfulness", model, client(tmp_path), threshold=0.8)(ITEM)
    assert score.value == pytest.approx(2 / 3) and score.passed is False and score.error is None
    assert score.reason.startswith("2/3 claims supported by the context; unsupported:")
    assert "'The Eiffel Tower is 500 metres tall.' (not in the passages)" in score.reason
    assert score.details["claims"] == [
        {"claim": CLAIMS[0], "supported": True, "reason": "stated"},
        {"claim": CLAIMS[1], "supported": True, "reason": "stated"},
        {"claim": CLAIMS[2], "supported": False, "reason": "not in the passages"},
    ]
    assert score.details["judge_input_tokens"] > 0 and score.details["judge_output_tokens"] > 0
    # two calls: the split sees the answer (and question), the check sees numbered passages and claims
    assert [system(r) for r in log] == [SPLIT_SYSTEM, CHECK_SYSTEM]
    assert ITEM.output in user(log[0]) and "Tell me about Paris." in user(log[0])
    check = user(log[1])
    assert f"[1] {CONTEXT[0]}" in check and f"[2] {CONTEXT[1]}" in check and f"3. {CLAIMS[2]}" in check
    assert all(r.params.temperature == 0.0 for r in log)


def test_claims_may_be_strings_or_claim_objects() -> None:
    reply = 'Here you go: {"claims": [" Paris is a city. ", {"claim": "It is in France.", "why": "x"}, ""]}'
    assert parse_claims(reply) == ["Paris is a city.", "It is in France."]


def test_verdicts_match_by_claim_number_or_by_position() -> None:
    shuffled = json.dumps(
        {
            "verdicts": [
                {"claim": "2", "supported": "no", "reason": "absent"},
                {"claim": 1, "supported": True},
            ]
        }
    )
    assert parse_verdicts(shuffled, 2) == [(True, ""), (False, "absent")]
    by_position = (
        '```json\n{"verdicts": [{"claim": "Paris...", "supported": false}, {"supported": "yes"}]}\n```'
    )
    assert parse_verdicts(by_position, 2) == [(False, ""), (True, "")]


@pytest.mark.parametrize(
    ("claims", "verdicts", "why"),
    [
        ("The answer claims Paris is a capital.", None, "claims: the reply contains no JSON object"),
        ('{"claims": "Paris is the capital"}', None, "no 'claims' list"),
        ('{"claims": [{"text": "Paris is the capital"}]}', None, "'claims' must list strings"),
        (None, '{"verdicts": [{"claim": 1, "supported": true}, {"claim": 2, "supported": true}]}',
         "judged 2 of 3 claims (no verdict for [3])"),
        (None, '{"verdicts": [{"supported": true}, {"supported": false}]}', "2 verdicts for 3 claims"),
        (None, '{"verdicts": [{"claim": 1, "supported": true}, {"claim": 1, "supported": false}, '
               '{"claim": 3, "supported": true}]}', "claim 1 is judged twice"),
        (None, '{"verdicts": [{"claim": 1, "supported": "maybe"}, {"claim": 2, "supported": true}, '
               '{"claim": 3, "supported": true}]}', "'supported' is 'maybe'"),
        (None, "All three are supported.", "verdicts: the reply contains no JSON object"),
    ],
)  # fmt: skip
def test_garbage_judge_replies_fail_with_the_raw_reply(
    tmp_path: Path, claims: str | None, verdicts: str | None, why: str
) -> None:
    replies = judge(claims=claims or CLAIMS, supported=verdicts or [True, True, True])
    with scripted("garbage", replies) as model:
        score = metric("faithfulness", model, client(tmp_path))(ITEM)
    assert score.error == "unparseable judgment" and score.value is None and score.passed is None
    assert why in score.reason
    assert score.raw == (claims or verdicts)
    assert score.details["judge_input_tokens"] > 0  # what the failed run spent is still counted


def test_an_answer_without_claims_is_vacuously_faithful_and_says_so(tmp_path: Path) -> None:
    log: list[ChatRequest] = []
    with scripted("noclaims", judge(claims=[], log=log)) as model:
        ev = metric("faithfulness", model, client(tmp_path))
        refusal = ev(EvalInput("I don't know.", context=CONTEXT))
        empty = ev(EvalInput("   ", context=CONTEXT))
    assert refusal.value == 1.0 and "makes no factual claim" in refusal.reason
    assert refusal.details["claims"] == []
    assert empty.value == 1.0 and "empty" in empty.reason
    assert len(log) == 1  # the refusal was split; the empty answer needed no call at all


def test_missing_context_is_an_error_and_empty_context_supports_nothing(tmp_path: Path) -> None:
    log: list[ChatRequest] = []
    with scripted("nocontext", judge(log=log)) as model:
        ev = metric("faithfulness", model, client(tmp_path))
        missing = ev(EvalInput(ITEM.output, inputs=ITEM.inputs))
        assert missing.error == "no retrieved context" and "EvalInput.context" in missing.details["hint"]
        assert log == []
        nothing = ev(EvalInput(ITEM.output, inputs=ITEM.inputs, context=[]))
    assert nothing.value == 0.0 and nothing.reason.startswith("0/3 claims supported")
    assert {c["reason"] for c in nothing.details["claims"]} == {"nothing was retrieved"}
    assert [system(r) for r in log] == [SPLIT_SYSTEM]  # nothing to check the claims against


def test_a_failed_call_is_an_error_not_a_crash(tmp_path: Path) -> None:
    down = ProviderError("server said no", provider="scripted", status=400)
    with scripted("down", [down]) as model:
        score = metric("faithfulness", model, client(tmp_path))(ITEM)
    assert score.error == "judge call failed" and score.reason.startswith("claims: ")
    assert "server said no" in score.reason and score.raw is None


def test_judgments_are_cached_through_the_client(workspace: Path) -> None:
    log: list[ChatRequest] = []
    with scripted("cached", judge(log=log)) as model:
        ev = metric("faithfulness", model, client(workspace, store=True))
        first, again = ev(ITEM), ev(ITEM)
    assert len(log) == 2 and again.value == first.value == pytest.approx(2 / 3)
    assert again.details["claims"] == first.details["claims"]


def test_samples_run_the_whole_metric_n_times_and_report_the_spread(tmp_path: Path) -> None:
    log: list[ChatRequest] = []
    # sample 0 supports all three claims, sample 1 two, sample 2 replies garbage
    patterns: dict[int, Sequence[bool] | str] = {0: [True, True, True], 1: [True, False, True], 2: "no idea"}

    def reply(request: ChatRequest) -> str:
        log.append(request)
        return str(judge(supported=patterns[request.sample_index])(request))

    with scripted("samples", reply) as model:
        ev = metric("faithfulness", model, client(tmp_path), samples=3)
        score = ev(ITEM)
    assert ev.temperature == 0.7 and sorted({r.sample_index for r in log}) == [0, 1, 2] and len(log) == 6
    assert score.value == pytest.approx((1 + 2 / 3) / 2)
    d = score.details
    assert d["samples"] == [1.0, pytest.approx(2 / 3)] and d["n_valid"] == 2
    assert d["std"] == pytest.approx(1 / 6)
    assert [r["error"] for r in d["runs"]] == [None, None, "unparseable judgment"]
    assert d["runs"][2]["raw"] == "no idea"
    assert "over 2 of 3 runs" in score.reason


# -- answer relevance -----------------------------------------------------------------------------------


def test_answer_relevance_normalises_a_1_to_5_rating(tmp_path: Path) -> None:
    log: list[ChatRequest] = []

    def reply(request: ChatRequest) -> str:
        log.append(request)
        return '{"reasoning": "Answers it, with extra detail.", "score": 4}'

    with scripted("relevance", reply) as model:
        ev = metric("answer_relevance", model, client(tmp_path), question_field="q", threshold=0.7)
        score = ev(EvalInput("Paris.", inputs={"q": "Capital of France?"}))
        missing = ev(EvalInput("Paris.", inputs={"question": "Capital of France?"}))
        empty = ev(EvalInput("", inputs={"q": "Capital of France?"}))
    assert (score.value, score.passed) == (0.75, True)
    assert score.reason == "rated 4/5: Answers it, with extra detail." and score.details["score"] == 4.0
    assert "[Question]\nCapital of France?" in user(log[0]) and "[Answer]\nParis." in user(log[0])
    assert missing.error == "no question" and "'q'" in missing.reason
    assert empty.value == 0.0 and "empty" in empty.reason
    assert len(log) == 1


@pytest.mark.parametrize(
    ("reply", "why"),
    [
        ('{"score": 6}', "score 6 is not on the scale 1-5"),
        ('{"reasoning": "good"}', "no 'score'"),
        ("I would say 4.", "no JSON object"),
    ],
)
def test_answer_relevance_garbage_is_an_error_with_the_raw_reply(
    tmp_path: Path, reply: str, why: str
) -> None:
    with scripted("relbad", [reply]) as model:
        score = metric("answer_relevance", model, client(tmp_path))(ITEM)
    assert score.error == "unparseable judgment" and why in score.reason and score.raw == reply


# -- context precision ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("relevant", "expected"),
    [
        ([True, False, True, False], (1 / 1 + 2 / 3) / 2),
        ([False, True], 1 / 2),
        ([True, True, True], 1.0),
        ([False, False], 0.0),
        ([], 0.0),
    ],
)
def test_average_precision(relevant: list[bool], expected: float) -> None:
    assert average_precision(relevant) == pytest.approx(expected)


CHUNKS = ["Paris is France's capital.", "Lyon has good food.", "France's capital city: Paris.", "Rain."]


def precision_judge(log: list[ChatRequest], bad: str | None = None) -> Any:
    def reply(request: ChatRequest) -> str:
        log.append(request)
        assert system(request) == PRECISION_SYSTEM
        passage = user(request).split("[Passage]\n", 1)[1]
        if bad is not None and passage.startswith(bad):
            return "Relevant, I think."
        relevant = "Paris" in passage
        return json.dumps({"reasoning": "names Paris" if relevant else "off topic", "relevant": relevant})

    return reply


def test_context_precision_is_the_average_precision_of_per_chunk_verdicts(tmp_path: Path) -> None:
    log: list[ChatRequest] = []
    item = EvalInput("Paris", inputs={"question": "Capital of France?"}, reference=["Paris", "City of Paris"])
    with scripted("precision", precision_judge(log)) as model:
        ev = metric("context_precision", model, client(tmp_path))
        score = ev(EvalInput(**{**_fields(item), "context": CHUNKS}))
        none = ev(EvalInput(**{**_fields(item), "context": ["Rain.", "Snow."]}))
        nothing = ev(EvalInput(**{**_fields(item), "context": []}))
    assert score.value == pytest.approx((1 + 2 / 3) / 2)
    assert score.reason == "average precision 0.833: relevant at rank 1, 3 of 4"
    assert [c["relevant"] for c in score.details["chunks"]] == [True, False, True, False]
    assert score.details["chunks"][1] == {"rank": 2, "relevant": False, "reason": "off topic"}
    assert none.value == 0.0 and none.reason == "none of the 2 retrieved chunks is relevant"
    assert nothing.value == 0.0 and nothing.reason == "nothing was retrieved"
    assert len(log) == 6  # one call per chunk; nothing retrieved, nothing asked
    first = user(log[0])
    assert "[Question]\nCapital of France?" in first and "[Reference answer]\nParis\n" in first  # the first


def _fields(item: EvalInput) -> dict[str, Any]:
    return {"output": item.output, "inputs": item.inputs, "reference": item.reference}


def test_context_precision_needs_question_reference_and_context(tmp_path: Path) -> None:
    log: list[ChatRequest] = []
    with scripted("precmissing", precision_judge(log)) as model:
        ev = metric("context_precision", model, client(tmp_path))
        no_ref = ev(EvalInput("Paris", inputs={"question": "Capital?"}, context=CHUNKS))
        no_question = ev(EvalInput("Paris", reference="Paris", context=CHUNKS))
        no_context = ev(EvalInput("Paris", inputs={"question": "Capital?"}, reference="Paris"))
        blank_ref = ev(EvalInput("Paris", inputs={"question": "Capital?"}, reference=" ", context=CHUNKS))
    assert no_ref.error == "no reference to compare against" and blank_ref.error == no_ref.error
    assert no_question.error == "no question" and no_context.error == "no retrieved context"
    assert log == []


def test_one_unparseable_chunk_verdict_fails_the_item_with_its_raw_reply(tmp_path: Path) -> None:
    with scripted("precbad", precision_judge([], bad="Lyon")) as model:
        score = metric("context_precision", model, client(tmp_path))(
            EvalInput("Paris", inputs={"question": "Capital?"}, reference="Paris", context=CHUNKS)
        )
    assert score.error == "unparseable judgment" and score.raw == "Relevant, I think."
    assert score.reason == "chunk 2: the reply contains no JSON object"


# -- context recall -------------------------------------------------------------------------------------


def test_context_recall_is_attributable_reference_claims_over_claims(tmp_path: Path) -> None:
    log: list[ChatRequest] = []
    reference_claims = ["Paris is the capital of France.", "Paris is home of the Eiffel Tower."]
    with scripted("recall", judge(claims=reference_claims, supported=[True, False], log=log)) as model:
        ev = metric("context_recall", model, client(tmp_path))
        score = ev(ITEM)
        no_ref = ev(EvalInput("x", context=CONTEXT))
    assert score.value == 0.5
    assert score.reason.startswith("1/2 reference claims found in the context; missing:")
    assert "Eiffel" in score.reason and len(score.details["claims"]) == 2
    assert f"[Text]\n{ITEM.reference}" in user(log[0])  # the reference is split, not the answer
    assert no_ref.error == "no reference to compare against" and len(log) == 2


def test_a_reference_without_claims_cannot_be_measured(tmp_path: Path) -> None:
    with scripted("recallempty", judge(claims=[])) as model:
        score = metric("context_recall", model, client(tmp_path))(ITEM)
    assert score.error == "no claims in the reference" and score.value is None
    assert score.raw == '{"claims": []}'


# -- specs ----------------------------------------------------------------------------------------------


def test_rag_metrics_are_registered_and_their_specs_are_strict() -> None:
    kinds = builtin_registry().kinds()
    for kind in ("faithfulness", "answer_relevance", "context_precision", "context_recall"):
        assert kind in kinds
    ev = build_evaluator({"type": "faithfulness", "model": "scripted/x", "samples": 2, "threshold": 0.9})
    assert isinstance(ev, Faithfulness)
    assert build_evaluator(ev.spec()).version == ev.version
    assert ev.version != build_evaluator({**ev.spec(), "type": "context_recall"}).version
    assert "prompts" in ev.identity()
    with pytest.raises(InvalidInputError, match="unknown key\\(s\\) 'rubric'"):
        build_evaluator({"type": "faithfulness", "model": "scripted/x", "rubric": "be nice"})
    with pytest.raises(InvalidInputError, match="outside \\[0, 1\\]"):
        build_evaluator({"type": "context_precision", "model": "scripted/x", "threshold": 4})
    with pytest.raises(InvalidInputError, match="ENDPOINT/MODEL"):
        build_evaluator({"type": "answer_relevance", "model": "gpt"})
    with pytest.raises(InvalidInputError, match="needs a model client"):
        build_evaluator({"type": "faithfulness", "model": "scripted/x"})(ITEM)


def test_many_items_score_in_order(tmp_path: Path) -> None:
    def reply(request: ChatRequest) -> str:
        return '{"score": 5}' if "Paris" in user(request) else '{"score": 1}'

    with scripted("many", reply) as model:
        ev = metric("answer_relevance", model, client(tmp_path))
        scores = ev.run(
            [
                EvalInput("Paris", inputs={"question": "Capital?"}),
                EvalInput("Bananas", inputs={"question": "Capital?"}),
                EvalInput("Paris", inputs={}),
            ]
        )
    assert [s.value for s in scores] == [1.0, 0.0, None] and scores[2].error == "no question"


# -- the real local model -------------------------------------------------------------------------------


@pytest.mark.slow
def test_faithfulness_runs_end_to_end_with_the_real_local_model(tmp_path: Path) -> None:
    """SmolLM2-135M on CPU as the judge, on two items: each ends as a value in [0, 1] with per-claim
    verdicts, or as an error that keeps the model's raw reply (a 135M model often breaks the format)."""
    c = ModelClient(load_settings(start=tmp_path))  # HONED_MODEL_CACHE, when set, finds the converted model
    ev = metric("faithfulness", "local/smollm2-135m-instruct", c, max_tokens=48)
    items = [
        EvalInput(
            "Paris is the capital of France.", inputs={"question": "Capital of France?"}, context=CONTEXT
        ),
        EvalInput("The tower was finished in 1889.", inputs={"question": "When?"}, context=CONTEXT),
    ]
    scores: list[Score] = ev.run(items)
    assert len(scores) == 2
    for score in scores:
        assert score.reason
        if score.ok:
            assert score.value is not None and 0.0 <= score.value <= 1.0
            assert isinstance(score.details["claims"], list)
        else:
            assert score.error == "unparseable judgment" and score.raw, score
        assert score.details["judge_output_tokens"] > 0
