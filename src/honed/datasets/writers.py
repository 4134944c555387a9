"""Writing cases as JSONL: the export format, which re-imports to the same version hash.

A line is a case's stored form (`Case.to_dict`) with its keys in reading order (id, inputs, reference,
metadata, context_ids, split) and non-ASCII text left readable. A file is written to a temporary sibling
and renamed over the target, so a reader never sees half an export and an interrupted one leaves the
old file in place.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
from collections.abc import Iterable
from pathlib import Path
from typing import IO

from honed.datasets.case import Case
from honed.errors import InvalidInputError


def case_line(case: Case) -> str:
    """One JSONL line (without the newline)."""
    return json.dumps(case.to_dict(), ensure_ascii=False, allow_nan=False)


def write_jsonl(cases: Iterable[Case], out: IO[str]) -> int:
    """Write `cases` to an open text stream; returns how many."""
    n = 0
    for case in cases:
        out.write(case_line(case) + "\n")
        n += 1
    return n


def export_jsonl(cases: Iterable[Case], path: Path) -> int:
    """Write `cases` to `path` atomically (temporary file, then rename); returns how many."""
    path = path.expanduser()
    folder = path.parent if str(path.parent) else Path(".")
    if not folder.is_dir():
        raise InvalidInputError(f"{path}: the folder {folder} does not exist", hint="create it first")
    # Not tempfile.mkstemp: its 0600 mode would survive the rename; 0666 lets the umask decide, as for
    # any file the user creates.
    tmp = folder / f".{path.name}.{secrets.token_hex(6)}.tmp"
    try:
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
    except OSError as exc:
        raise InvalidInputError(f"{path}: cannot write in {folder}: {exc.strerror}") from None
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="\n") as out:
            n = write_jsonl(cases, out)
            out.flush()
            os.fsync(out.fileno())
        os.replace(tmp, path)
    except OSError as exc:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise InvalidInputError(f"{path}: cannot be written: {exc.strerror}") from None
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    return n
