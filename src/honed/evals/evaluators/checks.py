"""Checks that belong to a case, and the negation of any check.

An experiment's evaluators are the same for every case, but suites written elsewhere (promptfoo's per-test
`assert`, the OpenAI Evals graders with per-item references) attach their checks to each case. `case_checks`
runs those: a case's `metadata[key]` lists checks, each

    {"name": "contains",                       # what `select` picks; several may share a name
     "check": {"type": "contains", "strings": ["Paris"], "case_sensitive": true},   # any evaluator spec
     "reference": "Paris",                     # optional: the reference this check compares with
     "weight": 1,                              # optional: its weight in the case's score (0: not counted)
     "transform": [{"javascript": "output.trim()"}, {"python": "t.py:fn"}]}   # optional: applied in turn

and the case's score is the weighted mean of its checks' values, passing when every check that gives a
pass/fail passes. A case with no check of the selected name has no score from this evaluator (counted as
absent, like a case without a reference, not as an error). An error in any check is the case's error.
The checks' specs live in the dataset version, so they are versioned with it; the evaluator's own version
covers `key` and `select`.

A transform rewrites the output before the check sees it: `{"python": "file.py:fn"}` calls fn(output,
context) and `{"javascript": CODE}` runs CODE with Node.js (see `honed.evals.evaluators.javascript`), where
context is `{"vars": inputs, "metadata": ..., "reference": ...}`; a non-string result becomes its JSON.

`not` wraps one evaluator spec and passes where it fails (value 1/0); an inner score without a pass/fail
cannot be negated and is an error saying so.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from honed.errors import HonedError
from honed.evals.evaluators.base import NO_REFERENCE, BuildContext, EvalInput, Evaluator, Score, binary
from honed.evals.evaluators.javascript import Outcome, js_context, run_js
from honed.evals.evaluators.registry import build_evaluator
from honed.models.client import ModelClient  # at run time: the evaluator registry reads the field types

_ENTRY_KEYS = frozenset({"name", "check", "reference", "weight", "transform"})


@dataclass(frozen=True, kw_only=True, eq=False)
class Wrapper(Evaluator):
    """An evaluator around another, built from the spec `check` (its version covers the inner one's):
    subclasses say in `evaluate_many` what they make of the inner evaluator's scores or what it sees."""

    check: dict[str, Any]
    client: ModelClient | None = field(default=None, metadata={"context": "client"}, repr=False)
    root: Path | None = field(default=None, metadata={"context": "root"}, repr=False)
    _inner: Evaluator = field(init=False, repr=False)

    def __post_init__(self) -> None:
        super().__post_init__()
        inner = build_evaluator(self.check, context=BuildContext(client=self.client, root=self.root))
        object.__setattr__(self, "_inner", inner)

    def identity(self) -> dict[str, Any]:
        return {"type": self.kind, "check": self._inner.identity()}

    async def evaluate(self, item: EvalInput) -> Score:
        return (await self.evaluate_many([item]))[0]

    async def aclose(self) -> None:
        await self._inner.aclose()


@dataclass(frozen=True, kw_only=True, eq=False)
class Not(Wrapper):
    """Passes where the evaluator `check` (a spec) fails, and fails where it passes (value 1/0)."""

    kind = "not"

    async def evaluate_many(self, items: Sequence[EvalInput]) -> list[Score]:
        return [negate(s, self._inner.kind) for s in await self._inner.evaluate_many(items)]


def negate(score: Score, kind: str) -> Score:
    """The opposite verdict of `score` (errors stay errors)."""
    if score.error is not None:
        return score
    if score.passed is None:
        return Score.failed(f"cannot negate {kind!r}: it gives no pass/fail", reason=score.reason)
    return binary(not score.passed, f"not ({score.reason})", negated=score.to_dict())


@dataclass(frozen=True, kw_only=True, eq=False)
class CaseChecks(Evaluator):
    """Runs the checks each case lists in `metadata[key]` (only those named `select`, when set) and
    combines them: weighted mean value, passing when all pass. See the module docstring."""

    kind = "case_checks"
    key: str = "checks"
    select: str | None = None
    client: ModelClient | None = field(default=None, metadata={"context": "client"}, repr=False)
    root: Path | None = field(default=None, metadata={"context": "root"}, repr=False)
    _built: dict[str, Evaluator | HonedError] = field(init=False, repr=False)

    def __post_init__(self) -> None:
        super().__post_init__()
        object.__setattr__(self, "_built", {})

    async def evaluate(self, item: EvalInput) -> Score:
        return (await self.evaluate_many([item]))[0]

    async def evaluate_many(self, items: Sequence[EvalInput]) -> list[Score]:
        entries: list[list[dict[str, Any]] | Score] = [self._entries(item) for item in items]
        # Every (item, check) pair, transformed, grouped by evaluator so each evaluator sees one batch.
        work: list[tuple[int, int, dict[str, Any], EvalInput]] = []
        for i, (item, listed) in enumerate(zip(items, entries, strict=True)):
            if isinstance(listed, Score):
                continue
            for j, entry in enumerate(listed):
                ref = entry.get("reference", item.reference)
                work.append((i, j, entry, dataclasses.replace(item, reference=ref)))
        transformed = await self._transform([(e, it) for _, _, e, it in work])
        results: dict[tuple[int, int], Score] = {}
        groups: dict[str, list[tuple[int, int, EvalInput]]] = {}
        for (i, j, entry, _), done in zip(work, transformed, strict=True):
            if isinstance(done, Score):
                results[(i, j)] = done
                continue
            key = json.dumps(entry["check"], sort_keys=True, default=str)
            groups.setdefault(key, []).append((i, j, done))
        for key, members in groups.items():
            ev = self._evaluator(key)
            if isinstance(ev, HonedError):
                for i, j, _ in members:
                    results[(i, j)] = Score.failed(f"invalid check: {ev.one_line()}")
                continue
            scores = await ev.evaluate_many([it for _, _, it in members])
            for (i, j, _), s in zip(members, scores, strict=True):
                results[(i, j)] = s
        out: list[Score] = []
        for i, listed in enumerate(entries):
            if isinstance(listed, Score):
                out.append(listed)
            else:
                out.append(combine(listed, [results[(i, j)] for j in range(len(listed))]))
        return out

    async def aclose(self) -> None:
        for ev in self._built.values():
            if isinstance(ev, Evaluator):
                await ev.aclose()

    def _entries(self, item: EvalInput) -> list[dict[str, Any]] | Score:
        listed = item.metadata.get(self.key)
        what = f"{self.select!r} checks" if self.select else "checks"
        if listed is None:
            return Score.failed(NO_REFERENCE, reason=f"the case lists no {what} (metadata.{self.key})")
        if not isinstance(listed, list) or not all(isinstance(e, dict) for e in listed):
            return Score.failed(f"metadata.{self.key} must be a list of checks", raw=str(listed)[:500])
        for entry in listed:
            unknown = sorted(set(entry) - _ENTRY_KEYS)
            if unknown or not isinstance(entry.get("check"), dict):
                why = f"unknown key(s) {unknown}" if unknown else "no `check` spec"
                return Score.failed(f"malformed check in metadata.{self.key}: {why}", raw=str(entry)[:500])
        chosen = [e for e in listed if self.select is None or e.get("name") == self.select]
        if not chosen:
            return Score.failed(NO_REFERENCE, reason=f"the case lists no {what}")
        return chosen

    def _evaluator(self, key: str) -> Evaluator | HonedError:
        if key not in self._built:
            try:
                context = BuildContext(client=self.client, root=self.root)
                self._built[key] = build_evaluator(json.loads(key), context=context)
            except HonedError as exc:
                self._built[key] = exc
        return self._built[key]

    async def _transform(self, pairs: list[tuple[dict[str, Any], EvalInput]]) -> list[EvalInput | Score]:
        """Each item with its entry's transforms applied in turn (a failed transform: an error score)."""
        import asyncio

        current: list[EvalInput | Score] = [item for _, item in pairs]
        depth = max((len(e.get("transform") or []) for e, _ in pairs), default=0)
        for step in range(depth):
            batches: dict[str, list[int]] = {}
            for k, (entry, _) in enumerate(pairs):
                steps = entry.get("transform") or []
                if step < len(steps) and not isinstance(current[k], Score):
                    batches.setdefault(json.dumps(steps[step], sort_keys=True), []).append(k)
            for spec_text, members in batches.items():
                spec = json.loads(spec_text)
                inputs = [current[k] for k in members]
                items = [x for x in inputs if isinstance(x, EvalInput)]
                outcomes = await asyncio.to_thread(self._apply, spec, items)
                for k, item, outcome in zip(members, items, outcomes, strict=True):
                    if outcome.error is not None:
                        current[k] = Score.failed(f"transform failed: {outcome.error}")
                    else:
                        value = outcome.value
                        text = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)
                        current[k] = dataclasses.replace(item, output=text)
        return current

    def _apply(self, spec: Any, items: list[EvalInput]) -> list[Outcome]:
        if not isinstance(spec, dict) or len(spec) != 1 or next(iter(spec)) not in ("python", "javascript"):
            return [
                Outcome(
                    error=f"a transform is {{python: FILE.py:NAME}} or {{javascript: CODE}}, not {spec!r}"
                )
            ] * len(items)
        if "javascript" in spec:
            return run_js([(it.output, js_context(it)) for it in items], code=str(spec["javascript"]))
        try:
            fn = self._python(str(spec["python"]))
        except HonedError as exc:
            return [Outcome(error=exc.one_line())] * len(items)
        out: list[Outcome] = []
        for it in items:
            try:
                out.append(Outcome(fn(it.output, js_context(it))))
            except Exception as exc:
                out.append(Outcome(error=f"{type(exc).__name__}: {exc}"))
        return out

    def _python(self, ref: str) -> Callable[..., Any]:
        from honed.evals.evaluators.python import load_function

        return load_function(ref, self.root, what="transform")[0]


def combine(entries: Sequence[dict[str, Any]], scores: Sequence[Score]) -> Score:
    """One case's score from its checks' scores (see the module docstring)."""
    details = [
        {"name": e.get("name"), "type": e["check"].get("type"), **s.to_dict()}
        for e, s in zip(entries, scores, strict=True)
    ]
    failed = [(e, s) for e, s in zip(entries, scores, strict=True) if s.error is not None]
    if failed:
        entry, first = failed[0]
        return Score.failed(
            first.error or "",
            reason=f"check {entry.get('name') or entry['check'].get('type')!r}: {first.reason}",
            raw=first.raw,
            details={"checks": details},
        )
    weights = [float(e.get("weight", 1.0)) for e in entries]
    total = sum(weights)
    values = [s.value or 0.0 for s in scores]
    value = sum(w * v for w, v in zip(weights, values, strict=True)) / total if total else 0.0
    verdicts = [s.passed for s in scores if s.passed is not None]
    passed = all(verdicts) if verdicts else None
    if len(scores) == 1:
        reason = scores[0].reason
    else:
        n_pass = sum(1 for v in verdicts if v)
        reason = f"{n_pass}/{len(verdicts)} checks pass: " + "; ".join(s.reason for s in scores)
    return Score(value, passed, reason, details={"checks": details})
