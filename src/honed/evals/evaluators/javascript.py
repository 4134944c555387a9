"""JavaScript checks and output transforms, run by Node.js (`node` on the PATH) in a child process.

Suites written for JavaScript tools (promptfoo) express checks as JS: an expression (`output.includes('x')`),
a function body with `return` (any code with a newline), or a module file (`checks.js`, `checks.js:fn`).
Each is called as `f(output, context)` with `context = {vars, metadata, reference}`. One Node process runs a
whole batch of items, so a dataset costs one process start, not one per case. Without Node, building such
an evaluator is a `ConfigError` that says so: there is no silent fallback to a pass or a zero.

A check may return a boolean, a number (passing when above 0, or at `threshold` when one is set), or an
object `{pass, score, reason}`; a transform returns the new output (a non-string becomes its JSON).
"""

from __future__ import annotations

import json
import shutil
import subprocess
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from honed.errors import ConfigError, InvalidInputError
from honed.evals.evaluators.base import EvalInput, Evaluator, Score, binary, passed_at
from honed.hashing import content_hash

#: How long one batch may take before it is stopped (its items become error scores).
TIMEOUT_S = 120.0

_RUNNER = r"""
const fs = require('fs');
const job = JSON.parse(fs.readFileSync(0, 'utf8'));
let f;
try {
  if (job.file) {
    const m = require(job.file);
    f = job.fn ? m[job.fn] : (typeof m === 'function' ? m : m.default);
    if (typeof f !== 'function') throw new Error(`${job.file} exports no function ${job.fn || '(default)'}`);
  } else {
    const body = job.code.includes('\n') ? job.code : `return (${job.code});`;
    f = new Function('output', 'context', body);
  }
} catch (e) {
  process.stdout.write(JSON.stringify({setup: String((e && e.message) || e)}));
  process.exit(0);
}
(async () => {
  const out = [];
  for (const it of job.items) {
    try {
      let r = f(it.output, it.context);
      if (r && typeof r.then === 'function') r = await r;
      out.push({ok: true, value: r === undefined ? null : r});
    } catch (e) {
      out.push({ok: false, error: String((e && e.message) || e)});
    }
  }
  process.stdout.write(JSON.stringify({results: out}));
})();
"""


def node_path() -> str | None:
    """The `node` executable, or None when Node.js is not installed."""
    return shutil.which("node")


def require_node(what: str) -> str:
    """The `node` executable; a `ConfigError` naming `what` when there is none."""
    node = node_path()
    if node is None:
        raise ConfigError(
            f"{what} needs Node.js, and `node` is not on the PATH",
            hint="install Node.js (https://nodejs.org) or drop the JavaScript check",
        )
    return node


@dataclass(frozen=True, slots=True)
class Outcome:
    """One item's result from Node: `value` when `error` is None."""

    value: Any = None
    error: str | None = None


def run_js(
    items: Sequence[tuple[str, dict[str, Any]]],
    *,
    code: str | None = None,
    file: Path | None = None,
    fn: str = "",
) -> list[Outcome]:
    """Call the JS function (inline `code`, or `fn` of module `file`) on each (output, context) item in one
    Node process."""
    node = require_node("a JavaScript check")
    job = {
        "code": code,
        "file": str(file.resolve()) if file is not None else None,
        "fn": fn,
        "items": [{"output": o, "context": c} for o, c in items],
    }
    try:
        done = subprocess.run(
            [node, "-e", _RUNNER],
            input=json.dumps(job, default=str),
            capture_output=True,
            text=True,
            timeout=TIMEOUT_S,
            check=False,
        )
    except subprocess.TimeoutExpired:
        return [Outcome(error=f"JavaScript took longer than {TIMEOUT_S:g} s")] * len(items)
    try:
        reply = json.loads(done.stdout)
    except json.JSONDecodeError:
        why = (done.stderr.strip().splitlines() or ["no output"])[-1]
        return [Outcome(error=f"JavaScript failed: {why}")] * len(items)
    if "setup" in reply:
        return [Outcome(error=f"JavaScript does not load: {reply['setup']}")] * len(items)
    return [Outcome(r["value"]) if r["ok"] else Outcome(error=r["error"]) for r in reply["results"]]


def js_context(item: EvalInput) -> dict[str, Any]:
    """What a JS function gets as `context`."""
    return {"vars": item.inputs, "metadata": item.metadata, "reference": item.reference}


def check_result(value: Any, threshold: float | None) -> Score:
    """A JS or promptfoo-style check's return value as a Score."""
    if isinstance(value, bool):
        return binary(value, f"returned {str(value).lower()}")
    if isinstance(value, int | float):
        number = float(value)
        passed = passed_at(number, threshold) if threshold is not None else number > 0
        return Score(number, passed, f"returned {number:g}")
    if isinstance(value, dict) and ("pass" in value or "score" in value):
        raw_score = value.get("score")
        ok = value.get("pass")
        if raw_score is not None and not isinstance(raw_score, int | float):
            return Score.failed(f"returned score {raw_score!r}, not a number", raw=json.dumps(value)[:500])
        score = float(raw_score) if raw_score is not None else (1.0 if ok else 0.0)
        if ok is None:
            ok = passed_at(score, threshold) if threshold is not None else score > 0
        return Score(score, bool(ok), str(value.get("reason") or f"returned pass={bool(ok)}"))
    return Score.failed(
        f"returned {type(value).__name__}; expected a boolean, a number or {{pass, score, reason}}",
        raw=json.dumps(value, default=str)[:500],
    )


def split_file_ref(ref: str, root: Path | None, what: str) -> tuple[Path, str]:
    """`checks.js` or `checks.js:fn` (relative to `root`) as (path, function name or "")."""
    name = ""
    path_part = ref
    head, sep, tail = ref.rpartition(":")
    if sep and head.endswith((".js", ".cjs", ".mjs")) and tail.isidentifier():
        path_part, name = head, tail
    path = (root or Path.cwd()) / path_part
    if not path.is_file():
        raise InvalidInputError(
            f"{what}: file {path} does not exist", hint="paths are relative to the workspace"
        )
    return path, name


@dataclass(frozen=True, kw_only=True, eq=False)
class JavaScript(Evaluator):
    """A JavaScript check run by Node.js: `code` (an expression, or a function body with `return`) or
    `file` (`checks.js` or `checks.js:fn`), called as f(output, context); see the module docstring."""

    kind = "javascript"
    code: str | None = None
    file: str | None = None
    threshold: float | None = None
    root: Path | None = field(default=None, metadata={"context": "root"}, repr=False)
    _source: str = field(init=False, repr=False)

    def __post_init__(self) -> None:
        super().__post_init__()
        if (self.code is None) == (self.file is None):
            raise InvalidInputError(
                "evaluator 'javascript' needs exactly one of `code` or `file`",
                hint="e.g. code: \"output.includes('Paris')\"",
            )
        require_node("evaluator 'javascript'")
        source = self.code or ""
        if self.file is not None:
            path, _ = split_file_ref(self.file, self.root, "evaluator 'javascript'")
            source = path.read_text(encoding="utf-8", errors="replace")
        object.__setattr__(self, "_source", content_hash(source))

    def identity(self) -> dict[str, Any]:
        return {**super().identity(), "source": self._source}

    async def evaluate(self, item: EvalInput) -> Score:
        return (await self.evaluate_many([item]))[0]

    async def evaluate_many(self, items: Sequence[EvalInput]) -> list[Score]:
        import asyncio

        outcomes = await asyncio.to_thread(self._run, items)
        return [
            Score.failed(o.error, reason="the JavaScript check raised")
            if o.error
            else check_result(o.value, self.threshold)
            for o in outcomes
        ]

    def _run(self, items: Sequence[EvalInput]) -> list[Outcome]:
        pairs = [(item.output, js_context(item)) for item in items]
        if self.file is not None:
            path, fn = split_file_ref(self.file, self.root, "evaluator 'javascript'")
            return run_js(pairs, file=path, fn=fn)
        return run_js(pairs, code=self.code)
