"""Query routing: decide, before retrieving, whether a query needs a knowledge base and which one.

A `Router` holds named `Route`s, each pointing at a knowledge base (`kb`) or at none (answer without
retrieval), and picks one route per query:

- `embedding` (the default): every route's example queries, and its description when it has one, are
  embedded once; a query's score for a route is its cosine similarity to that route's nearest example, and
  the best-scoring route wins (ties go to the route listed first). Nearest example rather than the mean of
  the examples, because a route such as "chit-chat" covers several unrelated kinds of query whose mean
  vector resembles none of them. With `threshold`, a best score below it routes to `default` instead: the
  examples do not cover the query, so the router says so rather than pretending.
- `llm`: one model call per query, through the `ModelClient` (cached, retried, costed), asks the model to
  pick one route name from the list with its description and a few examples, as `{"route": "..."}`. A
  reply that names no route goes to `default` when there is one (the decision's `reason` says so) and is
  otherwise a `ModelError` quoting the reply: a router never guesses silently.

`evaluate_router` measures a router on labelled queries (accuracy with a Wilson interval and a confusion
matrix), so it can be compared and tuned like any other part of a pipeline.
"""

from __future__ import annotations

import asyncio
import re
import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal, TypeVar

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from honed.errors import HonedError, InvalidInputError, ModelError
from honed.evals.evaluators.judging import extract_json_object
from honed.evals.stats import wilson_interval
from honed.models.registry import ModelRef
from honed.models.types import ChatRequest, Completion, Params
from honed.rag.index.embedders.registry import DEFAULT_EMBEDDER

if TYPE_CHECKING:
    from honed.config import Settings
    from honed.models.client import ModelClient
    from honed.rag.types import Embedder, Vectors
    from honed.store import Store

__all__ = ["Route", "RouteDecision", "Router", "RouterConfig", "evaluate_router"]

M = TypeVar("M")

_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")
#: Examples of each route shown to the llm router: enough to show the route's scope, few enough that a
#: prompt over many routes stays short.
_LLM_EXAMPLES = 5
#: How much of a reply an error message quotes.
_QUOTE = 200


def _quote(value: object, limit: int = _QUOTE) -> str:
    """`repr(value)` cut to about `limit` characters: one line, however long the value."""
    text = repr(value)
    return text if len(text) <= limit else text[:limit] + "..."


def _validated(handler: Callable[[Any], M], data: Any, where: str, hint: str) -> M:
    """`handler(data)` (pydantic's own validation), its first error raised as one InvalidInputError that
    names `where` and the field, in place of pydantic's multi-line report."""
    try:
        return handler(data)
    except ValidationError as exc:
        raise _validation_error(exc, where, hint) from None


def _validation_error(exc: ValidationError, where: str, hint: str) -> InvalidInputError:
    err = exc.errors()[0]
    loc = ".".join(str(p) for p in err["loc"])
    if err["type"] == "extra_forbidden":
        return InvalidInputError(f"{where}: unknown key {loc!r}", hint=hint)
    reason = str(err["msg"]).removeprefix("Value error, ")
    at = f"{loc}: " if loc else ""
    got = f" (got {_quote(err['input'], 80)})" if loc and "input" in err else ""
    return InvalidInputError(f"{where}: {at}{reason}{got}", hint=hint)


class Route(BaseModel):
    """One destination: `kb` is the knowledge base to search, or None to answer without retrieval.
    `examples` are queries that belong here; `description` says in words what does."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    name: str
    kb: str | None = Field(default=None, min_length=1)
    description: str = ""
    examples: list[str] = Field(default_factory=list)

    @field_validator("name")
    @classmethod
    def _simple_name(cls, name: str) -> str:
        if not _NAME.fullmatch(name):
            raise ValueError("must be 1-64 letters, digits, '.', '_' or '-', starting with a letter or digit")
        return name

    @model_validator(mode="after")
    def _no_blank_examples(self) -> Route:
        for i, example in enumerate(self.examples):
            if not example.strip():
                raise ValueError(f"examples[{i}] is empty")
        return self

    @model_validator(mode="wrap")
    @classmethod
    def _as_honed_error(cls, data: Any, handler: Callable[[Any], Route]) -> Route:
        name = data.get("name") if isinstance(data, Mapping) else None
        return _validated(
            handler,
            data,
            f"route {_quote(name, 40)}" if isinstance(name, str) else "route",
            "a route has name (letters, digits, . _ -), kb (or null for no retrieval), "
            "description and examples",
        )


class RouterConfig(BaseModel):
    """Which routes there are and how to choose between them.

    `threshold` (embedding only): a best score below it routes to `default`. `default`: the route taken
    when the embedding scores fall short or the llm's reply names no route. `model`: the llm router's
    model. `embedder`: the embedding router's embedder reference."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    routes: list[Route] = Field(min_length=2)
    method: Literal["embedding", "llm"] = "embedding"
    threshold: float | None = Field(default=None, ge=-1.0, le=1.0)
    default: str | None = None
    model: str | None = None
    embedder: str = Field(default=DEFAULT_EMBEDDER, min_length=1)

    @model_validator(mode="after")
    def _consistent(self) -> RouterConfig:
        names = [r.name for r in self.routes]
        duplicates = sorted({n for n in names if names.count(n) > 1})
        if duplicates:
            raise ValueError(f"route names must be unique; repeated: {', '.join(duplicates)}")
        if self.default is not None and self.default not in names:
            raise ValueError(f"default {self.default!r} is not a route (routes: {', '.join(names)})")
        if self.method == "embedding":
            if self.model is not None:
                raise ValueError("model is for method 'llm'; the embedding router uses `embedder`")
            bare = [r.name for r in self.routes if not r.examples and not r.description.strip()]
            if bare:
                raise ValueError(
                    f"route(s) {', '.join(map(repr, bare))} have no examples or description to embed"
                )
            if self.threshold is not None and self.default is None:
                raise ValueError("threshold needs a default route to fall back to")
        else:
            if self.model is None:
                raise ValueError("method 'llm' needs model (e.g. openai/gpt-4o-mini)")
            if self.threshold is not None:
                raise ValueError("threshold is for method 'embedding' (the llm router has no scores)")
        return self

    @model_validator(mode="wrap")
    @classmethod
    def _as_honed_error(cls, data: Any, handler: Callable[[Any], RouterConfig]) -> RouterConfig:
        return _validated(
            handler,
            data,
            "router config",
            "it has routes (two or more), method (embedding or llm), threshold, default, model, embedder",
        )

    def route(self, name: str) -> Route:
        return next(r for r in self.routes if r.name == name)


@dataclass(frozen=True, slots=True)
class RouteDecision:
    """Where one query goes. `score` is the chosen route's similarity and `scores` every route's (embedding;
    None and empty for llm); `fallback` is True when `default` was taken because nothing else fitted;
    `reason` says why in words."""

    route: str
    kb: str | None
    score: float | None
    scores: dict[str, float]
    reason: str
    fallback: bool = False

    def to_dict(self) -> dict[str, Any]:
        return {
            "route": self.route,
            "kb": self.kb,
            "score": self.score,
            "scores": dict(self.scores),
            "reason": self.reason,
            "fallback": self.fallback,
        }


# -- llm prompt -----------------------------------------------------------------------------------------

SYSTEM = (
    "You route a user's query to the one route that should handle it. "
    "Reply with one JSON object and nothing else."
)


def routing_prompt(routes: Sequence[Route], query: str) -> str:
    lines = []
    for r in routes:
        line = f"- {r.name}"
        if r.description.strip():
            line += f": {r.description.strip()}"
        if r.examples:
            line += "\n  e.g. " + " | ".join(r.examples[:_LLM_EXAMPLES])
        lines.append(line)
    return (
        "[Routes]\n" + "\n".join(lines) + f"\n\n[Query]\n{query}\n\n"
        "Which route should handle the query? Answer with exactly one route name from the list.\n"
        'Reply with JSON only: {"route": "<name>"}'
    )


def parse_route(text: str, names: Sequence[str]) -> str:
    """The route name a reply picks; ValueError says why there is none. Whitespace and case are forgiven
    when that leaves exactly one name; anything else is not read as a choice."""
    obj = extract_json_object(text)
    if obj is None:
        raise ValueError("the reply contains no JSON object")
    raw = obj.get("route")
    if not isinstance(raw, str):
        raise ValueError(f"'route' is {raw!r}, not a route name")
    picked = raw.strip()
    if picked in names:
        return picked
    folded = [n for n in names if n.casefold() == picked.casefold()]
    if len(folded) == 1:
        return folded[0]
    raise ValueError(f"{_quote(raw, 80)} is not a route")


# -- the router -----------------------------------------------------------------------------------------


class Router:
    """Routes queries as `config` says. The embedding router needs `embedder`, the llm router `client`;
    `Router.build` makes either from the workspace's settings."""

    def __init__(
        self, config: RouterConfig, *, embedder: Embedder | None = None, client: ModelClient | None = None
    ) -> None:
        if config.method == "embedding" and embedder is None:
            raise InvalidInputError(
                "the embedding router needs an embedder",
                hint="pass embedder=..., or build the router with Router.build(config, settings)",
            )
        if config.method == "llm":
            if client is None:
                raise InvalidInputError(
                    "the llm router needs a model client",
                    hint="pass the workspace's ModelClient as client=...",
                )
            assert config.model is not None
            ModelRef.parse(config.model)
        self.config = config
        self.embedder = embedder
        self.client = client
        self.names = [r.name for r in config.routes]
        self._kb = {r.name: r.kb for r in config.routes}
        self.params = Params(temperature=0.0, max_tokens=64)
        self._examples: Vectors | None = None
        self._owner: np.ndarray[Any, np.dtype[np.intp]] | None = None
        self._lock = threading.Lock()

    @classmethod
    def build(
        cls,
        config: RouterConfig,
        settings: Settings,
        *,
        store: Store | None = None,
        client: ModelClient | None = None,
    ) -> Router:
        """A router whose embedder is `config.embedder` (its vectors cached in `store` when given) or whose
        model calls go through `client`."""
        if config.method == "llm":
            return cls(config, client=client)
        from honed.rag.index.embedders import CachedEmbedder, build_embedder

        return cls(config, embedder=CachedEmbedder(build_embedder(config.embedder, settings), store))

    # -- embedding ------------------------------------------------------------------------------------

    def _example_vectors(self) -> tuple[Vectors, np.ndarray[Any, np.dtype[np.intp]]]:
        with self._lock:
            if self._examples is None or self._owner is None:
                texts: list[str] = []
                owner: list[int] = []
                for i, r in enumerate(self.config.routes):
                    items = [*r.examples, r.description] if r.description.strip() else list(r.examples)
                    texts.extend(items)
                    owner.extend([i] * len(items))
                assert self.embedder is not None
                # Examples are queries, so they are encoded as queries: an asymmetric model compares a
                # query with other queries in the same space.
                self._examples = self.embedder.embed(texts, query=True)
                self._owner = np.asarray(owner, dtype=np.intp)
            return self._examples, self._owner

    def _by_embedding(self, queries: Sequence[str]) -> list[RouteDecision]:
        examples, owner = self._example_vectors()
        assert self.embedder is not None
        similarity = self.embedder.embed(list(queries), query=True) @ examples.T
        n_routes = len(self.config.routes)
        best = np.full((len(queries), n_routes), -np.inf, dtype=np.float64)
        np.maximum.at(best.T, owner, similarity.T.astype(np.float64))
        out = []
        for row in best:
            scores = {name: float(s) for name, s in zip(self.names, row, strict=True)}
            top = int(np.argmax(row))  # the first of equal maxima: ties go to the route listed first
            name, score = self.names[top], float(row[top])
            threshold, default = self.config.threshold, self.config.default
            if threshold is not None and default is not None and score < threshold:
                reason = (
                    f"best route {name!r} scored {score:.3f}, below the threshold {threshold:g}; "
                    f"fell back to the default {default!r}"
                )
                out.append(self._decision(default, scores[default], scores, reason, fallback=True))
            else:
                reason = f"nearest examples are {name!r}'s ({score:.3f})"
                out.append(self._decision(name, score, scores, reason))
        return out

    def _decision(
        self, name: str, score: float | None, scores: dict[str, float], reason: str, *, fallback: bool = False
    ) -> RouteDecision:
        return RouteDecision(name, self._kb[name], score, scores, reason, fallback)

    # -- llm ------------------------------------------------------------------------------------------

    def _requests(self, queries: Sequence[str]) -> list[ChatRequest]:
        assert self.config.model is not None
        return [
            ChatRequest(
                self.config.model,
                (
                    {"role": "system", "content": SYSTEM},
                    {"role": "user", "content": routing_prompt(self.config.routes, q)},
                ),
                self.params,
            )
            for q in queries
        ]

    def _read(self, results: Sequence[Completion | HonedError]) -> list[RouteDecision]:
        out = []
        for result in results:
            if isinstance(result, HonedError):
                # A failed call is not a reply naming no route: falling back would hide an outage.
                raise result
            try:
                name = parse_route(result.text, self.names)
            except ValueError as exc:
                default = self.config.default
                if default is None:
                    raise ModelError(
                        f"router model {self.config.model} replied {_quote(result.text)}: {exc}",
                        hint=f"the routes are {', '.join(self.names)}; "
                        "set `default` to fall back to a route instead",
                    ) from None
                reason = f"model reply {_quote(result.text)} names no route ({exc}); fell back to {default!r}"
                out.append(self._decision(default, None, {}, reason, fallback=True))
                continue
            out.append(self._decision(name, None, {}, f"model {self.config.model} chose {name!r}"))
        return out

    # -- public ---------------------------------------------------------------------------------------

    def route(self, query: str) -> RouteDecision:
        """The route for one query."""
        return self.route_many([query])[0]

    def route_many(self, queries: Sequence[str]) -> list[RouteDecision]:
        """The route for each query, in order: one embedding batch, or all model calls at once. Not from
        inside a running event loop with the llm router (use `aroute_many` there)."""
        _check_queries(queries)
        if not queries:
            return []
        if self.config.method == "embedding":
            return self._by_embedding(queries)
        assert self.client is not None
        return self._read(self.client.run(self._requests(queries)))

    async def aroute_many(self, queries: Sequence[str]) -> list[RouteDecision]:
        """`route_many` from inside an event loop."""
        _check_queries(queries)
        if not queries:
            return []
        if self.config.method == "embedding":
            return await asyncio.to_thread(self._by_embedding, queries)
        assert self.client is not None
        return self._read(await self.client.complete_many(self._requests(queries)))


def _check_queries(queries: Sequence[str]) -> None:
    if isinstance(queries, str):
        raise InvalidInputError("route_many takes a list of queries, not one string", hint="use route(query)")
    for i, q in enumerate(queries):
        if not isinstance(q, str) or not q.strip():
            raise InvalidInputError(
                f"query {i} is {q!r}: a router needs non-empty text", hint="skip empty queries before routing"
            )


# -- evaluation -----------------------------------------------------------------------------------------


def evaluate_router(router: Router, labelled: Sequence[tuple[str, str]]) -> dict[str, Any]:
    """How often `router` sends each (query, expected route) where it belongs.

    Returns `n`, `correct`, `accuracy` with its Wilson 95% interval (`ci`: low, high, confidence, method),
    `labels` (the route names in config order), `confusion[expected][predicted]` counts over every pair of
    routes, `fallbacks` (decisions that took the default for want of a match) and `mistakes` (query,
    expected, predicted, reason) to read."""
    if not labelled:
        raise InvalidInputError(
            "evaluate_router needs labelled queries", hint="pass (query, expected route name) pairs"
        )
    names = router.names
    for i, pair in enumerate(labelled):
        if not (isinstance(pair, tuple | list) and len(pair) == 2):
            raise InvalidInputError(
                f"labelled[{i}] is {pair!r}, not a (query, route) pair", hint="e.g. ('Hi!', 'chitchat')"
            )
        if pair[1] not in names:
            raise InvalidInputError(
                f"labelled[{i}] expects route {pair[1]!r}, which the router does not have",
                hint=f"the routes are {', '.join(names)}",
            )
    decisions = router.route_many([q for q, _ in labelled])
    confusion = {expected: dict.fromkeys(names, 0) for expected in names}
    mistakes = []
    for (query, expected), decision in zip(labelled, decisions, strict=True):
        confusion[expected][decision.route] += 1
        if decision.route != expected:
            mistakes.append(
                {"query": query, "expected": expected, "predicted": decision.route, "reason": decision.reason}
            )
    n = len(labelled)
    correct = n - len(mistakes)
    interval = wilson_interval(correct, n)
    assert interval is not None  # n > 0
    return {
        "n": n,
        "correct": correct,
        "accuracy": correct / n,
        "ci": interval.to_dict(),
        "labels": list(names),
        "confusion": confusion,
        "fallbacks": sum(d.fallback for d in decisions),
        "mistakes": mistakes,
    }
