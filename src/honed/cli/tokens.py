"""`honed tokens create|list|revoke`: API tokens for `honed serve` (formatting only; the work is in
`honed.store.tokens`)."""

from __future__ import annotations

import typer

from honed.cli.common import JsonOption, err_console, open_honed, print_json, print_table

app = typer.Typer(
    help="API tokens for `honed serve`: needed to listen beyond 127.0.0.1. Stored only as hashes.",
    no_args_is_help=True,
)


@app.command("create")
def create(
    name: str = typer.Argument(..., help="What the token is for, e.g. chat-app."),
    scope: list[str] = typer.Option(
        [],
        "--scope",
        help="ingest (POST /v1/logs, /v1/feedback), inference (/v1/chat, /v1/models), and for the web UI "
        "one of read, annotate (label, give feedback), write (save prompts, datasets, queues), admin "
        "(repeatable). The token's name is its user's name in the UI.",
    ),
    as_json: bool = JsonOption,
) -> None:
    """Create a token and print its secret, once: honed keeps only a hash and cannot show it again.

    Examples: honed tokens create chat-app --scope inference --scope ingest
              honed tokens create alice --scope annotate   (alice signs in to the web UI with it)
    """
    with open_honed(require_workspace=True) as h:
        token, secret = h.store.tokens.create(name, scope)
    if as_json:
        print_json({**token.to_dict(), "token": secret})
        return
    typer.echo(
        f"created token {token.id} ({token.name}, scopes: {', '.join(token.scopes)}). "
        "Copy it now; it is not shown again:",
        err=True,
    )
    typer.echo(secret)  # plain stdout, never wrapped: `TOKEN=$(honed tokens create ...)` works


@app.command("list")
def list_tokens(
    all_tokens: bool = typer.Option(False, "--all", help="Include revoked tokens."),
    as_json: bool = JsonOption,
) -> None:
    """List tokens (never their secrets). Example: honed tokens list --all"""
    with open_honed(require_workspace=True) as h:
        tokens = h.store.tokens.list(include_revoked=all_tokens)
    if as_json:
        print_json([t.to_dict() for t in tokens])
        return
    rows = [
        (
            t.id,
            t.name,
            ", ".join(t.scopes),
            f"{t.created_at:%Y-%m-%d %H:%M}",
            f"{t.last_used_at:%Y-%m-%d %H:%M}" if t.last_used_at else "never",
            f"revoked {t.revoked_at:%Y-%m-%d %H:%M}" if t.revoked_at else "active",
        )
        for t in tokens
    ]
    print_table(None, ["id", "name", "scopes", "created", "last used", "status"], rows)


@app.command("revoke")
def revoke(
    token_id: str = typer.Argument(..., help="The token's id (see `honed tokens list`)."),
    as_json: bool = JsonOption,
) -> None:
    """Revoke a token: requests with it get 401 from then on. Example: honed tokens revoke 3f9c0a1b2d4e5f60"""
    with open_honed(require_workspace=True) as h:
        token = h.store.tokens.revoke(token_id)
    if as_json:
        print_json(token.to_dict())
        return
    err_console.print(f"revoked token {token.id} ({token.name})")
