"""The library's public API: exactly the names a user needs, each one what its module defines, and
`import honed` stays light."""

import importlib
import subprocess
import sys

import honed

#: What a user of the library needs: connect to a workspace, call models, run and compare experiments, get
#: prompt and dataset versions, log generations and feedback, and the errors to catch. Changing this set is
#: changing the public API: do it on purpose.
EXPECTED = {
    # workspace and settings
    "connect", "Honed", "Settings", "load_settings",
    # models
    "ModelClient", "ChatRequest", "Completion", "Message", "Params", "Usage",
    # prompts and datasets
    "get_prompt", "push", "run_prompt", "get_dataset", "record_cases", "Case",
    # experiments
    "load_experiment", "run_experiment", "analyse", "RunReport",
    # logging
    "log", "trace", "feedback", "log_context",
    # errors
    "HonedError", "ConfigError", "InvalidInputError", "NotFoundError", "StoreError", "ModelError",
    "UnknownModelError", "MissingAPIKeyError", "ProviderError", "OutputParseError",
    # misc
    "content_hash", "__version__",
}  # fmt: skip


def test_all_is_exactly_the_public_api_and_sorted() -> None:
    assert set(honed.__all__) == EXPECTED
    assert honed.__all__ == sorted(honed.__all__)
    assert len(honed.__all__) == len(set(honed.__all__))


def test_every_public_name_is_the_object_its_module_defines() -> None:
    for name in honed.__all__:
        value = getattr(honed, name)
        if name == "__version__":
            assert isinstance(value, str)
            continue
        module = importlib.import_module(value.__module__)
        assert module.__name__.startswith("honed."), name
        assert getattr(module, name) is value, name  # the object itself, not a copy or a wrapper
        assert name in dir(honed)


def test_star_import_gives_the_public_names_and_unknown_names_fail() -> None:
    namespace: dict[str, object] = {}
    exec("from honed import *", namespace)
    assert {n for n in namespace if not n.startswith("__builtins")} == set(honed.__all__)
    try:
        honed.nonexistent  # noqa: B018
    except AttributeError as exc:
        assert "nonexistent" in str(exc)
    else:
        raise AssertionError("an unknown name must raise AttributeError")


def test_an_experiment_runs_through_the_public_api_alone(tmp_path: object) -> None:
    """The README's Python path, end to end with public names only (a scripted model, so it is quick)."""
    from pathlib import Path

    from honed.testing import scripted

    root = Path(str(tmp_path))
    (root / "honed.toml").write_text("")
    (root / "qa.yaml").write_text(
        "name: qa\nmodel: scripted/caps\nmessages:\n  - {role: user, content: '{{ country }}'}\n"
    )
    (root / "exp.yaml").write_text(
        "name: e\ndataset: caps\nvariants: [{prompt: qa.yaml}]\nevaluators: [{type: exact}]\n"
    )
    with scripted("caps", lambda req: "Paris"), honed.connect(root) as h:
        honed.record_cases(
            h.store, "caps", [honed.Case(id="fr", inputs={"country": "France"}, reference="Paris")]
        )
        run = honed.run_experiment(h, honed.load_experiment(h, root / "exp.yaml"))
        report = honed.analyse(h.store, run.id)
        assert isinstance(report, honed.RunReport)
        assert report.stats["exact"].summaries[report.baseline].mean == 1.0
        _, prompt = honed.get_prompt(h.store, "qa@latest")
        assert prompt.name == "qa" and honed.get_dataset(h.store, "caps").cases[0].id == "fr"


def test_import_does_not_load_heavy_libraries() -> None:
    code = "import honed, sys; print(any(m in sys.modules for m in ('torch', 'transformers', 'openai')))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
