"""The real public data sets in ../shared/data (see OFFLINE.md), found the way the setting `data_dir` is.

HONED_DATA_DIR wins; otherwise `shared/data` next to the project root. It is read when this module is
imported, before the autouse fixture clears HONED_* variables for each test. Tests that need a file call
`require(...)`, which skips with a message naming what is missing; no other test may skip.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tests.conftest import PROJECT_ROOT

DATA_DIR = Path(os.environ.get("HONED_DATA_DIR") or PROJECT_ROOT.parent / "shared" / "data")


def require(*parts: str) -> Path:
    """The path DATA_DIR/parts, or skip the test saying which file is missing and how to provide it."""
    path = DATA_DIR.joinpath(*parts)
    if not path.exists():
        pytest.skip(f"real data missing: {path} (set HONED_DATA_DIR to the folder holding {parts[0]}/)")
    return path
