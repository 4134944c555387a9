import honed


def test_all_names_exist_and_nothing_else_is_advertised() -> None:
    for name in honed.__all__:
        assert hasattr(honed, name), name
    assert sorted(honed.__all__) == honed.__all__ or set(honed.__all__) == set(sorted(honed.__all__))
    assert {"connect", "ChatRequest", "Completion", "HonedError", "ModelClient"} <= set(honed.__all__)


def test_import_does_not_load_heavy_libraries() -> None:
    import subprocess
    import sys

    code = "import honed, sys; print(any(m in sys.modules for m in ('torch', 'transformers', 'openai')))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
