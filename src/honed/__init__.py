"""honed: take an LLM application from "works part of the time" to production, measured.

The public API is the names in `__all__`; everything else is internal and may change.
"""

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from honed.api import Honed, connect, feedback, log, trace
    from honed.config import Settings, load_settings
    from honed.datasets import Case, get_dataset, record_cases
    from honed.errors import (
        ConfigError,
        HonedError,
        InvalidInputError,
        MissingAPIKeyError,
        ModelError,
        NotFoundError,
        OutputParseError,
        ProviderError,
        StoreError,
        UnknownModelError,
    )
    from honed.experiments import RunReport, analyse, load_experiment, run_experiment
    from honed.hashing import content_hash
    from honed.logs.context import log_context
    from honed.models.client import ModelClient
    from honed.models.types import ChatRequest, Completion, Message, Params, Usage
    from honed.prompts import get_prompt, push
    from honed.run import run_prompt

# Each name is imported on first use (PEP 562): `import honed` (and every `honed` command, whose modules
# live in this package) does not pay for the client, the store and the logging stack it may not need.
_WHERE = {
    "Honed": "honed.api",
    "connect": "honed.api",
    "feedback": "honed.api",
    "log": "honed.api",
    "trace": "honed.api",
    "Settings": "honed.config",
    "load_settings": "honed.config",
    "ConfigError": "honed.errors",
    "HonedError": "honed.errors",
    "InvalidInputError": "honed.errors",
    "MissingAPIKeyError": "honed.errors",
    "ModelError": "honed.errors",
    "NotFoundError": "honed.errors",
    "OutputParseError": "honed.errors",
    "ProviderError": "honed.errors",
    "StoreError": "honed.errors",
    "UnknownModelError": "honed.errors",
    "Case": "honed.datasets",
    "get_dataset": "honed.datasets",
    "record_cases": "honed.datasets",
    "RunReport": "honed.experiments",
    "analyse": "honed.experiments",
    "load_experiment": "honed.experiments",
    "run_experiment": "honed.experiments",
    "get_prompt": "honed.prompts",
    "push": "honed.prompts",
    "run_prompt": "honed.run",
    "content_hash": "honed.hashing",
    "log_context": "honed.logs.context",
    "ModelClient": "honed.models.client",
    "ChatRequest": "honed.models.types",
    "Completion": "honed.models.types",
    "Message": "honed.models.types",
    "Params": "honed.models.types",
    "Usage": "honed.models.types",
}


def __getattr__(name: str) -> Any:
    module = _WHERE.get(name)
    if module is None:
        raise AttributeError(f"module 'honed' has no attribute {name!r}")
    import importlib

    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})


__version__ = "0.1.0"

__all__ = [
    "Case",
    "ChatRequest",
    "Completion",
    "ConfigError",
    "Honed",
    "HonedError",
    "InvalidInputError",
    "Message",
    "MissingAPIKeyError",
    "ModelClient",
    "ModelError",
    "NotFoundError",
    "OutputParseError",
    "Params",
    "ProviderError",
    "RunReport",
    "Settings",
    "StoreError",
    "UnknownModelError",
    "Usage",
    "__version__",
    "analyse",
    "connect",
    "content_hash",
    "feedback",
    "get_dataset",
    "get_prompt",
    "load_experiment",
    "load_settings",
    "log",
    "log_context",
    "push",
    "record_cases",
    "run_experiment",
    "run_prompt",
    "trace",
]
