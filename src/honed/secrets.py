"""One secret masker for every boundary where text leaves honed's hands: an error printed by the CLI or
answered by `honed serve`, an error stored in a result, a log, a score or a job, a URL shown by
`honed config show`.

Two layers, because neither alone is enough:
- **known values**: the current values of the environment variables that hold secrets (every endpoint's
  `api_key_env`, registered when an endpoint reads its key, `OPENAI_API_KEY`, and any variable whose name
  says key, token, secret or password). An endpoint that echoes the key it was sent ("Incorrect API key
  provided: sk-...") is caught whatever the key looks like.
- **shapes**: what a secret looks like when its value is unknown here (a key pasted into a prompt file, a
  password inside a database URL, including `?password=` and passwords containing `@`, bearer and basic
  credentials, well-known key prefixes).

It imports nothing from honed, so the lowest layers (errors, config) can use it.
"""

from __future__ import annotations

import os
import re
import threading
from typing import Any

__all__ = ["MASK", "mask", "mask_data", "register_env"]

MASK = "***"

#: Variables whose values are secrets whatever honed.toml says.
_ALWAYS = ("OPENAI_API_KEY",)
#: A variable named like this holds a secret (AWS_SECRET_ACCESS_KEY, HF_TOKEN, PGPASSWORD, ...).
_SECRET_NAME = re.compile(r"KEY|TOKEN|SECRET|PASSWORD|PASSWD|CREDENTIAL", re.IGNORECASE)
#: Shorter values would blank out ordinary words; real keys and passwords worth hiding are longer.
_MIN_VALUE = 8

_registered: set[str] = set(_ALWAYS)
_lock = threading.Lock()

_SHAPES: tuple[tuple[re.Pattern[str], str], ...] = (
    # user:password@ in a URL. The password runs to the LAST @ before the host, so one containing @ is
    # masked whole (drivers accept it unencoded).
    (re.compile(r"(?P<keep>://[^\s/:@]*:)[^\s/]*@"), rf"\g<keep>{MASK}@"),
    # password / key / token query parameters and libpq keyword strings (`password=... host=...`).
    (
        re.compile(
            r"(?P<keep>(?:^|[?&;\s\"'(,])(?:[\w-]*(?:password|passwd|secret)[\w-]*|pwd|api[_-]?key"
            r"|access[_-]?token|auth[_-]?token|token)"
            r"\s*=\s*)(?:'[^']*'|\"[^\"]*\"|[^\s&;\"',)]+)",
            re.IGNORECASE,
        ),
        rf"\g<keep>{MASK}",
    ),
    # Authorization header values.
    (re.compile(r"(?P<keep>\b(?:Bearer|Basic)\s+)[A-Za-z0-9._~+/=-]{8,}", re.IGNORECASE), rf"\g<keep>{MASK}"),
    # Keys with a well-known prefix: OpenAI/Anthropic `sk-`, Stripe `sk_live_`/`rk_live_`, GitHub, Slack,
    # Hugging Face, AWS access key ids.
    (
        re.compile(
            r"\b(?:sk-[A-Za-z0-9_*-]{12,}|[sr]k_(?:live|test)_[A-Za-z0-9]{10,}|gh[pousr]_[A-Za-z0-9]{20,}"
            r"|github_pat_[A-Za-z0-9_]{20,}|xox[abposr]-[A-Za-z0-9-]{10,}|hf_[A-Za-z0-9]{20,}"
            r"|(?:AKIA|ASIA)[A-Z0-9]{16})"
        ),
        MASK,
    ),
)


def register_env(name: str | None) -> None:
    """Treat the value of environment variable `name` as a secret from now on (an endpoint's
    `api_key_env`, whatever it is called)."""
    if name:
        with _lock:
            _registered.add(name)


def _values() -> list[str]:
    with _lock:
        names = set(_registered)
    values = {
        value
        for name, value in os.environ.items()
        if (name in names or _SECRET_NAME.search(name)) and len(value) >= _MIN_VALUE
    }
    # Longest first, so a key that contains another secret is masked whole.
    return sorted(values, key=len, reverse=True)


def mask(text: str) -> str:
    """`text` with every secret it contains replaced by `***`: fit to print, store or send."""
    if not text:
        return text
    for value in _values():
        if value in text:
            text = text.replace(value, MASK)
    for pattern, repl in _SHAPES:
        text = pattern.sub(repl, text)
    return text


def mask_data(data: Any) -> Any:
    """`data` (JSON-like: dicts, lists, strings) with `mask` applied to every string in it."""
    if isinstance(data, str):
        return mask(data)
    if isinstance(data, dict):
        return {k: mask_data(v) for k, v in data.items()}
    if isinstance(data, list | tuple):
        return [mask_data(v) for v in data]
    return data
