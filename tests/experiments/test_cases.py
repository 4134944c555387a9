"""`honed experiments cases`: what each variant answered, case by case, through the real CLI.

`scripted/echo` answers with the user message, so a case's input decides its output: prompt v1 asks the
bare input, v2 prefixes "The answer: ", and the references make c0 and c1 regress under v2, c3 improve,
and c2 fail under both. A `python` check raises on outputs that mention Spain.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from honed.config import init_workspace
from tests.support.cli import assert_one_line_error, honed

CASES = [
    {"id": "c0", "inputs": {"country": "France"}, "reference": "France"},
    {"id": "c1", "inputs": {"country": "Spain"}, "reference": "Spain"},
    {"id": "c2", "inputs": {"country": "Chile"}, "reference": "Santiago"},
    {"id": "c3", "inputs": {"country": "Italy"}, "reference": "The answer: Italy"},
]


def _prompt(workspace: Path, file: str, content: str, model: str = "scripted/echo") -> None:
    (workspace / file).write_text(
        f"name: qa\nmodel: {model}\nmessages:\n  - {{role: user, content: '{content}'}}\n"
    )


def _run(workspace: Path, cases: list[dict[str, object]] = CASES, **spec: object) -> str:
    (workspace / "cases.jsonl").write_text("".join(json.dumps(c) + "\n" for c in cases))
    assert honed("datasets", "import", "d", "cases.jsonl", cwd=workspace).returncode == 0
    _prompt(workspace, "v1.yaml", "{{ country }}")
    _prompt(workspace, "v2.yaml", "The answer: {{ country }}")
    (workspace / "checks.py").write_text(
        "def check(output):\n"
        "    if 'Spain' in output:\n"
        "        raise ValueError('Spain is not allowed')\n"
        "    return 1.0\n"
    )
    body = {
        "name": "e",
        "dataset": "d",
        "variants": [{"prompt": "v1.yaml"}, {"prompt": "v2.yaml"}],
        "evaluators": [{"type": "exact"}, {"type": "python", "function": "checks.py:check"}],
        **spec,
    }
    (workspace / "exp.yaml").write_text(json.dumps(body))
    r = honed("experiments", "run", "exp.yaml", "--json", cwd=workspace)
    assert r.returncode == 3, r.stderr  # the python check raised on the Spain case
    return str(json.loads(r.stdout)["run"]["id"])


@pytest.fixture(scope="module")
def shared(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    """A workspace holding one run of `_run`'s default experiment, for the tests that only read it (each
    `experiments run` costs seconds): (workspace, run id)."""
    root = init_workspace(tmp_path_factory.mktemp("cases"))
    return root, _run(root)


def _cases(workspace: Path, run_id: str, *args: str) -> dict[str, object]:
    r = honed("experiments", "cases", run_id, *args, "--json", cwd=workspace)
    assert r.returncode == 0, r.stderr
    out: dict[str, object] = json.loads(r.stdout)
    return out


def _ids(listing: dict[str, object]) -> list[str]:
    return [c["case_id"] for c in listing["cases"]]  # type: ignore[attr-defined]


def test_cases_show_inputs_reference_outputs_scores_and_reasons(shared: tuple[Path, str]) -> None:
    workspace, run_id = shared
    listing = _cases(workspace, run_id)
    assert listing["variants"] == ["qa@v1", "qa@v2"] and listing["baseline"] == "qa@v1"
    assert _ids(listing) == ["c0", "c1", "c2", "c3"] and listing["matched"] == 4
    c0 = listing["cases"][0]  # type: ignore[index]
    assert c0["inputs"] == {"country": "France"} and c0["reference"] == "France"
    [v1], [v2] = c0["outputs"]["qa@v1"], c0["outputs"]["qa@v2"]
    assert v1["output"] == "France" and v2["output"] == "The answer: France"
    exact = {s["evaluator"]: s for s in v2["scores"]}["exact"]
    assert (
        exact["passed"] is False and exact["value"] == 0 and "differs from the reference" in exact["reason"]
    )
    assert [(c["evaluator"], c["kind"], c["variant"]) for c in c0["changes"]] == [
        ("exact", "regression", "qa@v2")
    ]
    # The evaluator's exception is kept on its score row, message and all.
    c1 = listing["cases"][1]  # type: ignore[index]
    python = {s["evaluator"]: s for s in c1["outputs"]["qa@v2"][0]["scores"]}["python"]
    assert python["value"] is None and "ValueError: Spain is not allowed" in python["error"]


def _listing(workspace: Path, run_id: str, **filters: Any) -> dict[str, object]:
    """`list_cases`, the function `honed experiments cases` calls, in this process (a subprocess per
    filter cost ~3 s each; one CLI call below checks the flags reach it)."""
    import honed as honed_api
    from honed.experiments import list_cases

    with honed_api.connect(workspace) as h:
        return list_cases(h.store, run_id, **filters).to_dict()


def test_filters_select_the_cases_the_comparison_counted(shared: tuple[Path, str]) -> None:
    workspace, run_id = shared
    r = honed("experiments", "compare", run_id, "--json", cwd=workspace)
    exact = json.loads(r.stdout)["evaluators"]["exact"]["comparisons"]["qa@v2"]
    regressions = _ids(_listing(workspace, run_id, changed="regressions"))
    assert regressions == [d["case_id"] for d in exact["regressions"]] == ["c0", "c1"]
    assert _ids(_listing(workspace, run_id, changed="improvements")) == ["c3"]
    assert _ids(_listing(workspace, run_id, failed="exact")) == ["c0", "c1", "c2", "c3"]
    assert _ids(_listing(workspace, run_id, failed="exact", variants=["qa@v2"])) == ["c0", "c1", "c2"]
    assert _ids(_listing(workspace, run_id, errors=True)) == ["c1"]
    assert _ids(_listing(workspace, run_id, search="santiago")) == ["c2"]  # the reference
    assert _ids(_listing(workspace, run_id, search="answer: ita")) == ["c3"]  # an output (and reference)
    assert _ids(_listing(workspace, run_id, changed="regressions", search="spain")) == ["c1"]
    # Against v2 as the baseline, what regressed under v2 improved under v1.
    assert _ids(_listing(workspace, run_id, changed="improvements", baseline="qa@v2")) == ["c0", "c1"]
    only = _listing(workspace, run_id, variants=["qa@v2"], limit=1)
    assert only["variants"] == ["qa@v1", "qa@v2"] and only["matched"] == 4 and _ids(only) == ["c0"]
    # The command line reaches the same function with every flag.
    cli = _cases(
        workspace, run_id, "--regressions", "--search", "spain", "--variant", "qa@v2", "--limit", "5"
    )
    same = _listing(workspace, run_id, changed="regressions", search="spain", variants=["qa@v2"], limit=5)
    assert cli == same and _ids(cli) == ["c1"]
    cli = _cases(workspace, run_id, "--improvements", "--baseline", "qa@v2", "--failed", "exact", "--errors")
    same = _listing(workspace, run_id, changed="improvements", baseline="qa@v2", failed="exact", errors=True)
    assert cli == same and _ids(cli) == ["c1"]  # improved under v1, failed exact, and errored


@pytest.mark.slow
def test_the_terminal_shows_one_block_per_case_and_cuts_long_outputs(workspace: Path) -> None:
    long = "word " * 300
    cases = [*CASES, {"id": "c4", "inputs": {"country": long}, "reference": "x"}]
    run_id = _run(workspace, cases)
    r = honed("experiments", "cases", run_id, "--regressions", cwd=workspace)
    assert r.returncode == 0, r.stderr
    out = r.stdout
    assert "case c0" in out and "case c1" in out and "case c2" not in out
    assert "regressed on exact under qa@v2 (pass → fail)" in out
    assert "The answer: France" in out and "reference France" in out
    assert "qa@v1 (baseline)" in out and "exact: 0 FAIL" in out
    assert "python: error ValueError: Spain is not allowed" in out
    assert "2 of 2 cases regressed against qa@v1 in run" in out
    r = honed("experiments", "cases", run_id, "--search", "word word", "--limit", "1", cwd=workspace)
    assert "--full shows all" in r.stdout and r.stdout.count("word") < 300
    full = honed("experiments", "cases", run_id, "--search", "word word", "--full", cwd=workspace)
    assert full.stdout.count("word") >= 600 and "--full shows all" not in full.stdout  # input and output
    r = honed("experiments", "cases", run_id, "--limit", "2", cwd=workspace)
    assert "2 of 5 cases in run" in r.stdout and "--limit 5 shows all" in r.stdout
    r = honed("experiments", "cases", run_id, "--search", "nothing like this", cwd=workspace)
    assert r.returncode == 0 and "no cases containing 'nothing like this'" in r.stdout


@pytest.mark.slow
def test_repeats_show_each_sample(workspace: Path) -> None:
    run_id = _run(workspace, repeats=2)
    c0 = _cases(workspace, run_id, "--limit", "1")["cases"][0]  # type: ignore[index]
    assert [s["sample"] for s in c0["outputs"]["qa@v2"]] == [0, 1]
    r = honed("experiments", "cases", run_id, "--limit", "1", cwd=workspace)
    assert "qa@v2 · sample 0" in r.stdout and "qa@v2 · sample 1" in r.stdout


def test_bad_requests_are_one_line_errors(shared: tuple[Path, str]) -> None:
    workspace, run_id = shared
    assert_one_line_error(
        honed("experiments", "cases", run_id, "--failed", "nope", cwd=workspace),
        "no evaluator 'nope'",
        "exact, python",
    )
    assert_one_line_error(
        honed("experiments", "cases", run_id, "--failed", "python", cwd=workspace), "without pass/fail"
    )
    assert_one_line_error(
        honed("experiments", "cases", run_id, "--regressions", "--improvements", cwd=workspace),
        "exclude each other",
    )
    assert_one_line_error(
        honed("experiments", "cases", run_id, "--variant", "qa@v7", cwd=workspace), "no variant 'qa@v7'"
    )


def test_show_and_compare_print_the_evaluator_errors_grouped(shared: tuple[Path, str]) -> None:
    workspace, run_id = shared
    for command in ("show", "compare"):
        r = honed("experiments", command, run_id, cwd=workspace)
        assert r.returncode == 0, r.stderr
        assert "2 score(s) could not be computed" in r.stdout
        assert "2 x python: ValueError: Spain is not allowed" in r.stdout
        assert f"honed experiments cases {run_id} --errors" in r.stdout
    r = honed("experiments", "show", run_id, "--json", cwd=workspace)
    [group] = json.loads(r.stdout)["errors"]
    assert group == {"where": "python", "message": "ValueError: Spain is not allowed", "count": 2}


def test_a_baseline_given_as_a_prompt_version_finds_its_variant(workspace: Path) -> None:
    (workspace / "honed.toml").write_text('[endpoints.other]\nprovider = "scripted"\nreplies = ["Paris"]\n')
    run_id = _run(
        workspace,
        variants=[],
        matrix={"prompt": ["v1.yaml", "v2.yaml"], "model": ["scripted/echo", "other/m"]},
    )
    variants = json.loads(honed("experiments", "show", run_id, "--json", cwd=workspace).stdout)["variants"]
    assert variants == ["qa@v1 echo", "qa@v1 m", "qa@v2 echo", "qa@v2 m"]
    r = honed("experiments", "compare", run_id, "--baseline", "qa@v2 echo", "--json", cwd=workspace)
    assert r.returncode == 0 and json.loads(r.stdout)["baseline"] == "qa@v2 echo"
    assert_one_line_error(
        honed("experiments", "compare", run_id, "--baseline", "qa@v1", cwd=workspace),
        "'qa@v1' matches 2 variants",
        "qa@v1 echo, qa@v1 m",
    )
    # One variant per prompt version: the prompt reference is enough.
    (workspace / "exp.yaml").write_text(
        json.dumps(
            {
                "name": "e2",
                "dataset": "d",
                "variants": [
                    {"prompt": "qa@v1", "model": "scripted/echo"},
                    {"prompt": "qa@v2", "model": "other/m"},
                ],
                "evaluators": [{"type": "exact"}],
            }
        )
    )
    r = honed("experiments", "run", "exp.yaml", "--json", cwd=workspace)
    assert r.returncode == 0, r.stderr
    run_id = json.loads(r.stdout)["run"]["id"]
    r = honed("experiments", "compare", run_id, "--baseline", "qa@v2", "--json", cwd=workspace)
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["baseline"] == "qa@v2 m"
