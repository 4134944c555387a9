"""`honed import promptfoo|openai-evals`: parsing and printing only; the work is in `honed.importers`."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TypedDict

import typer

from honed.cli.common import JsonOption, err_console, open_honed, print_json
from honed.cli.option_sets import OptionSet, unset
from honed.importers import Imported, ModelMap, import_openai_evals, import_promptfoo
from honed.importers.openai_evals import DEFAULT_MODEL

app = typer.Typer(
    help="Import suites from other tools (promptfoo, OpenAI Evals) as honed prompts, a dataset and an "
    "experiment spec.",
    no_args_is_help=True,
)


@dataclass(frozen=True)
class Target:
    """What both importers take besides their suite: the model map, where the files go, the name, and
    whether to run the experiment and print JSON."""

    model_map: list[str]
    out: Path | None
    name: str | None
    run: bool
    json_out: bool

    def shared(self) -> Shared:
        """The keywords both importers take from it (the model map parsed: a bad rule fails here)."""
        return {"models": ModelMap.parse(self.model_map), "out": self.out, "name": self.name}


class Shared(TypedDict):
    """The keywords of `import_promptfoo` and `import_openai_evals` that `Target` gives."""

    models: ModelMap
    out: Path | None
    name: str | None


TARGET = OptionSet(
    {
        "model_map": (
            list[str],
            typer.Option(
                [],
                "--model-map",
                "-m",
                metavar="PATTERN=ENDPOINT/MODEL",
                help="Map the suite's providers to honed models, e.g. 'openai:*=local/smollm2-135m-instruct' "
                "(`*` matches anything; the first matching rule wins; repeatable).",
            ),
        ),
        "out": (
            Path | None,
            typer.Option(
                None,
                "--out",
                "-o",
                help="Folder for the honed files (default: honed-import/ beside the suite's file).",
            ),
        ),
        "name": unset("--name", "Name of the dataset and the experiment (default: from the suite)."),
        "run": (
            bool,
            typer.Option(
                False,
                "--run",
                help="Then run the experiment, as `honed experiments run SPEC` does, and print its "
                "comparison.",
            ),
        ),
        "json_out": (bool, JsonOption),
    },
    Target,
)


@app.command("promptfoo")
@TARGET.into("target")
def promptfoo(
    config: Path = typer.Argument(..., help="The promptfoo config (promptfooconfig.yaml)."),
    *,
    target: Target,
) -> None:
    """Import a promptfoo config: prompts, providers (via --model-map), tests and their assertions.

    Nothing is written or recorded unless every prompt, provider, test and assertion maps; what does not
    is one error line naming it and where it is.

    Examples:
      honed import promptfoo promptfooconfig.yaml --model-map 'openai:*=local/smollm2-135m-instruct'
      honed import promptfoo evals/promptfooconfig.yaml -m "openai:*=openai/gpt-4o-mini" -o evals/h --run
    """
    shared = target.shared()
    with open_honed() as h:
        done = import_promptfoo(h.store, config, default_model=h.settings.default_model, **shared)
    _finish(done, target)


@app.command("openai-evals")
@TARGET.into("target")
def openai_evals(
    file: Path = typer.Argument(
        ..., help="An openai/evals registry YAML, or an Evals API definition (JSON)."
    ),
    data: Path | None = typer.Option(
        None,
        "--data",
        help="Registry: the data folder samples_jsonl is relative to (default: ../data beside the file). "
        "Evals API: the JSONL file of items.",
    ),
    eval_id: str | None = typer.Option(
        None, "--eval", help="Which eval of the file (when it holds several)."
    ),
    model: str = typer.Option(
        DEFAULT_MODEL,
        "--model",
        help="The model under test where the file names none (mapped as openai:NAME with --model-map).",
    ),
    *,
    target: Target,
) -> None:
    """Import an OpenAI eval: an openai/evals registry eval (Match, Includes, FuzzyMatch, model-graded
    fact/closedqa) or a hosted Evals API definition (string_check, text_similarity, label_model,
    score_model, python graders).

    Examples:
      honed import openai-evals registry/evals/test-basic.yaml --eval test-match -m 'openai:*=local/m'
      honed import openai-evals eval.json --data items.jsonl -m 'openai:*=openai/gpt-4o-mini' --run
    """
    shared = target.shared()
    with open_honed() as h:
        done = import_openai_evals(h.store, file, data=data, eval_id=eval_id, model=model, **shared)
    _finish(done, target)


def _finish(done: Imported, target: Target) -> None:
    run, json_out = target.run, target.json_out
    if json_out and not run:
        print_json(done.to_dict())
        return
    lines = [f"wrote {done.out}"]
    for p in done.prompts:
        lines.append(f"  prompt {p['name']} v{p['version']} ({'new' if p['created'] else 'unchanged'})")
    ds = done.dataset
    lines.append(f"  dataset {ds['name']} v{ds['version']} · {ds['cases']} case(s) · {ds['status']}")
    lines.append(
        f"  experiment {done.spec.name}: {done.variants} variant(s); evaluators {', '.join(done.evaluators)}"
    )
    if not run:
        lines.append(f"run it: honed experiments run {done.spec}")
    for line in lines:
        # With --run, stdout is the run's report (JSON with --json): the import's summary goes to stderr.
        if run:
            err_console.print(line, markup=False, highlight=False)
        else:
            typer.echo(line)
    if run:
        from honed.cli.experiments import run_spec_file

        run_spec_file(done.spec, json_out=json_out)
