"""honed: take an LLM application from "works part of the time" to production, measured.

The public API is the names in `__all__`; everything else is internal and may change.
"""

from honed.api import Honed, connect
from honed.config import Settings, load_settings
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
from honed.hashing import content_hash
from honed.logs.context import log_context
from honed.logs.tracing import feedback, log, trace
from honed.models.client import ModelClient
from honed.models.types import ChatRequest, Completion, Message, Params, Usage

__version__ = "0.1.0"

__all__ = [
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
    "Settings",
    "StoreError",
    "UnknownModelError",
    "Usage",
    "__version__",
    "connect",
    "content_hash",
    "feedback",
    "load_settings",
    "log",
    "log_context",
    "trace",
]
