"""The `honed` app: noun groups with verb subcommands. Errors become one line and a non-zero exit here."""

from __future__ import annotations

import sys
from typing import Any

import typer

from honed import __version__
from honed.cli.lazy import Entry, LazyGroup, lazy_group
from honed.errors import HonedError, RunInterrupted
from honed.secrets import mask


def _attach(app: typer.Typer, name: str, target: str) -> None:
    """Add `module:function` to `app` as command `name` (once: the app may be built again in a process)."""
    if any(info.name == name for info in app.registered_commands):
        return
    import importlib

    module, _, function = target.partition(":")
    app.command(name)(getattr(importlib.import_module(module), function))


def _logs_extra(app: typer.Typer) -> None:
    # Commands whose modules build on a group's own helpers are attached here, so neither module imports
    # the other: `logs curate` reuses the log filters of cli/logs.py; `finetune export|compare` the data
    # options.
    _attach(app, "curate", "honed.cli.curate:curate")


def _finetune_extra(app: typer.Typer) -> None:
    _attach(app, "export", "honed.cli.curate:export")
    _attach(app, "compare", "honed.cli.finetune_compare:compare")


# Each noun's module is imported only when it is called (see honed.cli.lazy); the help lines are the
# modules' own, which tests/cli/test_cold_start.py checks.
COMMANDS = (
    Entry(
        "init",
        "honed.cli.workspace:init",
        "Create a workspace: honed.toml and the .honed/ data folder, with a migrated database.",
    ),
    Entry(
        "serve",
        "honed.cli.serve:serve",
        "Serve /v1/models and /v1/chat/completions so any OpenAI client can use honed's models, and "
        "/v1/logs and /v1/feedback so applications in any language can log generations and feedback.",
    ),
    Entry(
        "ui",
        "honed.cli.serve:ui",
        "Open the web UI: honed serve --open --no-warm on 127.0.0.1.",
    ),
    Entry(
        "review",
        "honed.cli.review:review",
        "Label model outputs by hand in the terminal, from a JSONL file or an experiment run (--run).",
    ),
    Entry(
        "config",
        "honed.cli.workspace:config_app",
        "Inspect settings.",
    ),
    Entry(
        "db",
        "honed.cli.db:app",
        "The workspace database (SQLite by default, PostgreSQL via HONED_DATABASE_URL).",
    ),
    Entry(
        "models",
        "honed.cli.models:app",
        "Call models: list the models you can call and run prompts.",
    ),
    Entry(
        "prompts",
        "honed.cli.prompts:app",
        "Versioned prompts and chains: push files, list, show, diff, label and run versions.",
    ),
    Entry(
        "datasets",
        "honed.cli.datasets:app",
        "Versioned datasets of cases: import JSONL/CSV, list, show, export.",
    ),
    Entry(
        "experiments",
        "honed.cli.experiments:app",
        "Run a matrix of prompt versions x models x params over a dataset, and compare.",
    ),
    Entry(
        "import",
        "honed.cli.imports:app",
        "Import suites from other tools (promptfoo, OpenAI Evals) as honed prompts, a dataset and an "
        "experiment spec.",
    ),
    Entry(
        "eval",
        "honed.cli.evals:app",
        "Gate CI on evals: thresholds and significant regressions.",
    ),
    Entry(
        "kb",
        "honed.cli.kb:app",
        "Knowledge bases for retrieval: create, ingest files, search, evaluate retrieval.",
    ),
    Entry(
        "logs",
        "honed.cli.logs:app",
        "Logged generations: list and filter them, add feedback, score them with evaluators.",
        _logs_extra,
    ),
    Entry(
        "finetune",
        "honed.cli.finetune:app",
        "Fine-tuning jobs: LoRA on the local model or OpenAI's API. Jobs run in the background.",
        _finetune_extra,
    ),
    Entry(
        "tokens",
        "honed.cli.tokens:app",
        "API tokens for `honed serve`: needed to listen beyond 127.0.0.1. Stored only as hashes.",
    ),
    Entry(
        "optimize",
        "honed.cli.optimize:app",
        "The optimisation loop: diagnose the gap, run each step on the same dataset version, see what "
        "each bought.",
    ),
)

app = typer.Typer(
    name="honed",
    cls=lazy_group(COMMANDS),
    help="Evals, prompts, RAG and fine-tuning for LLM applications, measured. Run `honed init` to start.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


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
        command = typer.main.get_command(app)
        _plain_flags(command)
        if isinstance(command, LazyGroup):
            command.prepare = _plain_flags
        code = command(standalone_mode=False)
        sys.exit(code if isinstance(code, int) else 0)
    except RunInterrupted as exc:
        sys.stderr.write(f"{exc.one_line()}\n")
        sys.exit(exc.exit_code)
    except HonedError as exc:
        sys.stderr.write(f"error: {exc.one_line()}\n")
        sys.exit(exc.exit_code)
    except typer.Exit as exc:
        sys.exit(exc.exit_code)
    except typer.TyperException as exc:
        # Typer vendors its own click (`typer._click`), so its usage errors are not `click.ClickException`s;
        # `TyperException` is their public base.
        sys.stderr.write(_usage_error_line(exc))
        sys.exit(exc.exit_code)
    except typer.Abort:
        sys.stderr.write("aborted\n")
        sys.exit(130)
    except KeyboardInterrupt:
        sys.stderr.write("interrupted\n")
        sys.exit(130)
    except Exception as exc:
        # A bug: the traceback is worth having, but a foreign library's message may quote a key or a URL
        # with its password, so it is printed through the same masker as every other error.
        import traceback

        sys.stderr.write(mask("".join(traceback.format_exception(exc))))
        sys.exit(1)


def _usage_error_line(exc: typer.TyperException) -> str:
    """Click's message (and its suggestion) on one line, with where to read the command's help.

    A group called without its command (`no_args_is_help`) has already printed its help: nothing to add.
    """
    if type(exc).__name__ == "NoArgsIsHelpError":
        return ""
    message = " ".join(exc.format_message().split())
    ctx = getattr(exc, "ctx", None)
    if ctx is not None and ctx.command.get_help_option(ctx) is not None:
        message += f" (see `{ctx.command_path} {ctx.help_option_names[0]}`)"
    return f"error: {message}\n"


def _plain_flags(command: Any) -> None:
    """Show flags (`--json`, `--force`, `--help`) without a type: typer's help prints `<bool>` after every
    option, which makes a flag look as if it took a value. An empty metavar leaves the type column blank."""
    for param in [*command.params, command.get_help_option(typer.Context(command))]:
        if param is not None and getattr(param, "is_flag", False):
            param.metavar = ""
    for sub in getattr(command, "commands", {}).values():
        _plain_flags(sub)
