"""`honed init` and `honed config show`."""

from __future__ import annotations

import json
import os
from pathlib import Path

import typer

from honed.api import Honed
from honed.cli.common import JsonOption, console, print_json, print_table
from honed.config import (
    CONFIG_FILE,
    DATA_DIR,
    flat_settings,
    init_workspace,
    load_settings,
    mask_url,
    settings_with_sources,
)
from honed.secrets import mask_data

config_app = typer.Typer(help="Inspect settings.", no_args_is_help=True)


def init(
    path: Path = typer.Argument(Path("."), help="Folder for the workspace (created if missing)."),
) -> None:
    """Create a workspace: honed.toml and the .honed/ data folder, with a migrated database.

    Example: honed init my-project
    """
    root = init_workspace(path)
    # The new workspace is the one to migrate, even when HONED_HOME names another.
    env = {k: v for k, v in os.environ.items() if k != "HONED_HOME"}
    with Honed(load_settings(start=root, env=env)) as h:
        revision = h.store.current_revision()
        where = mask_url(h.settings.resolved_database_url())
    console.print(f"workspace ready in {root} ({CONFIG_FILE}, {DATA_DIR}/)")
    console.print(f"database {where} at revision {revision}")


@config_app.command("show")
def show(json_out: bool = JsonOption) -> None:
    """Print the effective settings and where each one comes from.

    The source is a flag, a HONED_* variable, a line of honed.toml, or the default (flags > HONED_*
    variables > honed.toml > defaults).

    Example: honed config show --json   (settings and, under "sources", each key's origin)
    """
    settings, sources = settings_with_sources()
    dumped = settings.model_dump(mode="json")
    if settings.database_url is None and settings.root is not None:
        # Say which store is used, not "null": the workspace's SQLite file.
        dumped["database_url"] = settings.resolved_database_url()
        sources["database_url"] = "default (the workspace's SQLite file)"
    # Every value, not only database_url: endpoint headers or options can hold credentials too.
    data = mask_data(dumped)
    if json_out:
        print_json({"settings": data, "sources": sources})
        return
    values = flat_settings(data)
    rows = [
        (key, v if isinstance(v := values[key], str) else json.dumps(v), src) for key, src in sources.items()
    ]
    print_table("settings", ["key", "value", "source"], rows)
