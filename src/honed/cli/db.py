"""`honed db upgrade|status`: the store's schema migrations."""

from __future__ import annotations

import typer

from honed.cli.common import JsonOption, console, open_honed, print_json
from honed.config import mask_url

app = typer.Typer(
    help="The workspace database (SQLite by default, PostgreSQL via HONED_DATABASE_URL).",
    no_args_is_help=True,
)

DatabaseUrlOption = typer.Option(None, "--database-url", help="Database URL (overrides HONED_DATABASE_URL).")


@app.command("upgrade")
def upgrade(database_url: str | None = DatabaseUrlOption, json_out: bool = JsonOption) -> None:
    """Apply pending schema migrations (a new workspace is migrated automatically).

    Example: HONED_DATABASE_URL=postgresql://me@db/honed honed db upgrade
    """
    from honed.store import Store

    h = open_honed(database_url=database_url)
    url = h.settings.resolved_database_url()
    with Store.open(url, migrate=False) as store:
        before = store.current_revision()
        store.upgrade()
        after = store.current_revision()
    if json_out:
        print_json({"database": mask_url(url), "from": before, "to": after})
    else:
        if before == after:
            console.print(f"{mask_url(url)}: already at {after}, nothing to do")
        else:
            console.print(f"{mask_url(url)}: {before or 'empty'} -> {after}")


@app.command("status")
def status(database_url: str | None = DatabaseUrlOption, json_out: bool = JsonOption) -> None:
    """Show the database's migration revision and the newest one this honed knows."""
    from honed.store import Store

    h = open_honed(database_url=database_url)
    url = h.settings.resolved_database_url()
    with Store.open(url, migrate=False) as store:
        current = store.current_revision()
    head = Store.head_revision()
    data = {"database": mask_url(url), "revision": current, "head": head, "up_to_date": current == head}
    if json_out:
        print_json(data)
    else:
        state = "up to date" if current == head else "needs `honed db upgrade`"
        console.print(f"{data['database']}: revision {current or 'empty'} (head {head}): {state}")
