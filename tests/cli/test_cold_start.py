"""What a `honed` process imports and loads before it answers: behaviour, not timings.

Each command runs in a fresh interpreter (as the console script does) that writes, on exit, the modules
it imported; a command must not import what it does not use (the store for `--help`, torch and the
vector store for a BM25 search) nor load a model the response or embedding cache answers for.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from typer.main import get_command

import honed
from honed.config import init_workspace
from honed.rag.index.kb import KnowledgeBaseConfig, create_kb, get_kb
from tests.support.stub_openai import stub_openai

# Runs `honed ARGS` in this interpreter and writes the imported modules' names to the file named first.
PROBE = """
import atexit, json, sys
out = sys.argv[1]
sys.argv = ["honed", *sys.argv[2:]]
atexit.register(lambda: open(out, "w").write(json.dumps(sorted(sys.modules))))
from honed.cli.main import run
run()
"""
HEAVY = ("torch", "transformers", "sentence_transformers", "chromadb")


def probe(tmp_path: Path, cwd: Path, *args: str) -> tuple[subprocess.CompletedProcess[str], set[str]]:
    out = tmp_path / "modules.json"
    out.unlink(missing_ok=True)
    env = {k: v for k, v in os.environ.items() if not k.startswith("HONED_") or k == "HONED_MODEL_CACHE"}
    env["COLUMNS"] = "200"
    done = subprocess.run(
        [sys.executable, "-c", PROBE, str(out), *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    return done, set(json.loads(out.read_text())) if out.exists() else set()


def loaded(modules: set[str], *names: str) -> list[str]:
    return [n for n in names if n in modules or any(m.startswith(n + ".") for m in modules)]


def test_help_lists_every_command_without_importing_any(tmp_path: Path) -> None:
    from honed.cli.main import COMMANDS

    done, modules = probe(tmp_path, tmp_path, "--help")
    assert done.returncode == 0, done.stderr
    for entry in COMMANDS:
        assert f" {entry.name} " in done.stdout
    assert "Create a workspace" in done.stdout and "Knowledge bases for retrieval" in done.stdout
    assert loaded(modules, "honed.cli.kb", "honed.cli.models", "honed.store", "honed.api", "sqlalchemy") == []
    assert loaded(modules, "numpy", "pydantic", "alembic") == []


def test_each_listed_help_line_is_the_commands_own() -> None:
    from honed.cli.lazy import load
    from honed.cli.main import COMMANDS, app

    for entry in COMMANDS:
        command = load(entry)
        own = " ".join((command.help or "").split("\n\n")[0].split())
        assert entry.help == own, entry.name
    # Every command resolves through the root group, with the commands other modules attach.
    root = get_command(app)
    ctx = root.make_context("honed", ["--version"])
    finetune = root.get_command(ctx, "finetune")  # type: ignore[attr-defined]
    assert {"export", "compare"} <= set(finetune.commands)
    assert "curate" in root.get_command(ctx, "logs").commands  # type: ignore[attr-defined]


def test_the_head_revision_read_from_the_files_is_alembics() -> None:
    from honed.store import migrate

    assert migrate._head_from_files() == migrate.alembic_head_revision()


def test_a_bm25_search_loads_no_model_library_and_no_vector_store(tmp_path: Path) -> None:
    with stub_openai() as stub:
        root = init_workspace(tmp_path / "ws")
        with (root / "honed.toml").open("a", encoding="utf-8") as toml:
            toml.write(f'\n[endpoints.stub]\nprovider = "openai"\nbase_url = "{stub.base_url}"\n')
        (root / "docs").mkdir()
        (root / "docs" / "returns.md").write_text("# Returns\n\nReturns take 30 days.\n", encoding="utf-8")
        for args in (("kb", "create", "docs", "--embedder", "stub/emb"), ("kb", "ingest", "docs", "docs")):
            done, _ = probe(tmp_path, root, *args)
            assert done.returncode == 0, done.stderr
        done, modules = probe(
            tmp_path, root, "kb", "search", "docs", "how long do returns take", "--method", "bm25"
        )
    assert done.returncode == 0, done.stderr
    assert "returns.md#" in done.stdout
    assert loaded(modules, *HEAVY) == []
    # Nor what it does not use: Alembic (the store is at the newest revision), evaluators, the SDK.
    assert loaded(modules, "alembic", "honed.evals", "openai", "aiohttp") == []


@pytest.mark.slow
def test_cached_answers_need_no_model(tmp_path: Path) -> None:
    """A repeated `models run` is answered by the response cache, and a repeated dense search by the
    embedding cache, before any model is loaded."""
    root = init_workspace(tmp_path / "ws")
    run = ("models", "run", "local/smollm2-135m-instruct", "Name a primary colour.", "--max-tokens", "8")
    first, first_modules = probe(tmp_path, root, *run)
    assert first.returncode == 0, first.stderr
    assert "torch" in first_modules  # the first answer came from the model
    again, modules = probe(tmp_path, root, *run)
    assert again.returncode == 0, again.stderr
    assert again.stdout == first.stdout and "cached" in again.stderr
    assert loaded(modules, *HEAVY) == []

    (root / "docs").mkdir()
    (root / "docs" / "returns.md").write_text("# Returns\n\nReturns take 30 days.\n", encoding="utf-8")
    # The knowledge base is made here, in this process: only the searches are probed.
    h = honed.connect(root)
    try:
        create_kb(h.store, "docs", KnowledgeBaseConfig())
        kb = get_kb(h.store, h.settings, "docs")
        assert kb.ingest([root / "docs"]).added
        kb.close()
    finally:
        h.close()
    search = ("kb", "search", "docs", "how long do returns take", "--method", "dense", "--json")
    first, first_modules = probe(tmp_path, root, *search)
    assert first.returncode == 0, first.stderr
    assert "sentence_transformers" in first_modules
    again, modules = probe(tmp_path, root, *search)
    assert again.returncode == 0, again.stderr
    assert json.loads(again.stdout)["hits"] == json.loads(first.stdout)["hits"]
    assert loaded(modules, "torch", "transformers", "sentence_transformers") == []
