"""End-to-end RAG metrics judged by a model: faithfulness, answer relevance, context precision and recall.

The definitions follow RAGAS (Es et al., 2023); every judge reply must be JSON, and every verdict is kept:

- `faithfulness`: one call splits the answer into atomic claims, one call judges all of them against the
  retrieved context; value = supported claims / claims. An answer with no claims (empty, a refusal,
  "I don't know") scores 1.0, saying so: it states nothing the context fails to support. Faithfulness is
  not helpfulness; `answer_relevance` is what marks an evasive answer down.
- `answer_relevance`: one 1-5 rating of how directly the answer addresses the question (correctness
  aside), normalised to (score - 1) / 4. Not RAGAS's variant (generate questions from the answer and embed
  them): that needs an embedder too, and with small judges the generated questions are mostly noise.
- `context_precision`: one call per retrieved chunk, in rank order: is it useful for reaching the reference
  answer to the question? value = average precision of those verdicts (the mean of precision@k over the
  ranks k of relevant chunks); 0 when none is relevant or nothing was retrieved.
- `context_recall`: one call splits the reference answer into claims, one judges each attributable to the
  context or not; value = attributable / claims. A reference with no claims cannot be measured: an error.

Each case's chunks come from `EvalInput.context` (chunk texts in rank order, filled where retrieval runs),
the question from `inputs[question_field]` ("question" by default), the reference answer from `reference`
(of a list of acceptable answers, the first). What a metric needs and the case lacks is an error score that
names it, never a 0. `context=None` means retrieval was not wired in (an error); `context=[]` means it
returned nothing, which is measured: no claim is supported, precision is 0.

Like the other judges, calls go through the workspace's `ModelClient` (cached, costed, concurrent);
temperature is 0 for one sample and 0.7 for several; `samples: N` runs a whole metric N times (each call
with its own `sample_index`) and reports the mean of the runs that parsed with their spread. A reply that
does not parse, or judges fewer claims than it was given, fails the run with the raw reply kept.
"""

from __future__ import annotations

import asyncio
import json
import statistics
from abc import abstractmethod
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar, TypeVar

from honed.errors import HonedError, InvalidInputError
from honed.evals.evaluators.base import NO_REFERENCE, EvalInput, Score, passed_at
from honed.evals.evaluators.judging import CALL_FAILED, UNPARSEABLE, JudgeBase, call_cost, extract_json_object
from honed.evals.evaluators.scale import Scale
from honed.hashing import content_hash
from honed.models.types import Completion

T = TypeVar("T")

NO_CONTEXT = "no retrieved context"
NO_QUESTION = "no question"

SPLIT_SYSTEM = (
    "You break a text into the factual claims it makes. Reply with one JSON object and nothing else."
)
CHECK_SYSTEM = (
    "You check claims against retrieved passages. Judge only from the passages, never from what you know "
    "yourself. Reply with one JSON object and nothing else."
)
RELEVANCE_SYSTEM = (
    "You are a careful, impartial evaluator of whether an answer addresses the question asked. "
    "Reply with one JSON object and nothing else."
)
PRECISION_SYSTEM = (
    "You judge whether a retrieved passage helps answer a question. Reply with one JSON object and nothing "
    "else."
)

_RELEVANCE_SCALE = Scale(1, 5)
_TRUE = frozenset({"true", "yes", "y", "supported", "relevant", "attributable"})
_FALSE = frozenset({"false", "no", "n", "unsupported", "not supported", "irrelevant", "not relevant"})


def split_prompt(text: str, question: str | None) -> str:
    asked = f"[Question]\n{question}\n\n" if question else ""
    return (
        f"{asked}[Text]\n{text}\n\n"
        "List the factual claims the text makes, each as one short sentence that stands on its own: replace "
        "pronouns with what they refer to, and use the question to complete a bare answer such as 'yes' or a "
        "name. Leave out greetings, hedges and questions. If the text makes no claim, give an empty list.\n"
        'Reply with JSON only: {"claims": ["<claim>", ...]}'
    )


def check_prompt(context: Sequence[str], claims: Sequence[str]) -> str:
    passages = "\n\n".join(f"[{i}] {chunk}" for i, chunk in enumerate(context, 1))
    listed = "\n".join(f"{i}. {claim}" for i, claim in enumerate(claims, 1))
    return (
        f"[Passages]\n{passages}\n\n[Claims]\n{listed}\n\n"
        "For each claim, decide whether the passages support it: they state it, or it follows directly from "
        "what they state. A claim the passages do not mention is not supported, even if it is true.\n"
        'Reply with JSON only: {"verdicts": [{"claim": <number>, "supported": true or false, '
        '"reason": "<a few words>"}, ...]}, one verdict per claim, in order.'
    )


def relevance_prompt(question: str, answer: str) -> str:
    return (
        f"[Question]\n{question}\n\n[Answer]\n{answer}\n\n"
        "Rate how well the answer addresses the question, leaving aside whether it is factually correct:\n"
        "5 = answers exactly what was asked, directly and completely\n"
        "4 = answers it, with small gaps or some material that was not asked for\n"
        "3 = answers it only partly or vaguely\n"
        "2 = mostly about something else; touches the question in passing\n"
        "1 = does not address the question (off topic, a refusal or an evasion)\n"
        'Reply with JSON only: {"reasoning": "<one sentence>", "score": <1-5>}'
    )


def precision_prompt(question: str, reference: str, chunk: str) -> str:
    return (
        f"[Question]\n{question}\n\n[Reference answer]\n{reference}\n\n[Passage]\n{chunk}\n\n"
        "Is this passage useful for answering the question: does it contain information that states or "
        "leads to the reference answer?\n"
        'Reply with JSON only: {"reasoning": "<one sentence>", "relevant": true or false}'
    )


# Part of every RAG metric's version, so editing a prompt makes results from before and after distinct.
PROMPTS_VERSION = content_hash(
    [
        SPLIT_SYSTEM,
        CHECK_SYSTEM,
        RELEVANCE_SYSTEM,
        PRECISION_SYSTEM,
        split_prompt("{text}", "{question}"),
        check_prompt(["{chunk}"], ["{claim}"]),
        relevance_prompt("{question}", "{answer}"),
        precision_prompt("{question}", "{reference}", "{chunk}"),
    ]
)


# -- parsing --------------------------------------------------------------------------------------------


def _truth(raw: Any) -> bool | None:
    if isinstance(raw, bool):
        return raw
    if isinstance(raw, str):
        word = raw.strip().lower()
        return True if word in _TRUE else False if word in _FALSE else None
    return None


def _text(raw: Any) -> str:
    return raw if isinstance(raw, str) else "" if raw is None else str(raw)


def parse_claims(text: str) -> list[str]:
    """The claims in a splitter's reply (`{"claims": [...]}`); ValueError says why it cannot be used."""
    obj = extract_json_object(text)
    if obj is None:
        raise ValueError("the reply contains no JSON object")
    claims = obj.get("claims")
    if not isinstance(claims, list):
        raise ValueError("the reply's JSON has no 'claims' list")
    # Small judges often wrap each claim in an object; {"claim": "..."} is unambiguous, so it is taken too.
    texts = [c.get("claim") if isinstance(c, dict) else c for c in claims]
    if not all(isinstance(t, str) for t in texts):
        raise ValueError('\'claims\' must list strings (or {"claim": "..."} objects)')
    return [t.strip() for t in texts if isinstance(t, str) and t.strip()]


def _claim_number(raw: Any, n: int) -> int | None:
    if isinstance(raw, int) and not isinstance(raw, bool):
        number = raw
    elif isinstance(raw, str) and raw.strip().isdigit():
        number = int(raw.strip())
    else:
        return None
    return number if 1 <= number <= n else None


def parse_verdicts(text: str, n: int) -> list[tuple[bool, str]]:
    """(supported, reason) for each of `n` claims, in order, from a checker's reply. Verdicts are matched
    by their `claim` number when every verdict has a valid one, else by position; a reply that leaves a
    claim unjudged (or judges one twice) is a ValueError, never a silently smaller denominator."""
    obj = extract_json_object(text)
    if obj is None:
        raise ValueError("the reply contains no JSON object")
    entries = obj.get("verdicts")
    if not isinstance(entries, list) or not all(isinstance(e, dict) for e in entries):
        raise ValueError("the reply's JSON has no 'verdicts' list of objects")
    numbers = [_claim_number(e.get("claim"), n) for e in entries]
    if any(k is None for k in numbers):
        if len(entries) != n:
            raise ValueError(f"the reply has {len(entries)} verdicts for {n} claims")
        numbers = list(range(1, n + 1))
    found: dict[int, tuple[bool, str]] = {}
    for number, entry in zip(numbers, entries, strict=True):
        assert number is not None
        if number in found:
            raise ValueError(f"claim {number} is judged twice")
        verdict = _truth(entry.get("supported"))
        if verdict is None:
            raise ValueError(f"claim {number}: 'supported' is {entry.get('supported')!r}, not true or false")
        found[number] = (verdict, _text(entry.get("reason")))
    missing = [k for k in range(1, n + 1) if k not in found]
    if missing:
        raise ValueError(f"the reply judged {len(found)} of {n} claims (no verdict for {missing})")
    return [found[k] for k in range(1, n + 1)]


def parse_rating(text: str) -> tuple[float, str]:
    """(1-5 score, reasoning) from an answer-relevance reply."""
    obj = extract_json_object(text)
    if obj is None:
        raise ValueError("the reply contains no JSON object")
    if "score" not in obj:
        raise ValueError("the reply's JSON has no 'score'")
    value = _RELEVANCE_SCALE.judge_value(obj["score"])
    if value is None:
        raise ValueError(f"score {obj['score']!r} is not on the scale {_RELEVANCE_SCALE}")
    return value, _text(obj.get("reasoning"))


def parse_relevant(text: str) -> tuple[bool, str]:
    """(relevant, reasoning) from a context-precision reply."""
    obj = extract_json_object(text)
    if obj is None:
        raise ValueError("the reply contains no JSON object")
    verdict = _truth(obj.get("relevant"))
    if verdict is None:
        raise ValueError(f"'relevant' is {obj.get('relevant')!r}, not true or false")
    return verdict, _text(obj.get("reasoning"))


def average_precision(relevant: Sequence[bool]) -> float:
    """Mean of precision@k over the ranks k holding a relevant item; 0.0 when none does."""
    hits, total = 0, 0.0
    for k, rel in enumerate(relevant, 1):
        if rel:
            hits += 1
            total += hits / k
    return total / hits if hits else 0.0


# -- the shared machinery -------------------------------------------------------------------------------


class _Failed(Exception):
    """Ends one run of a metric as an error score."""

    def __init__(self, error: str, reason: str, raw: str | None = None) -> None:
        super().__init__(reason)
        self.error, self.reason, self.raw = error, reason, raw


@dataclass
class _Run:
    """One run (sample) of a metric on one item: its calls, and what they cost."""

    judge: RagJudge
    sample: int
    spent: list[Completion | HonedError] = field(default_factory=list)

    async def ask(self, stage: str, system: str, users: Sequence[str]) -> list[str]:
        """The judge's replies to `users` (concurrently); the first failed call ends the run."""
        results = await self.judge.call(
            [self.judge.request(system, u, sample_index=self.sample) for u in users]
        )
        self.spent.extend(results)
        texts: list[str] = []
        for i, result in enumerate(results):
            if isinstance(result, HonedError):
                where = f"{stage} {i + 1}" if len(users) > 1 else stage
                raise _Failed(CALL_FAILED, f"{where}: {result.one_line()}")
            texts.append(result.text)
        return texts

    @staticmethod
    def parse(stage: str, text: str, parser: Callable[[str], T]) -> T:
        try:
            return parser(text)
        except ValueError as exc:
            raise _Failed(UNPARSEABLE, f"{stage}: {exc}", text) from None


Finding = tuple[float, str, dict[str, Any]]
"""What one run of a metric finds: (value, reason, details)."""


@dataclass(frozen=True, kw_only=True, eq=False)
class RagJudge(JudgeBase):
    """Base of the RAG metrics: a fixed definition (no rubric to write), `samples`, an optional `threshold`
    on the [0, 1] value, and the input holding the question (`question_field`)."""

    description: ClassVar[str] = ""
    #: What a case must carry, checked in this order: "context", "question", "reference".
    needs: ClassVar[tuple[str, ...]] = ()
    #: What the reference answer is for, said when a case has none.
    reference_for: ClassVar[str] = ""
    rubric: str = field(default="", init=False, repr=False)
    use_inputs: bool = field(default=False, init=False, repr=False)
    use_reference: bool = field(default=False, init=False, repr=False)
    use_context: bool = field(default=False, init=False, repr=False)
    max_tokens: int = 1024
    samples: int = 1
    threshold: float | None = None
    question_field: str = "question"

    def __post_init__(self) -> None:
        object.__setattr__(self, "rubric", self.description)
        if self.temperature is None:
            object.__setattr__(self, "temperature", 0.0 if self.samples == 1 else 0.7)
        super().__post_init__()
        if self.samples < 1:
            raise InvalidInputError(f"evaluator {self.name!r}: samples must be >= 1", hint="e.g. samples: 3")
        if self.threshold is not None and not 0.0 <= self.threshold <= 1.0:
            raise InvalidInputError(
                f"evaluator {self.name!r}: threshold {self.threshold} is outside [0, 1]",
                hint=f"{self.kind} scores from 0 to 1, e.g. threshold: 0.8",
            )
        if not self.question_field:
            raise InvalidInputError(
                f"evaluator {self.name!r}: question_field is empty",
                hint="name the input holding the question",
            )

    def identity(self) -> dict[str, Any]:
        return {**super().identity(), "prompts": PROMPTS_VERSION}

    # What a case must carry; `lacks` returns the error score for the first missing part, or None.

    def question(self, item: EvalInput) -> str | None:
        raw = item.inputs.get(self.question_field)
        if raw is None or (isinstance(raw, str) and not raw.strip()):
            return None
        return raw if isinstance(raw, str) else json.dumps(raw, ensure_ascii=False)

    def _no_question(self) -> Score:
        return Score.failed(
            NO_QUESTION,
            reason=f"no question: the case's inputs have no {self.question_field!r}",
            details={"hint": "set question_field to the input that holds the question"},
        )

    @staticmethod
    def reference(item: EvalInput) -> str | None:
        refs = item.references()
        return refs[0] if refs and refs[0].strip() else None

    @staticmethod
    def _no_context() -> Score:
        return Score.failed(
            NO_CONTEXT,
            reason="no retrieved context: the case has no `context` (the chunks retrieval returned)",
            details={"hint": "run the case with retrieval, which fills EvalInput.context"},
        )

    def lacks(self, item: EvalInput) -> Score | None:
        """An error score for the first part of `needs` that `item` lacks, else None."""
        for need in self.needs:
            if need == "context" and item.context is None:
                return self._no_context()
            if need == "question" and self.question(item) is None:
                return self._no_question()
            if need == "reference" and self.reference(item) is None:
                return Score.failed(NO_REFERENCE, reason=f"no reference answer {self.reference_for}")
        return None

    @abstractmethod
    async def judge(self, item: EvalInput, run: _Run) -> Finding:
        """One run of the metric on an item that has what it needs; `_Failed` ends it as an error."""

    # -- evaluation ---------------------------------------------------------------------------------------

    async def _one_run(self, item: EvalInput, sample: int) -> tuple[Score, list[Completion | HonedError]]:
        run = _Run(self, sample)
        try:
            value, reason, details = await self.judge(item, run)
        except _Failed as failed:
            details = call_cost(run.spent)
            return Score.failed(
                failed.error, reason=failed.reason, raw=failed.raw, details=details
            ), run.spent
        score = Score(
            value, passed_at(value, self.threshold), reason, details={**details, **call_cost(run.spent)}
        )
        return score, run.spent

    async def evaluate(self, item: EvalInput) -> Score:
        lacking = self.lacks(item)
        if lacking is not None:
            return lacking
        runs = await asyncio.gather(*(self._one_run(item, i) for i in range(self.samples)))
        if self.samples == 1:
            return runs[0][0]
        return self._combine([score for score, _ in runs], [r for _, spent in runs for r in spent])

    def _combine(self, runs: Sequence[Score], spent: Sequence[Completion | HonedError]) -> Score:
        """N runs as one score: the mean of the runs that parsed, with each run kept in `details`."""
        valid = [r.value for r in runs if r.value is not None]
        details: dict[str, Any] = {
            "samples": valid,
            "n_valid": len(valid),
            "runs": [r.to_dict() for r in runs],
            **call_cost(spent),
        }
        if not valid:
            first = runs[0]
            assert first.error is not None
            return Score.failed(first.error, reason=first.reason, raw=first.raw, details=details)
        value = statistics.fmean(valid)
        details["std"] = statistics.pstdev(valid) if len(valid) > 1 else 0.0
        example = next(r for r in runs if r.ok)
        reason = (
            f"mean {value:.3g} over {len(valid)} of {len(runs)} runs (std {details['std']:.2g}); "
            f"run {runs.index(example) + 1}: {example.reason}"
        )
        return Score(value, passed_at(value, self.threshold), reason, details=details)


async def _claims_against_context(
    run: _Run, text: str, question: str | None, context: Sequence[str]
) -> list[dict[str, Any]]:
    """Split `text` into claims and judge each against `context`: [{"claim", "supported", "reason"}]."""
    (reply,) = await run.ask("claims", SPLIT_SYSTEM, [split_prompt(text, question)])
    claims = run.parse("claims", reply, parse_claims)
    if not claims:
        return []
    if not context:
        return [{"claim": c, "supported": False, "reason": "nothing was retrieved"} for c in claims]
    (reply,) = await run.ask("verdicts", CHECK_SYSTEM, [check_prompt(context, claims)])
    verdicts = run.parse("verdicts", reply, lambda t: parse_verdicts(t, len(claims)))
    return [
        {"claim": c, "supported": ok, "reason": why} for c, (ok, why) in zip(claims, verdicts, strict=True)
    ]


def _listed(claims: Sequence[dict[str, Any]]) -> str:
    return "; ".join(f"{c['claim']!r}" + (f" ({c['reason']})" if c["reason"] else "") for c in claims)


# -- the metrics ----------------------------------------------------------------------------------------


@dataclass(frozen=True, kw_only=True, eq=False)
class Faithfulness(RagJudge):
    """Share of the answer's claims the retrieved context supports (RAGAS faithfulness; needs context)."""

    kind = "faithfulness"
    description = "Every claim in the answer is supported by the retrieved context."
    needs = ("context",)

    async def judge(self, item: EvalInput, run: _Run) -> Finding:
        if not item.output.strip():
            return 1.0, "the answer is empty: it makes no claim, so none is unsupported", {"claims": []}
        claims = await _claims_against_context(run, item.output, self.question(item), item.context or [])
        if not claims:
            return 1.0, "the answer makes no factual claim, so none is unsupported", {"claims": []}
        unsupported = [c for c in claims if not c["supported"]]
        n, ok = len(claims), len(claims) - len(unsupported)
        reason = f"{ok}/{n} claims supported by the context"
        if unsupported:
            reason += f"; unsupported: {_listed(unsupported)}"
        return ok / n, reason, {"claims": claims}


@dataclass(frozen=True, kw_only=True, eq=False)
class AnswerRelevance(RagJudge):
    """How directly the answer addresses the question: a 1-5 rating as (score - 1) / 4 (needs a question)."""

    kind = "answer_relevance"
    description = "The answer addresses the question that was asked, directly and completely."
    needs = ("question",)

    async def judge(self, item: EvalInput, run: _Run) -> Finding:
        if not item.output.strip():
            return 0.0, "the answer is empty: it does not address the question", {"score": None}
        question = self.question(item)
        assert question is not None
        (reply,) = await run.ask("rating", RELEVANCE_SYSTEM, [relevance_prompt(question, item.output)])
        score, reasoning = run.parse("rating", reply, parse_rating)
        shown = f"rated {score:g}/5"
        return (score - 1) / 4, f"{shown}: {reasoning}" if reasoning else shown, {"score": score}


@dataclass(frozen=True, kw_only=True, eq=False)
class ContextPrecision(RagJudge):
    """Average precision of the chunks judged relevant, in rank order (RAGAS context precision).

    Needs context, a question and a reference answer."""

    kind = "context_precision"
    description = "The retrieved chunks that help reach the reference answer are ranked first."
    needs = ("context", "question", "reference")
    reference_for = "to judge the chunks against"

    async def judge(self, item: EvalInput, run: _Run) -> Finding:
        context = item.context or []
        if not context:
            return 0.0, "nothing was retrieved", {"chunks": []}
        question, reference = self.question(item), self.reference(item)
        assert question is not None and reference is not None
        prompts = [precision_prompt(question, reference, chunk) for chunk in context]
        replies = await run.ask("chunk", PRECISION_SYSTEM, prompts)
        chunks: list[dict[str, Any]] = []
        for rank, reply in enumerate(replies, 1):
            relevant, why = run.parse(f"chunk {rank}", reply, parse_relevant)
            chunks.append({"rank": rank, "relevant": relevant, "reason": why})
        ranks = [c["rank"] for c in chunks if c["relevant"]]
        value = average_precision([c["relevant"] for c in chunks])
        if ranks:
            at = ", ".join(map(str, ranks))
            reason = f"average precision {value:.3g}: relevant at rank {at} of {len(chunks)}"
        else:
            reason = f"none of the {len(chunks)} retrieved chunks is relevant"
        return value, reason, {"chunks": chunks}


@dataclass(frozen=True, kw_only=True, eq=False)
class ContextRecall(RagJudge):
    """Share of the reference answer's claims the retrieved context supports (RAGAS context recall).

    Needs context and a reference answer."""

    kind = "context_recall"
    description = "Every claim of the reference answer can be found in the retrieved context."
    needs = ("context", "reference")
    reference_for = "whose claims to look for"

    async def judge(self, item: EvalInput, run: _Run) -> Finding:
        reference = self.reference(item)
        assert reference is not None
        claims = await _claims_against_context(run, reference, self.question(item), item.context or [])
        if not claims:
            raise _Failed(
                "no claims in the reference",
                "the judge found no claim in the reference answer, so recall cannot be measured",
                run.spent[0].text if run.spent and isinstance(run.spent[0], Completion) else None,
            )
        missing = [c for c in claims if not c["supported"]]
        n, found = len(claims), len(claims) - len(missing)
        reason = f"{found}/{n} reference claims found in the context"
        if missing:
            reason += f"; missing: {_listed(missing)}"
        return found / n, reason, {"claims": claims}


RAG_EVALUATORS: tuple[type[RagJudge], ...] = (Faithfulness, AnswerRelevance, ContextPrecision, ContextRecall)
