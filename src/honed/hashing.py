"""Content hashes of canonical JSON, with the algorithm as prefix (`sha256:...`).

Canonical JSON: keys sorted, no insignificant whitespace, UTF-8, no NaN/Infinity. Two values that are equal
as JSON always hash the same, so a version's identity is its content.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

ALGORITHM = "sha256"


def canonical_json(value: Any) -> str:
    """Serialise `value` so that equal JSON values give identical strings."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False)


def content_hash(value: Any) -> str:
    """`sha256:<hex>` of the canonical JSON of `value`."""
    digest = hashlib.sha256(canonical_json(value).encode("utf-8")).hexdigest()
    return f"{ALGORITHM}:{digest}"


def short(h: str, n: int = 12) -> str:
    """A short display form of a content hash (without the prefix)."""
    return h.split(":", 1)[-1][:n]
