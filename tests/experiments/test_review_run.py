"""`honed review --run`: labels typed in the terminal become the run's `human` scores."""

from __future__ import annotations

from pathlib import Path

from honed.api import Honed
from honed.config import load_settings
from honed.experiments import parse_spec, resolve, run_experiment
from tests.experiments.test_runner import setup, spec
from tests.support.cli import assert_one_line_error, honed


def test_labels_are_stored_as_human_scores_and_resume(workspace: Path) -> None:
    h = setup(workspace, "scripted/echo", n_cases=2)
    run = run_experiment(h, resolve(h, parse_spec(spec())))
    h.close()
    # 4 items: label p, f, undo (f is taken back), p, then quit with one left
    r = honed(
        "review",
        "--run",
        run.id,
        "--scale",
        "pass_fail",
        "--reviewer",
        "ana",
        cwd=workspace,
        input="p\nf\nu\np\nq\n",
    )
    assert r.returncode == 0, r.stderr
    h = Honed(load_settings(start=workspace))
    human = [s for s in h.store.runs.scores(run.id) if s["evaluator"] == "human"]
    assert sorted(s["value"] for s in human) == [1.0, 1.0]
    assert all(s["passed"] is True and s["details"]["reviewer"] == "ana" for s in human)
    # the second session shows only what is left
    again = honed("review", "--run", run.id, "--scale", "pass_fail", cwd=workspace, input="f\nf\n")
    assert "already labelled" in again.stdout
    human = [s for s in h.store.runs.scores(run.id) if s["evaluator"] == "human"]
    assert len(human) == 4 and sorted(s["value"] for s in human) == [0.0, 0.0, 1.0, 1.0]


def test_review_needs_exactly_one_source(workspace: Path) -> None:
    assert_one_line_error(honed("review", cwd=workspace), "outputs file or --run")


def test_calibrate_a_judge_against_human_labels(workspace: Path) -> None:
    import json

    h = setup(workspace, "scripted/echo", n_cases=2)
    # a "judge" that passes every output: it agrees with the humans who pass, disagrees with those who fail
    run = run_experiment(
        h,
        resolve(
            h, parse_spec(spec(evaluators=[{"type": "contains", "name": "judge", "strings": ["country"]}]))
        ),
    )
    h.close()
    honed("review", "--run", run.id, "--scale", "pass_fail", cwd=workspace, input="p\np\np\nf\n")
    r = honed(
        "eval", "calibrate", run.id, "--judge", "judge", "--scale", "pass_fail", "--json", cwd=workspace
    )
    assert r.returncode == 0, r.stderr
    report = json.loads(r.stdout)
    assert report["n"] == 4 and report["accuracy"] == 0.75
    assert_one_line_error(
        honed("eval", "calibrate", run.id, "--judge", "nobody", cwd=workspace), "no scores from 'nobody'"
    )


def test_human_labels_appear_in_the_comparison(workspace: Path) -> None:
    import json

    h = setup(workspace, "scripted/echo", n_cases=2)
    run = run_experiment(h, resolve(h, parse_spec(spec())))
    h.close()
    honed("review", "--run", run.id, "--scale", "pass_fail", cwd=workspace, input="p\np\nf\nf\n")
    report = json.loads(honed("experiments", "compare", run.id, "--json", cwd=workspace).stdout)
    assert set(report["evaluators"]) == {"exact", "human"}
    human = report["evaluators"]["human"]["summaries"]
    assert human["qa@v1"]["pass_rate"] == 1.0 and human["qa@v2"]["pass_rate"] == 0.0


def test_results_not_labelled_yet_are_not_errors(workspace: Path) -> None:
    import json

    h = setup(workspace, "scripted/echo", n_cases=4)
    run = run_experiment(h, resolve(h, parse_spec(spec())))
    h.close()
    # Two of the eight results labelled, then quit: six are not labelled yet, and none failed.
    honed("review", "--run", run.id, "--scale", "pass_fail", cwd=workspace, input="p\nf\nq\n")
    report = json.loads(honed("experiments", "compare", run.id, "--json", cwd=workspace).stdout)
    human = report["evaluators"]["human"]["summaries"]
    assert sum(s["n_scored"] for s in human.values()) == 2
    assert [s["n_errors"] for s in human.values()] == [0, 0]
    assert sum(s["n_absent"] for s in human.values()) == 6
    shown = honed("experiments", "show", run.id, cwd=workspace, env={"COLUMNS": "100"}).stdout
    assert "not scored (not labelled yet, or no reference): qa@v1 2, qa@v2 4" in shown, shown
