"""One registry for every extensible kind: built-ins and plugins registered alike, one "unknown" error."""

from __future__ import annotations

import importlib.metadata
from dataclasses import dataclass
from typing import Any

import pytest

from honed.errors import ConfigError, InvalidInputError
from honed.evals.evaluators.registry import EvaluatorRegistry
from honed.finetune.registry import TrainerRegistry
from honed.models.registry import ProviderRegistry
from honed.plugins import Registry
from honed.rag.index.embedders.registry import EmbedderRegistry
from honed.rag.index.stores.registry import VectorStoreRegistry


@dataclass
class _EntryPoint:
    name: str
    loader: Any
    value: str = "somewhere:register"

    def load(self) -> Any:
        return self.loader()


def test_every_domain_registry_is_the_one_registry() -> None:
    for cls in (ProviderRegistry, EvaluatorRegistry, EmbedderRegistry, VectorStoreRegistry, TrainerRegistry):
        assert issubclass(cls, Registry), cls


def test_an_unknown_name_lists_the_known_ones_and_the_plugins_that_failed(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    def good(registry: Registry[str]) -> None:
        registry.register("fine", "a plugin")

    def broken() -> Any:
        raise ImportError("needs libfoo")

    groups: list[str] = []

    def entry_points(*, group: str) -> list[_EntryPoint]:
        groups.append(group)
        return [_EntryPoint("good", lambda: good), _EntryPoint("shaky", broken)]

    monkeypatch.setattr(importlib.metadata, "entry_points", entry_points)
    registry: Registry[str] = Registry("widget", "honed.widgets")
    registry.register("builtin", "shipped")
    assert groups == []  # nothing is read before the registry is first looked into
    assert registry.get("fine") == "a plugin" and registry.names() == ["builtin", "fine"]
    assert groups == ["honed.widgets"]  # and then once
    with pytest.raises(ConfigError, match=r"widget plugin 'shaky' .* failed to load: needs libfoo"):
        registry.get("shaky")
    with pytest.raises(InvalidInputError) as error:
        registry.get("gizmo")
    assert error.value.message == "unknown widget 'gizmo'"
    assert error.value.hint is not None
    assert error.value.hint.startswith("known: builtin, fine; failed to load: shaky (")
    registry.names()
    assert groups == ["honed.widgets"]


def test_the_built_in_providers_register_as_a_plugin_does() -> None:
    from honed.models.providers import builtins

    registry = ProviderRegistry(plugins=False)
    builtins.register(registry)
    assert registry.kinds() == ["local", "openai", "scripted"]
    assert registry.default_endpoints()["openai"]["provider"] == "openai"
    with pytest.raises(InvalidInputError, match=r"unknown provider 'vllm'.*known: local, openai, scripted"):
        registry.spec("vllm")
