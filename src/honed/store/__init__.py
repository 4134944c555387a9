"""honed's database: SQLite by default, PostgreSQL for a team, one schema managed by Alembic.

with Store.open("sqlite:///.honed/honed.db") as store:
    version = store.objects.put("prompt", {"template": "Hello {{ name }}"})
    store.cache.get_many(keys)
"""

from __future__ import annotations

from honed.store.cache import CacheRow, ResponseCache
from honed.store.database import Store
from honed.store.names import NamedVersions, Version
from honed.store.objects import ObjectRepository

__all__ = ["CacheRow", "NamedVersions", "ObjectRepository", "ResponseCache", "Store", "Version"]
