"""Query routing: the embedding router with the real packaged all-MiniLM-L6-v2 on a small shop assistant
(policy questions -> kb "policies", product questions -> kb "catalogue", chit-chat -> no retrieval), measured
on held-out queries with `evaluate_router`; the llm router's parsing, fallbacks and errors; config errors.

No chat model runs here, so the llm router talks to the scripted model (`honed.testing.scripted`, a fake
that replies what each test scripts) through a real `ModelClient` with a real SQLite response cache.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from honed.config import Settings
from honed.errors import InvalidInputError, ModelError, ProviderError, RateLimitError, UnknownModelError
from honed.evals.stats import wilson_interval
from honed.models.client import ModelClient
from honed.models.types import ChatRequest
from honed.rag.index.embedders import CachedEmbedder, build_embedder
from honed.rag.retrieve.routing import Route, Router, RouterConfig, evaluate_router, parse_route
from honed.rag.types import Embedder, Vectors
from honed.store import Store
from honed.testing import scripted

POLICIES = [
    "What is your return policy?",
    "Can I get a refund if the item arrived damaged?",
    "How long do I have to send something back?",
    "Do you charge for return shipping?",
    "How long does delivery take to Germany?",
    "Is there a warranty on the things you sell?",
    "Can I cancel my order after it has shipped?",
    "Which payment methods do you accept?",
]
CATALOGUE = [
    "How much RAM does the X200 laptop have?",
    "What is the battery life of the Aero headphones?",
    "Is the TrailRunner jacket waterproof?",
    "What are the dimensions of the Nordic oak desk?",
    "Does the Pixelcam 4 shoot 4K video?",
    "How many watts is the Breeze blender motor?",
    "Which colours does the Urban backpack come in?",
    "What screen size is the Vista monitor?",
]
CHITCHAT = [
    "Hi there!",
    "Thanks, that was helpful.",
    "How are you today?",
    "Good morning!",
    "Tell me a joke.",
    "You're great, thank you so much!",
    "Bye, have a nice day.",
    "Who are you?",
]
HELD_OUT = [
    ("I want my money back for a broken kettle, what do I do?", "policies"),
    ("Do you ship to Canada and how much does it cost?", "policies"),
    ("Can I exchange shoes that don't fit?", "policies"),
    ("Is my data shared with third parties?", "policies"),
    ("How long is the guarantee on electronics?", "policies"),
    ("What processor is in the X200?", "catalogue"),
    ("How heavy is the TrailRunner jacket?", "catalogue"),
    ("Does the Aero headset support noise cancelling?", "catalogue"),
    ("What's the maximum load of the oak desk?", "catalogue"),
    ("Is the Breeze blender dishwasher safe?", "catalogue"),
    ("Hello!", "chitchat"),
    ("Thank you!", "chitchat"),
    ("What's up?", "chitchat"),
    ("Nice talking to you, goodbye.", "chitchat"),
    ("Are you a robot?", "chitchat"),
]
OFF_TOPIC = [
    "What is the capital of Mongolia?",
    "Explain quantum entanglement.",
    "Write a haiku about autumn rain.",
    "Who won the 1998 World Cup?",
]


def shop(**overrides: Any) -> RouterConfig:
    return RouterConfig.model_validate(
        {
            "routes": [
                {
                    "name": "policies",
                    "kb": "policies",
                    "description": "shop policies: returns, refunds, shipping, warranty, payment, privacy",
                    "examples": POLICIES,
                },
                {
                    "name": "catalogue",
                    "kb": "catalogue",
                    "description": "product specifications and features",
                    "examples": CATALOGUE,
                },
                {"name": "chitchat", "kb": None, "examples": CHITCHAT},
            ],
            **overrides,
        }
    )


class Counting(Embedder):
    """The real embedder, recording each batch it is asked to embed."""

    def __init__(self, inner: Embedder) -> None:
        self.inner = inner
        self.calls: list[tuple[list[str], bool]] = []

    @property
    def dimension(self) -> int:
        return self.inner.dimension

    def identity(self) -> str:
        return self.inner.identity()

    def embed(self, texts: Sequence[str], *, query: bool = False) -> Vectors:
        self.calls.append((list(texts), query))
        return self.inner.embed(texts, query=query)


class Memo(Embedder):
    """The real embedder, each distinct text embedded once per module: many tests build routers over the
    same examples, and re-embedding them would only cost time."""

    def __init__(self, inner: Embedder) -> None:
        self.inner = inner
        self.vectors: dict[tuple[bool, str], np.ndarray] = {}

    @property
    def dimension(self) -> int:
        return self.inner.dimension

    def identity(self) -> str:
        return self.inner.identity()

    def embed(self, texts: Sequence[str], *, query: bool = False) -> Vectors:
        missing = list(dict.fromkeys(t for t in texts if (query, t) not in self.vectors))
        if missing:
            vectors = self.inner.embed(missing, query=query)
            self.vectors.update(((query, t), v) for t, v in zip(missing, vectors, strict=True))
        return np.stack([self.vectors[query, t] for t in texts]) if texts else self.inner.embed([])


@pytest.fixture(scope="module")
def minilm() -> Embedder:
    return Memo(build_embedder("local/all-MiniLM-L6-v2", Settings()))


@pytest.fixture
def embedder(minilm: Embedder) -> Counting:
    return Counting(minilm)


# -- embedding router -----------------------------------------------------------------------------------


@pytest.mark.slow
def test_embedding_router_sends_held_out_queries_to_the_right_knowledge_base(embedder: Counting) -> None:
    router = Router(shop(), embedder=embedder)
    report = evaluate_router(router, HELD_OUT)
    # Measured: 15 of 15 with all-MiniLM-L6-v2; the closest call ("Is my data shared with third
    # parties?", which no example mentions) still wins by about 0.05.
    assert report["accuracy"] >= 0.8, report["mistakes"]
    assert report["n"] == 15 and report["correct"] == round(report["accuracy"] * 15)
    assert report["labels"] == ["policies", "catalogue", "chitchat"]
    confusion = report["confusion"]
    assert sum(sum(row.values()) for row in confusion.values()) == 15
    assert sum(confusion[name][name] for name in report["labels"]) == report["correct"]
    assert all(sum(confusion[name].values()) == 5 for name in report["labels"])
    expected_ci = wilson_interval(report["correct"], 15)
    assert expected_ci is not None and report["ci"]["low"] == expected_ci.low
    assert report["ci"]["method"] == "Wilson score" and report["ci"]["confidence"] == 0.95
    assert report["fallbacks"] == 0

    decisions = router.route_many([q for q, _ in HELD_OUT])
    assert {d.kb for d, (_, label) in zip(decisions, HELD_OUT, strict=True) if label == "chitchat"} == {None}
    hello = router.route("Hello!")
    assert hello.route == "chitchat" and hello.kb is None and hello.fallback is False
    assert list(hello.scores) == ["policies", "catalogue", "chitchat"]
    assert hello.score == max(hello.scores.values()) == hello.scores["chitchat"]
    assert "'chitchat'" in hello.reason


@pytest.mark.slow
def test_a_routes_score_is_its_nearest_example_and_examples_are_embedded_once(embedder: Counting) -> None:
    router = Router(shop(), embedder=embedder)
    decision = router.route(CATALOGUE[5])  # an example itself: its route's nearest example is itself
    assert decision.route == "catalogue" and decision.score == pytest.approx(1.0, abs=1e-5)
    # The mean over the route's examples would be far lower than the nearest one.
    vectors = embedder.inner.embed(CATALOGUE, query=True)
    assert float(np.mean(vectors @ vectors[5])) < 0.6

    router.route_many(["Do you ship to Norway?", "Hello!"])
    router.route("What is your return policy?")
    batches = [texts for texts, _ in embedder.calls]
    examples = [b for b in batches if len(b) > 3]
    assert len(examples) == 1  # once, whatever number of queries follow
    # 24 examples plus the two routes' descriptions (chit-chat has none).
    assert (
        len(examples[0]) == 26
        and POLICIES[0] in examples[0]
        and "product specifications" in " ".join(examples[0])
    )
    assert batches[1:] == [
        [CATALOGUE[5]],
        ["Do you ship to Norway?", "Hello!"],
        ["What is your return policy?"],
    ]
    assert all(query for _, query in embedder.calls)  # examples and queries are all encoded as queries


@pytest.mark.slow
def test_ties_go_to_the_route_listed_first(minilm: Embedder) -> None:
    same = {"examples": ["Where is my parcel?"]}
    ab = RouterConfig.model_validate({"routes": [{"name": "a", **same}, {"name": "b", "kb": "x", **same}]})
    ba = RouterConfig.model_validate({"routes": [{"name": "b", "kb": "x", **same}, {"name": "a", **same}]})
    first = Router(ab, embedder=minilm).route("Has my order shipped?")
    assert first.route == "a" and first.scores["a"] == first.scores["b"]
    assert Router(ba, embedder=minilm).route("Has my order shipped?").route == "b"


@pytest.mark.slow
def test_a_query_below_the_threshold_falls_back_to_the_default(minilm: Embedder) -> None:
    # Measured: off-topic queries score at most about 0.23 against any route; these in-domain ones at
    # least 0.39 against their own.
    router = Router(shop(threshold=0.3, default="chitchat"), embedder=minilm)
    in_domain = [
        ("I want my money back for a broken kettle, what do I do?", "policies"),
        ("What processor is in the X200?", "catalogue"),
        ("Nice talking to you, goodbye.", "chitchat"),
    ]
    for decision, (query, label) in zip(router.route_many([q for q, _ in in_domain]), in_domain, strict=True):
        assert decision.route == label and decision.fallback is False, (query, decision)
    for decision in router.route_many(OFF_TOPIC):
        assert decision.route == "chitchat" and decision.kb is None and decision.fallback, decision
        assert "below the threshold 0.3" in decision.reason and "fell back to the default 'chitchat'" in (
            decision.reason
        )
        assert decision.score == decision.scores["chitchat"]
    report = evaluate_router(router, [(q, "chitchat") for q in OFF_TOPIC])
    assert report["accuracy"] == 1.0 and report["fallbacks"] == 4

    # The boundary itself: a best score just under the threshold falls back, just over does not.
    query = "How heavy is the TrailRunner jacket?"
    best = Router(shop(), embedder=minilm).route(query)
    assert best.route == "catalogue" and best.score is not None
    under = Router(shop(threshold=best.score + 1e-4, default="policies"), embedder=minilm).route(query)
    over = Router(shop(threshold=best.score - 1e-4, default="policies"), embedder=minilm).route(query)
    assert (under.route, under.kb, under.fallback) == ("policies", "policies", True)
    assert (over.route, over.fallback) == ("catalogue", False)


@pytest.mark.slow
def test_build_uses_the_configured_embedder_with_its_cache(tmp_path: Path) -> None:
    with Store.open(f"sqlite:///{tmp_path / 'honed.db'}") as store:
        first = Router.build(shop(), Settings(), store=store)
        assert isinstance(first.embedder, CachedEmbedder)
        assert first.route("Is the Vista monitor curved?").route == "catalogue"
        assert first.embedder.misses == 27 and first.embedder.hits == 0
        second = Router.build(shop(), Settings(), store=store)
        assert second.route("Is the Vista monitor curved?").route == "catalogue"
        assert isinstance(second.embedder, CachedEmbedder)
        assert second.embedder.hits == 27 and second.embedder.misses == 0


# -- llm router -----------------------------------------------------------------------------------------


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    with Store.open(f"sqlite:///{tmp_path / 'honed.db'}") as opened:
        yield opened


@pytest.fixture
def client(store: Store) -> ModelClient:
    settings = Settings.model_validate({"retry": {"base_delay_s": 0.01, "max_delay_s": 0.02}})
    return ModelClient(settings, store=store)


def recorder(asked: list[ChatRequest]) -> Callable[[ChatRequest], str]:
    """A script that records each request and always picks chit-chat."""

    def reply(request: ChatRequest) -> str:
        asked.append(request)
        return '{"route": "chitchat"}'

    return reply


def query_of(request: ChatRequest) -> str:
    return request.messages[-1]["content"].split("[Query]\n", 1)[1].split("\n\n", 1)[0]


def llm(model: str, **overrides: Any) -> RouterConfig:
    return shop(method="llm", model=model, **overrides)


def test_llm_router_asks_once_per_query_and_reads_the_route(client: ModelClient) -> None:
    prompts: list[ChatRequest] = []
    answers = {
        "Hello!": '{"route": "chitchat"}',
        "Is the X200 light?": '```json\n{"route": " Catalogue"}\n```',
    }

    def reply(request: ChatRequest) -> str:
        prompts.append(request)
        return answers[query_of(request)]

    with scripted("router", reply) as model:
        router = Router(llm(model), client=client)
        hello, x200 = router.route_many(["Hello!", "Is the X200 light?"])
        in_loop = asyncio.run(router.aroute_many(["Is the X200 light?"]))
    assert (hello.route, hello.kb, hello.score, hello.scores) == ("chitchat", None, None, {})
    assert (x200.route, x200.kb, x200.fallback) == ("catalogue", "catalogue", False)
    assert x200.reason == f"model {model} chose 'catalogue'"
    assert in_loop[0].route == "catalogue"
    assert len(prompts) == 2  # the repeated query was served from the response cache
    text = prompts[0].messages[-1]["content"]
    assert "- policies: shop policies: returns, refunds" in text and "- chitchat\n  e.g. Hi there!" in text
    assert CATALOGUE[4] in text and CATALOGUE[5] not in text  # a few examples per route, not all
    assert prompts[0].params.temperature == 0.0


@pytest.mark.parametrize(
    ("reply", "why"),
    [
        ('{"route": "weather"}', "'weather' is not a route"),
        ("I would say policies.", "the reply contains no JSON object"),
        ('{"route": ["policies"]}', "'route' is ['policies'], not a route name"),
        ('{"kb": "policies"}', "'route' is None, not a route name"),
    ],
)
def test_a_reply_naming_no_route_is_an_error_quoting_it_or_the_default(
    client: ModelClient, reply: str, why: str
) -> None:
    with scripted("bad-router", [reply]) as model:
        with pytest.raises(ModelError, match="router model scripted/bad-router replied") as raised:
            Router(llm(model), client=client).route("Where is my parcel?")
        fallback = Router(llm(model, default="chitchat"), client=client).route("Where is my parcel?")
    message = raised.value.one_line()
    assert "\n" not in message and repr(reply) in message and why in message
    assert "the routes are policies, catalogue, chitchat" in message and "set `default`" in message
    assert (fallback.route, fallback.kb, fallback.fallback) == ("chitchat", None, True)
    assert (
        repr(reply) in fallback.reason
        and why in fallback.reason
        and "fell back to 'chitchat'" in (fallback.reason)
    )


def test_a_long_reply_is_quoted_on_one_line_and_cut(client: ModelClient) -> None:
    reply = "Let me think.\n" + "Hmm. " * 200
    with scripted("rambler", [reply]) as model, pytest.raises(ModelError) as raised:
        Router(llm(model), client=client).route("Hello!")
    assert "\n" not in raised.value.one_line() and len(raised.value.message) < 400


def test_a_failed_call_is_retried_and_never_read_as_a_fallback(client: ModelClient) -> None:
    throttled = RateLimitError("slow down", provider="scripted", status=429, retryable=True, retry_after=0.01)
    with scripted("busy", [throttled, '{"route": "policies"}']) as model:
        assert Router(llm(model, default="chitchat"), client=client).route("Refunds?").route == "policies"
    refused = ProviderError("server said no", provider="scripted", status=400)
    with scripted("down", [refused]) as model, pytest.raises(ProviderError, match="server said no"):
        Router(llm(model, default="chitchat"), client=client).route("Refunds?")


def test_queries_must_be_text_and_nothing_is_asked_for_a_rejected_batch(client: ModelClient) -> None:
    asked: list[ChatRequest] = []
    with scripted("picky", recorder(asked)) as model:
        router = Router(llm(model), client=client)
        assert router.route_many([]) == []
        with pytest.raises(InvalidInputError, match="query 1 is '  ': a router needs non-empty text"):
            router.route_many(["Hello!", "  "])
        with pytest.raises(InvalidInputError, match="not one string"):
            router.route_many("Hello!")
        with pytest.raises(InvalidInputError, match="query 0 is None"):
            asyncio.run(router.aroute_many([None]))  # type: ignore[list-item]
    assert asked == []


@pytest.mark.parametrize(
    ("reply", "route"),
    [
        ('{"route": "policies"}', "policies"),
        ('Sure: {"route": "CHITCHAT", "why": "a greeting"}', "chitchat"),
        ('{"route": "catalogue "}', "catalogue"),
    ],
)
def test_parse_route(reply: str, route: str) -> None:
    assert parse_route(reply, ["policies", "catalogue", "chitchat"]) == route


def test_parse_route_does_not_guess_between_names_that_differ_only_in_case() -> None:
    with pytest.raises(ValueError, match="'Faq' is not a route"):
        parse_route('{"route": "Faq"}', ["faq", "FAQ"])
    assert parse_route('{"route": "FAQ"}', ["faq", "FAQ"]) == "FAQ"


# -- evaluation -----------------------------------------------------------------------------------------


def test_evaluate_router_counts_a_confusion_matrix_and_lists_mistakes(client: ModelClient) -> None:
    answers = {"Refunds?": "policies", "Hi!": "chitchat", "RAM of the X200?": "policies", "Yo": "nonsense"}

    def reply(request: ChatRequest) -> str:
        return json.dumps({"route": answers[query_of(request)]})

    labelled = [
        ("Refunds?", "policies"),
        ("Hi!", "chitchat"),
        ("RAM of the X200?", "catalogue"),
        ("Yo", "chitchat"),
    ]
    with scripted("judge", reply) as model:
        report = evaluate_router(Router(llm(model, default="chitchat"), client=client), labelled)
    assert report["n"] == 4 and report["correct"] == 3 and report["accuracy"] == 0.75
    ci = wilson_interval(3, 4)
    assert ci is not None and report["ci"] == ci.to_dict()
    assert report["confusion"] == {
        "policies": {"policies": 1, "catalogue": 0, "chitchat": 0},
        "catalogue": {"policies": 1, "catalogue": 0, "chitchat": 0},
        "chitchat": {"policies": 0, "catalogue": 0, "chitchat": 2},
    }
    assert report["fallbacks"] == 1
    [mistake] = report["mistakes"]
    assert mistake["query"] == "RAM of the X200?" and mistake["expected"] == "catalogue"
    assert mistake["predicted"] == "policies" and "chose 'policies'" in mistake["reason"]


def test_evaluate_router_rejects_labels_it_cannot_score(client: ModelClient) -> None:
    asked: list[ChatRequest] = []
    with scripted("labels", recorder(asked)) as model:
        check_labels(Router(llm(model), client=client))
    assert asked == []


def check_labels(router: Router) -> None:
    with pytest.raises(InvalidInputError, match="needs labelled queries"):
        evaluate_router(router, [])
    with pytest.raises(InvalidInputError, match="labelled\\[1\\] expects route 'weather'") as raised:
        evaluate_router(router, [("Hello!", "chitchat"), ("Rain today?", "weather")])
    assert "the routes are policies, catalogue, chitchat" in (raised.value.hint or "")
    with pytest.raises(InvalidInputError, match="labelled\\[0\\] is 'Hello!', not a \\(query, route\\) pair"):
        evaluate_router(router, ["Hello!"])  # type: ignore[list-item]


# -- configuration --------------------------------------------------------------------------------------

A = {"name": "a", "kb": "docs", "examples": ["x"]}
B = {"name": "b", "examples": ["y"]}


@pytest.mark.parametrize(
    ("config", "message"),
    [
        ({"routes": [A]}, "router config: routes: List should have at least 2 items"),
        ({"routes": [A, A]}, "router config: route names must be unique; repeated: a"),
        (
            {"routes": [A, {"name": "b c", "examples": ["y"]}]},
            "route 'b c': name: must be 1-64 letters, digits",
        ),
        ({"routes": [A, {**B, "examples": ["ok", " "]}]}, "route 'b': examples\\[1\\] is empty"),
        ({"routes": [A, {**B, "kb": ""}]}, "route 'b': kb: String should have at least 1 character"),
        ({"routes": [A, {**B, "knowledge": "x"}]}, "route 'b': unknown key 'knowledge'"),
        (
            {"routes": [A, {"name": "b", "kb": None}]},
            "route\\(s\\) 'b' have no examples or description to embed",
        ),
        ({"routes": [A, B], "threshold": 0.4}, "threshold needs a default route to fall back to"),
        (
            {"routes": [A, B], "threshold": 1.5, "default": "a"},
            "threshold: Input should be less than or equal to 1",
        ),
        ({"routes": [A, B], "default": "c"}, "default 'c' is not a route \\(routes: a, b\\)"),
        ({"routes": [A, B], "method": "bm25"}, "method: Input should be 'embedding' or 'llm'"),
        ({"routes": [A, B], "method": "llm"}, "method 'llm' needs model"),
        ({"routes": [A, B], "model": "openai/gpt-4o-mini"}, "model is for method 'llm'"),
        (
            {"routes": [A, B], "method": "llm", "model": "x/y", "threshold": 0.5, "default": "a"},
            "threshold is for method 'embedding'",
        ),
        ({"routes": [A, B], "treshold": 0.5}, "router config: unknown key 'treshold'"),
    ],
)
def test_config_errors_name_the_field(config: dict[str, Any], message: str) -> None:
    with pytest.raises(InvalidInputError, match=message) as raised:
        RouterConfig.model_validate(config)
    assert "\n" not in raised.value.one_line() and raised.value.hint


def test_valid_configs_and_what_a_router_needs(client: ModelClient) -> None:
    bare = RouterConfig.model_validate(
        {
            "routes": [{"name": "a", "description": "anything about a"}, {"name": "b", "kb": "kb-b"}],
            "method": "llm",
            "model": "scripted/x",
        }
    )
    assert bare.routes[1] == Route(name="b", kb="kb-b") and bare.embedder == "local/all-MiniLM-L6-v2"
    assert RouterConfig.model_validate(bare.model_dump()) == bare
    with pytest.raises(InvalidInputError, match="needs a model client"):
        Router(bare)
    with pytest.raises(InvalidInputError, match="needs an embedder"):
        Router(shop())
    with pytest.raises(UnknownModelError, match="not of the form ENDPOINT/MODEL"):
        Router(shop(method="llm", model="gpt-4o"), client=client)
    with pytest.raises(InvalidInputError, match=r"route 'xxxx.*\.\.\.: name: must be 1-64 letters") as raised:
        Route(name="x" * 65)
    assert len(raised.value.message) < 250
