"""`honed.run`: the one way a prompt is rendered and run, whoever runs it."""

from __future__ import annotations

import re
from pathlib import Path

import honed.run
from honed.api import Honed
from honed.config import load_settings
from honed.datasets import Case, record_cases
from honed.experiments import parse_spec, resolve, run_experiment
from honed.models.types import ChatRequest
from honed.prompts import Prompt, push
from honed.run import Renderer, run_prompt
from honed.testing import scripted

ROOT = Path(__file__).resolve().parents[2]
WEATHER = {
    "type": "function",
    "function": {"name": "get_weather", "parameters": {"type": "object", "properties": {}}},
}


def test_public_names() -> None:
    for name in honed.run.__all__:
        assert hasattr(honed.run, name), name
    assert honed.run.__all__ == sorted(honed.run.__all__)
    assert honed.run_prompt is honed.run.run_prompt  # the library's entry point is this one


def test_one_place_builds_the_retrieval_augmenter() -> None:
    builders = sorted(
        str(path.relative_to(ROOT))
        for path in (ROOT / "src" / "honed").rglob("*.py")
        if re.search(r"(?<!class )\bAugmenter\(", path.read_text(encoding="utf-8"))
    )
    assert builders == ["src/honed/run/render.py"]


def test_a_prompt_runs_the_same_from_the_library_and_an_experiment(workspace: Path) -> None:
    """The request an experiment sends for a case is the request `run_prompt` sends for its inputs:
    messages, params laid over the prompt's, response schema and tools alike."""
    seen: list[ChatRequest] = []

    def reply(request: ChatRequest) -> str:
        seen.append(request)
        return "ok"

    h = Honed(load_settings(start=workspace), use_cache=False)  # both calls reach the model
    with h, scripted("same", reply) as model:
        prompt = Prompt.model_validate(
            {
                "name": "weather",
                "model": model,
                "params": {"temperature": 0.3, "max_tokens": 9},
                "tools": [WEATHER],
                "messages": [{"role": "user", "content": "Weather in {{ city }}?"}],
            }
        )
        push(h.store, [prompt])
        record_cases(h.store, "cities", [Case(id="c1", inputs={"city": "Paris"})])
        spec = {
            "name": "w",
            "dataset": "cities",
            "variants": [{"prompt": "weather"}],
            "evaluators": [{"type": "exact"}],
        }
        run_experiment(h, resolve(h, parse_spec(spec)))
        ran = run_prompt(h, prompt, {"city": "Paris"})
    from_experiment, from_library = seen
    assert from_library == ran.request
    assert from_experiment.messages == from_library.messages
    assert from_experiment.params == from_library.params
    assert from_experiment.tools == from_library.tools and from_library.tools
    with Renderer(h) as renderer:
        assert renderer.render(prompt, {"city": "Paris"}).messages == list(from_library.messages)
