"""The `honed` app: noun groups with verb subcommands. Errors become one line and a non-zero exit here."""

from __future__ import annotations

import sys

import typer

from honed import __version__
from honed.cli import (
    curate,
    datasets,
    db,
    evals,
    experiments,
    finetune,
    finetune_compare,
    kb,
    logs,
    models,
    optimize,
    prompts,
    review,
    serve,
    tokens,
    workspace,
)
from honed.errors import HonedError, RunInterrupted
from honed.secrets import mask

app = typer.Typer(
    name="honed",
    help="Evals, prompts, RAG and fine-tuning for LLM applications, measured. Run `honed init` to start.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
app.command("init")(workspace.init)
app.add_typer(workspace.config_app, name="config")
app.add_typer(db.app, name="db")
app.add_typer(models.app, name="models")
app.add_typer(prompts.app, name="prompts")
app.add_typer(datasets.app, name="datasets")
app.add_typer(experiments.app, name="experiments")
app.add_typer(evals.app, name="eval")
app.add_typer(kb.app, name="kb")
# Commands whose modules build on a group's own helpers are attached here, so neither module imports the
# other: `logs curate` reuses the log filters of cli/logs.py; `finetune export|compare` the data options.
logs.app.command("curate")(curate.curate)
finetune.app.command("export")(curate.export)
finetune.app.command("compare")(finetune_compare.compare)
app.add_typer(logs.app, name="logs")
app.add_typer(finetune.app, name="finetune")
app.command("serve")(serve.serve)
app.add_typer(tokens.app, name="tokens")
app.add_typer(optimize.app, name="optimize")
app.command("review")(review.review)


@app.callback(invoke_without_command=True)
def _root(
    version: bool = typer.Option(False, "--version", help="Print the version and exit."),
) -> None:
    if version:
        typer.echo(f"honed {__version__}")
        raise typer.Exit()


def run() -> None:
    """Console-script entry point: a `HonedError` prints one line on stderr and exits non-zero."""
    try:
        # Without standalone mode click returns (not raises) the code of a `typer.Exit`: pass it on.
        code = app(standalone_mode=False)
        sys.exit(code if isinstance(code, int) else 0)
    except RunInterrupted as exc:
        sys.stderr.write(f"{exc.one_line()}\n")
        sys.exit(exc.exit_code)
    except HonedError as exc:
        sys.stderr.write(f"error: {exc.one_line()}\n")
        sys.exit(exc.exit_code)
    except typer.Exit as exc:
        sys.exit(exc.exit_code)
    except typer.Abort:
        sys.stderr.write("aborted\n")
        sys.exit(130)
    except KeyboardInterrupt:
        sys.stderr.write("interrupted\n")
        sys.exit(130)
    except Exception as exc:  # click usage errors and the like
        import click

        if isinstance(exc, click.ClickException):
            exc.show()
            sys.exit(exc.exit_code)
        # A bug: the traceback is worth having, but a foreign library's message may quote a key or a URL
        # with its password, so it is printed through the same masker as every other error.
        import traceback

        sys.stderr.write(mask("".join(traceback.format_exception(exc))))
        sys.exit(1)
