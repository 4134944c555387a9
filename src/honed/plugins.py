"""Plugin discovery, shared by every registry (providers, evaluators, ...).

A plugin is a function `register(registry)` named in an entry-point group; honed's built-ins register
the same way. Discovery happens when a registry is first used, never at import time.
"""

from __future__ import annotations

import importlib.metadata

from honed.errors import ConfigError


def load_entry_points(group: str, what: str, registry: object) -> dict[str, ConfigError]:
    """Call every `register(registry)` in `group`. A plugin that fails to load is returned as an error by
    entry-point name instead of raised: a broken plugin must not take the others down, it fails when used."""
    failed: dict[str, ConfigError] = {}
    for ep in importlib.metadata.entry_points(group=group):
        try:
            ep.load()(registry)
        except Exception as exc:
            failed[ep.name] = ConfigError(
                f"{what} plugin {ep.name!r} ({ep.value}) failed to load: {exc}",
                hint="reinstall or uninstall that plugin",
            )
    return failed
