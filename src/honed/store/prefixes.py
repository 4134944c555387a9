"""Finding a row by its id or by any unique prefix of it, as git finds a commit by an abbreviated hash.

Listings show ids shortened (`log-27cb8bdf`, `3f2a9c`); every command that takes an id of a log, run, job
or version accepts such a prefix. The exact id always wins (so an id that is also the prefix of a longer
one still names itself); otherwise the prefix must match exactly one row.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import Connection, func, select
from sqlalchemy.sql.elements import ColumnElement

from honed.errors import NotFoundError


def resolve_prefix(
    conn: Connection,
    column: ColumnElement[Any],
    text: str,
    *,
    plural: str,
    where: Sequence[ColumnElement[bool]] = (),
) -> str | None:
    """The one value of `column` (among rows matching `where`) equal to `text` or starting with it.

    None when nothing matches (the caller says what is missing, or tries another reading of `text`);
    NotFoundError "ambiguous: N {plural} match ..." when several do. `text` is a bound parameter with LIKE's
    `%` and `_` escaped, so it matches literally.
    """
    exact = conn.execute(select(column).where(column == text, *where).limit(1)).scalar()
    if exact is not None:
        return str(exact)
    if not text:
        return None
    like = column.startswith(text, autoescape=True)
    found = conn.execute(select(column).where(like, *where).limit(2)).scalars().all()
    if len(found) == 1:
        return str(found[0])
    if found:
        n = conn.execute(select(func.count()).select_from(select(column).where(like, *where).subquery()))
        raise NotFoundError(
            f"ambiguous: {n.scalar_one()} {plural} match {text!r}", hint="give more characters"
        )
    return None
