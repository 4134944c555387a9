"""The code evaluators (match, structure, numeric, token F1, embeddings, Python functions) and the plugin
registry that builds them from specs. Every score carries a reason; a case the evaluator cannot judge is an
error score, never a zero."""

from __future__ import annotations

import asyncio
import math
from pathlib import Path
from typing import Any

import pytest

from honed.errors import ConfigError, InvalidInputError
from honed.evals.evaluators import (
    BuildContext,
    EvalInput,
    EvaluatorRegistry,
    Exact,
    Score,
    as_evaluator,
    build_evaluator,
    builtin_registry,
    first_number,
    normalize_answer,
    token_f1,
)


def run(spec: dict[str, Any], output: str, reference: Any = None, **kw: Any) -> Score:
    score = build_evaluator(spec)(EvalInput(output, reference=reference, **kw))
    assert score.reason, score
    return score


# -- Score ----------------------------------------------------------------------------------------------


def test_a_score_is_a_value_or_an_error_never_both_and_never_nan() -> None:
    with pytest.raises(ValueError):
        Score(1.0, error="x")
    with pytest.raises(ValueError):
        Score(math.nan)
    with pytest.raises(ValueError):
        Score(None)
    failed = Score.failed("boom", raw="what it got")
    assert failed.value is None and failed.passed is None and failed.reason == "boom" and not failed.ok
    assert failed.to_dict()["raw"] == "what it got"


# -- matching -------------------------------------------------------------------------------------------


def test_exact() -> None:
    assert run({"type": "exact"}, " Paris\n", "Paris").passed is True
    assert run({"type": "exact"}, "paris", "Paris").passed is False
    assert run({"type": "exact", "strip": False}, "Paris\n", "Paris").passed is False
    assert run({"type": "exact"}, "Lyon", ["Paris", "Lyon"]).value == 1.0
    missing = run({"type": "exact"}, "Paris")
    assert missing.error == "no reference to compare against" and missing.value is None


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("The Eiffel Tower.", "eiffel tower"),
        ("  an   APPLE, a day ", "apple day"),
        ("U.S.", "us"),
        ("Straße – Ünïcode!", "strasse ünïcode"),
        ("theatre", "theatre"),
    ],
)
def test_normalize_answer_follows_squad(text: str, expected: str) -> None:
    assert normalize_answer(text) == expected


def test_normalized_match() -> None:
    assert run({"type": "normalized"}, "The answer is: Paris!", "paris").passed is False
    ok = run({"type": "normalized"}, "The  Eiffel tower.", ["Big Ben", "eiffel Tower"])
    assert ok.passed is True and "eiffel Tower" in ok.reason


def test_contains_any_all_and_case() -> None:
    spec: dict[str, Any] = {"type": "contains", "strings": ["refund", "Apology"]}
    assert run(spec, "we will REFUND you").passed is True
    all_spec = {**spec, "mode": "all"}
    partial = run(all_spec, "we will refund you")
    assert (
        partial.passed is False and partial.details["missing"] == ["Apology"] and "Apology" in partial.reason
    )
    assert run({**spec, "case_sensitive": True}, "we will REFUND you").passed is False
    # without strings, the reference(s)
    assert run({"type": "contains"}, "The capital is Paris.", "Paris").passed is True
    assert run({"type": "contains"}, "x").error == "no reference to compare against"
    with pytest.raises(InvalidInputError, match="empty"):
        build_evaluator({"type": "contains", "strings": []})


def test_regex_search_fullmatch_flags_and_bad_patterns() -> None:
    hit = run({"type": "regex", "pattern": r"order #(\d+)"}, "your order #123 shipped")
    assert hit.passed is True and hit.details["groups"] == ["123"] and "'order #123'" in hit.reason
    assert run({"type": "regex", "pattern": r"\d+", "mode": "fullmatch"}, "123 ").passed is True
    assert run({"type": "regex", "pattern": r"\d+", "mode": "fullmatch"}, "123 apples").passed is False
    assert run({"type": "regex", "pattern": "^yes", "flags": "i"}, "YES.").passed is True
    with pytest.raises(InvalidInputError, match="does not compile"):
        build_evaluator({"type": "regex", "pattern": "(unclosed"})
    with pytest.raises(InvalidInputError, match="flags"):
        build_evaluator({"type": "regex", "pattern": "x", "flags": "q"})
    with pytest.raises(InvalidInputError, match="'mode' must be"):
        build_evaluator({"type": "regex", "pattern": "x", "mode": "match"})


# -- structure ------------------------------------------------------------------------------------------


def test_json_valid() -> None:
    assert run({"type": "json_valid"}, '{"answer": "42"}').passed is True
    bad = run({"type": "json_valid"}, '{"answer": 42')
    assert bad.passed is False and "not valid JSON" in bad.reason and "line 1" in bad.reason
    fenced = '```json\n{"answer": 1}\n```'
    assert run({"type": "json_valid"}, fenced).passed is False
    assert run({"type": "json_valid", "allow_fence": True}, fenced).passed is True


SCHEMA = {
    "type": "object",
    "properties": {"items": {"type": "array", "items": {"type": "object", "required": ["name"]}}},
    "required": ["items"],
}


def test_json_schema_names_the_first_error_path() -> None:
    assert run({"type": "json_schema", "schema": SCHEMA}, '{"items": [{"name": "a"}]}').passed is True
    bad = run({"type": "json_schema", "schema": SCHEMA}, '{"items": [{"name": "a"}, {"size": 2}]}')
    assert (
        bad.passed is False and "$.items[1]" in bad.reason and "'name' is a required property" in bad.reason
    )
    assert bad.details["errors"][0]["path"] == "$.items[1]"
    assert "not valid JSON" in run({"type": "json_schema", "schema": SCHEMA}, "nope").reason
    # already-parsed structured output is used as is
    assert run({"type": "json_schema", "schema": SCHEMA}, "ignored", parsed={"items": []}).passed is True
    with pytest.raises(InvalidInputError, match="invalid schema"):
        build_evaluator({"type": "json_schema", "schema": {"type": "nonsense"}})


@pytest.mark.parametrize(
    ("text", "number"),
    [
        ("It costs $1,234.50.", 1234.5),
        ("-3 degrees", -3.0),
        ("about .5 of them", 0.5),
        ("1e-3 s", 0.001),
        ("12,34", 12.0),
        ("no digits here", None),
        ("version 2 of 3", 2.0),
    ],
)
def test_first_number(text: str, number: float | None) -> None:
    assert first_number(text) == number


def test_numeric_tolerance() -> None:
    assert run({"type": "numeric"}, "The answer is 42.", 42).passed is True
    assert run({"type": "numeric"}, "42.1", 42).passed is False
    assert run({"type": "numeric", "abs_tol": 0.2}, "42.1", "42").passed is True
    rel = run({"type": "numeric", "rel_tol": 0.01}, "990", 1000)
    assert rel.passed is True and rel.details["abs_error"] == 10
    assert run({"type": "numeric"}, "no idea", 42).reason == "output contains no number"
    assert run({"type": "numeric"}, "42", "unknown").error == "reference is not a number"
    with pytest.raises(InvalidInputError, match="tolerances"):
        build_evaluator({"type": "numeric", "abs_tol": -1})


def test_token_f1_matches_squad() -> None:
    f1, precision, recall = token_f1("the cat sat on the mat", "a cat sat")
    assert (precision, recall) == (0.5, 1.0) and f1 == pytest.approx(2 / 3)
    assert token_f1("", "") == (1.0, 1.0, 1.0)
    assert token_f1("something", "")[0] == 0.0
    best = run({"type": "token_f1", "threshold": 0.5}, "Barack Obama", ["George Bush", "President Obama"])
    assert (
        best.value == pytest.approx(0.5)
        and best.passed is True
        and best.details["reference"] == "President Obama"
    )
    assert run({"type": "token_f1"}, "x", "y").passed is None


# -- Python functions -----------------------------------------------------------------------------------

USER_FILE = """
from honed.evals.evaluators import Score

def polite(output, reference=None):
    return "please" in output.lower()

def length_ratio(output, reference):
    return len(output) / len(reference), "length relative to the reference"

def whole(item):
    return {"value": 0.5, "reason": f"saw {item.output}", "details": {"id": item.id}}

def scored(output, **rest):
    return Score(1.0, True, "custom", details={"keys": sorted(rest)})

async def later(output):
    return 0.25

def broken(output):
    raise KeyError("no such field")

def weird(output):
    return "yes"

def nan(output):
    return float("nan")
"""


@pytest.fixture
def user_file(tmp_path: Path) -> Path:
    (tmp_path / "evals").mkdir()
    path = tmp_path / "evals" / "checks.py"
    path.write_text(USER_FILE)
    return path


def py(fn: str, **extra: Any) -> Any:
    return build_evaluator({"type": "python", "function": f"evals/checks.py:{fn}", **extra})


def test_python_functions_get_what_they_name_and_may_return_many_shapes(user_file: Path) -> None:
    item = EvalInput("Please wait", reference="ok", id="c1")
    assert py("polite")(item).passed is True
    ratio = py("length_ratio", threshold=2.0)(item)
    assert ratio.value == 5.5 and ratio.passed is True and ratio.reason == "length relative to the reference"
    whole = py("whole")(item)
    assert (whole.value, whole.reason, whole.details) == (0.5, "saw Please wait", {"id": "c1"})
    scored = py("scored")(item)
    assert scored.reason == "custom" and "reference" in scored.details["keys"]
    assert py("later")(item).value == 0.25


def test_a_raising_function_is_an_error_score_not_a_crash(user_file: Path) -> None:
    ev = py("broken")
    scores = ev.run([EvalInput("a"), EvalInput("b")])
    assert [s.error for s in scores] == ["KeyError: 'no such field'"] * 2
    assert "broken" in scores[0].reason and "KeyError" in scores[0].details["traceback"]
    assert "expected bool, number" in (py("weird")(EvalInput("a")).error or "")
    assert "not a finite number" in (py("nan")(EvalInput("a")).error or "")


def test_missing_files_and_functions_are_named(user_file: Path) -> None:
    with pytest.raises(InvalidInputError, match=r"evals/nope\.py does not exist"):
        build_evaluator({"type": "python", "function": "evals/nope.py:f"})
    with pytest.raises(InvalidInputError, match="has no function 'missing'") as exc:
        py("missing")
    assert "polite" in (exc.value.hint or "")
    with pytest.raises(InvalidInputError, match=r"PATH\.py:NAME"):
        build_evaluator({"type": "python", "function": "checks"})
    (user_file.parent / "bad.py").write_text("import no_such_module_here\n")
    with pytest.raises(InvalidInputError, match="failed to import"):
        build_evaluator({"type": "python", "function": "evals/bad.py:f"})
    (user_file.parent / "odd.py").write_text("def f(output, banana): return 1\n")
    with pytest.raises(InvalidInputError, match="'banana'"):
        build_evaluator({"type": "python", "function": "evals/odd.py:f"})


def test_python_paths_resolve_against_the_context_root(user_file: Path, tmp_path: Path) -> None:
    elsewhere = tmp_path / "sub"
    elsewhere.mkdir()
    ctx = BuildContext(root=tmp_path)
    ev = build_evaluator({"type": "python", "function": "evals/checks.py:polite"}, context=ctx)
    assert ev(EvalInput("please")).passed is True


def test_editing_the_function_file_makes_a_new_version(user_file: Path) -> None:
    before = py("polite").version
    user_file.write_text(USER_FILE + "\n# changed\n")
    assert py("polite").version != before


def test_plain_callables_become_evaluators() -> None:
    def short(output: str) -> tuple[bool, str]:
        return len(output) < 10, "short enough"

    ev = as_evaluator(short)
    assert ev.name == "short" and ev.spec()["type"] == "callable"
    assert ev(EvalInput("tiny")).passed is True
    assert as_evaluator(ev) is ev
    assert as_evaluator(lambda item: item.output == "x")(EvalInput("x")).value == 1.0


# -- specs, versions, plugins ---------------------------------------------------------------------------


def test_spec_round_trips_and_versions_ignore_the_display_name() -> None:
    ev = build_evaluator({"type": "regex", "pattern": "a+", "name": "has_a"})
    assert ev.name == "has_a"
    again = build_evaluator(ev.spec())
    assert again.version == ev.version and again.name == "has_a"
    assert build_evaluator({"type": "regex", "pattern": "a+"}).version == ev.version
    assert build_evaluator({"type": "regex", "pattern": "b+"}).version != ev.version
    assert ev.version.startswith("sha256:")
    judge = {"type": "llm_judge", "model": "scripted/j", "rubric": "be right"}
    assert (
        build_evaluator({**judge, "scale": "1-5"}).version
        == build_evaluator({**judge, "scale": [1, 5]}).version
    )


def test_unknown_types_and_keys_are_named() -> None:
    with pytest.raises(InvalidInputError, match="unknown evaluator type 'fuzzy'") as exc:
        build_evaluator({"type": "fuzzy"})
    assert "regex" in (exc.value.hint or "")
    with pytest.raises(InvalidInputError, match="unknown key\\(s\\) 'treshold'") as exc:
        build_evaluator({"type": "token_f1", "treshold": 0.5})
    assert "threshold" in (exc.value.hint or "")
    with pytest.raises(InvalidInputError, match="missing key\\(s\\) 'pattern'"):
        build_evaluator({"type": "regex"})
    with pytest.raises(InvalidInputError, match="'threshold' must be"):
        build_evaluator({"type": "token_f1", "threshold": "high"})
    with pytest.raises(InvalidInputError, match="no 'type'"):
        build_evaluator({"pattern": "x"})


def test_builtin_registry_lists_every_builtin() -> None:
    kinds = builtin_registry().kinds()
    for kind in ("exact", "normalized", "contains", "regex", "json_valid", "json_schema", "numeric"):
        assert kind in kinds
    for kind in ("token_f1", "embedding_similarity", "python", "llm_judge", "pairwise_judge", "human"):
        assert kind in kinds


class _EntryPoint:
    def __init__(self, name: str, load: Any) -> None:
        self.name, self.value, self._load = name, f"plugin:{name}", load

    def load(self) -> Any:
        return self._load()


def test_plugins_register_through_the_entry_point_group(monkeypatch: pytest.MonkeyPatch) -> None:
    def register(registry: EvaluatorRegistry) -> None:
        registry.add_evaluator("shouty", lambda config, ctx: Exact(name="shouty"), description="test")

    def broken() -> Any:
        raise ImportError("missing dependency")

    eps = [_EntryPoint("shouty", lambda: register), _EntryPoint("broken", broken)]
    seen: list[str] = []

    def entry_points(*, group: str) -> list[_EntryPoint]:
        seen.append(group)
        return eps

    import honed.plugins

    monkeypatch.setattr(honed.plugins.importlib.metadata, "entry_points", entry_points)
    reg = EvaluatorRegistry()
    assert reg.build({"type": "shouty"}).name == "shouty"
    assert seen == ["honed.evaluators"]
    with pytest.raises(ConfigError, match="failed to load: missing dependency"):
        reg.build({"type": "broken"})


def test_sync_evaluators_work_inside_an_event_loop() -> None:
    ev = build_evaluator({"type": "exact"})

    async def main() -> list[Score]:
        return await ev.evaluate_many([EvalInput("a", reference="a"), EvalInput("b", reference="a")])

    assert [s.passed for s in asyncio.run(main())] == [True, False]


# -- embeddings (the real local MiniLM) -----------------------------------------------------------------


@pytest.mark.slow
def test_embedding_similarity_prefers_a_paraphrase() -> None:
    ev = build_evaluator({"type": "embedding_similarity", "threshold": 0.6})
    ref = "The cat sat on the mat."
    items = [
        EvalInput("A cat was sitting on the rug.", reference=ref),
        EvalInput("Stock markets fell sharply today.", reference=ref),
        EvalInput("no reference"),
    ]
    para, unrelated, missing = ev.run(items)
    assert para.value is not None and unrelated.value is not None
    assert para.value > unrelated.value + 0.3
    assert para.passed is True and unrelated.passed is False and "cosine" in para.reason
    assert missing.error == "no reference to compare against"
    assert ev(EvalInput(ref, reference=["something else", ref])).value == pytest.approx(1.0, abs=1e-4)
    with pytest.raises(ConfigError, match="not available"):
        build_evaluator({"type": "embedding_similarity", "model": "bge-large"})


def test_public_names_exist_and_importing_loads_nothing_heavy() -> None:
    import subprocess
    import sys

    from honed.evals import evaluators

    for name in evaluators.__all__:
        assert hasattr(evaluators, name), name
    code = (
        "import sys, honed.evals.evaluators, honed.cli.review; "
        "print([m for m in ('torch', 'sentence_transformers', 'scipy') if m in sys.modules])"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
