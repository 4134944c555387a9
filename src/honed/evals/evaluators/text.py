"""Text-matching evaluators: exact, normalised (SQuAD), contains, regex and token F1.

Where a case has several acceptable references (a list), the best match counts, as in SQuAD and NQ-open.
A case without a reference gets an error score for the evaluators that need one, not a zero.
"""

from __future__ import annotations

import re
import unicodedata
from collections import Counter
from dataclasses import dataclass, field
from typing import Literal

from honed.errors import InvalidInputError
from honed.evals.evaluators.base import NO_REFERENCE, EvalInput, Score, SyncEvaluator, binary, passed_at

_ARTICLES = re.compile(r"\b(a|an|the)\b")


def normalize_answer(text: str) -> str:
    """SQuAD's answer normalisation, Unicode-aware: casefold, drop punctuation (every Unicode `P*`
    character, a superset of `string.punctuation`), drop the articles a/an/the, collapse whitespace."""
    text = text.casefold()
    # Deleted, not replaced by a space, as SQuAD does: "U.S." -> "us", "1,000" -> "1000".
    text = "".join(ch for ch in text if not unicodedata.category(ch).startswith("P"))
    text = _ARTICLES.sub(" ", text)
    return " ".join(text.split())


def token_f1(prediction: str, reference: str) -> tuple[float, float, float]:
    """SQuAD token F1 of normalised tokens: (f1, precision, recall). Two empty answers agree (1.0)."""
    pred, gold = normalize_answer(prediction).split(), normalize_answer(reference).split()
    if not pred or not gold:
        same = float(pred == gold)
        return same, same, same
    common = sum((Counter(pred) & Counter(gold)).values())
    if common == 0:
        return 0.0, 0.0, 0.0
    precision, recall = common / len(pred), common / len(gold)
    return 2 * precision * recall / (precision + recall), precision, recall


def _show(text: str, limit: int = 60) -> str:
    return repr(text if len(text) <= limit else text[: limit - 3] + "...")


@dataclass(frozen=True, kw_only=True, eq=False)
class Exact(SyncEvaluator):
    """The output equals a reference exactly (surrounding whitespace stripped unless `strip` is false)."""

    kind = "exact"
    strip: bool = True

    def score(self, item: EvalInput) -> Score:
        refs = item.references()
        if refs is None:
            return Score.failed(NO_REFERENCE)
        out = item.output.strip() if self.strip else item.output
        for ref in refs:
            if out == (ref.strip() if self.strip else ref):
                return binary(True, f"output equals the reference {_show(ref)}")
        return binary(False, f"output {_show(out)} differs from the reference {_show(refs[0])}")


@dataclass(frozen=True, kw_only=True, eq=False)
class Normalized(SyncEvaluator):
    """The output equals a reference after SQuAD normalisation (see `normalize_answer`)."""

    kind = "normalized"

    def score(self, item: EvalInput) -> Score:
        refs = item.references()
        if refs is None:
            return Score.failed(NO_REFERENCE)
        out = normalize_answer(item.output)
        for ref in refs:
            if out == normalize_answer(ref):
                return binary(True, f"normalised output matches {_show(ref)}", normalized=out)
        return binary(False, f"normalised output {_show(out)} matches no reference", normalized=out)


@dataclass(frozen=True, kw_only=True, eq=False)
class Contains(SyncEvaluator):
    """The output contains any (or all) of `strings`; without `strings`, the case's reference(s)."""

    kind = "contains"
    strings: list[str] | None = None
    mode: Literal["any", "all"] = "any"
    case_sensitive: bool = False

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.strings is not None and not self.strings:
            raise InvalidInputError(
                "evaluator 'contains': 'strings' is empty", hint="list at least one string"
            )

    def score(self, item: EvalInput) -> Score:
        needles = self.strings if self.strings is not None else item.references()
        if needles is None:
            return Score.failed(NO_REFERENCE, reason="no 'strings' configured and the case has no reference")

        def fold(s: str) -> str:
            return s if self.case_sensitive else s.casefold()

        hay = fold(item.output)
        found = [s for s in needles if fold(s) in hay]
        missing = [s for s in needles if fold(s) not in hay]
        ok = bool(found) if self.mode == "any" else not missing
        if ok:
            reason = f"output contains {', '.join(map(_show, found))}"
        elif self.mode == "any":
            reason = f"output contains none of {', '.join(map(_show, needles))}"
        else:
            reason = f"output lacks {', '.join(map(_show, missing))}"
        return binary(ok, reason, found=found, missing=missing)


_FLAGS = {"i": re.IGNORECASE, "m": re.MULTILINE, "s": re.DOTALL, "x": re.VERBOSE}


@dataclass(frozen=True, kw_only=True, eq=False)
class Regex(SyncEvaluator):
    """The output matches `pattern`: `search` anywhere (default) or `fullmatch` the whole (stripped)
    output. `flags` is a string of Python regex flags: i (ignore case), m, s, x."""

    kind = "regex"
    pattern: str
    mode: Literal["search", "fullmatch"] = "search"
    flags: str = ""
    _compiled: re.Pattern[str] = field(init=False, repr=False)

    def __post_init__(self) -> None:
        super().__post_init__()
        unknown = sorted(set(self.flags) - set(_FLAGS))
        if unknown:
            raise InvalidInputError(
                f"regex flags {''.join(unknown)!r} are unknown", hint="use any of i, m, s, x"
            )
        bits = 0
        for ch in self.flags:
            bits |= _FLAGS[ch]
        try:
            compiled = re.compile(self.pattern, bits)
        except re.error as exc:
            raise InvalidInputError(
                f"regex {self.pattern!r} does not compile: {exc}", hint="check the pattern's syntax"
            ) from None
        object.__setattr__(self, "_compiled", compiled)

    def score(self, item: EvalInput) -> Score:
        rx = self._compiled
        m = rx.fullmatch(item.output.strip()) if self.mode == "fullmatch" else rx.search(item.output)
        if m is None:
            how = "does not fully match" if self.mode == "fullmatch" else "has no match for"
            return binary(False, f"output {how} /{self.pattern}/")
        return binary(
            True, f"matched {_show(m.group(0))} at {m.start()}", match=m.group(0), groups=list(m.groups())
        )


@dataclass(frozen=True, kw_only=True, eq=False)
class TokenF1(SyncEvaluator):
    """SQuAD-style token F1 against the best reference; passes at `threshold` when one is set."""

    kind = "token_f1"
    threshold: float | None = None

    def score(self, item: EvalInput) -> Score:
        refs = item.references()
        if refs is None:
            return Score.failed(NO_REFERENCE)
        best = max(((token_f1(item.output, ref), ref) for ref in refs), key=lambda t: t[0][0])
        (f1, precision, recall), ref = best
        reason = f"token F1 {f1:.3f} (precision {precision:.3f}, recall {recall:.3f}) vs {_show(ref)}"
        return Score(
            f1,
            passed_at(f1, self.threshold),
            reason,
            details={"precision": precision, "recall": recall, "reference": ref},
        )


@dataclass(frozen=True, kw_only=True, eq=False)
class StartsWith(SyncEvaluator):
    """The output starts with any of `prefixes`; without `prefixes`, with any of the case's references.
    Nothing is stripped (a leading space is part of the output); `case_sensitive` defaults to true."""

    kind = "starts_with"
    prefixes: list[str] | None = None
    case_sensitive: bool = True

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.prefixes is not None and not self.prefixes:
            raise InvalidInputError(
                "evaluator 'starts_with': 'prefixes' is empty", hint="list at least one prefix"
            )

    def score(self, item: EvalInput) -> Score:
        prefixes = self.prefixes if self.prefixes is not None else item.references()
        if prefixes is None:
            return Score.failed(NO_REFERENCE, reason="no 'prefixes' configured and the case has no reference")

        def fold(s: str) -> str:
            return s if self.case_sensitive else s.casefold()

        out = fold(item.output)
        for prefix in prefixes:
            if out.startswith(fold(prefix)):
                return binary(True, f"output starts with {_show(prefix)}", prefix=prefix)
        return binary(
            False, f"output {_show(item.output)} starts with none of {', '.join(map(_show, prefixes))}"
        )


def _openai_normalize(text: str) -> str:
    # OpenAI Evals' `normalize` exactly: lower, drop ASCII punctuation, drop articles, collapse spaces.
    text = text.lower()
    text = "".join(ch for ch in text if ch not in _ASCII_PUNCTUATION)
    text = _ARTICLES.sub(" ", text)
    return " ".join(text.split())


_ASCII_PUNCTUATION = frozenset("!\"#$%&'()*+,-./:;<=>?@[\\]^_`{|}~")


@dataclass(frozen=True, kw_only=True, eq=False)
class FuzzyMatch(SyncEvaluator):
    """OpenAI Evals' fuzzy match: after normalising both (lower case, no punctuation or articles), the
    output contains a reference or a reference contains the output; two empty texts match. The best
    token F1 is kept in `details`."""

    kind = "fuzzy_match"

    def score(self, item: EvalInput) -> Score:
        refs = item.references()
        if refs is None:
            return Score.failed(NO_REFERENCE)
        out = _openai_normalize(item.output)
        f1 = max(token_f1(item.output, ref)[0] for ref in refs)
        for ref in refs:
            norm = _openai_normalize(ref)
            hit = out == norm if not out or not norm else norm in out or out in norm
            if hit:
                return binary(True, f"output and {_show(ref)} match after normalising", token_f1=f1)
        return binary(False, f"normalised output {_show(out)} matches no reference", token_f1=f1)
