"""`honed serve`: the OpenAI-compatible HTTP server for local models."""

from __future__ import annotations

import ipaddress

import typer

from honed.cli.common import err_console, open_honed
from honed.errors import ConfigError

LOOPBACK = ("127.0.0.1", "localhost", "::1")


def _is_loopback(host: str) -> bool:
    if host in LOOPBACK:
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def serve(
    host: str = typer.Option("127.0.0.1", "--host", help="Address to listen on (loopback only for now)."),
    port: int = typer.Option(8000, "--port", "-p"),
    endpoint: list[str] = typer.Option(["local"], "--endpoint", help="Endpoints to serve (repeatable)."),
    warm: bool = typer.Option(
        True, "--warm/--no-warm", help="Load the local model before accepting requests."
    ),
) -> None:
    """Serve /v1/models and /v1/chat/completions so any OpenAI client can use honed's models.

    Example: honed serve --port 8000, then
      OpenAI(base_url="http://127.0.0.1:8000/v1", api_key="none").chat.completions.create(
          model="smollm2-135m-instruct", messages=[{"role": "user", "content": "Hi"}])
    """
    if not _is_loopback(host):
        raise ConfigError(
            f"refusing to listen on {host}: only loopback addresses are served until API tokens exist",
            hint="use --host 127.0.0.1 and put a reverse proxy with authentication in front",
        )
    import uvicorn

    from honed.serve import create_app

    h = open_honed(no_cache=True)
    client = h.client
    for name in endpoint:
        client.resolve(f"{name}/-")  # unknown endpoints fail before the server starts
    if warm:
        for name in endpoint:
            client.resolve(f"{name}/-")[0].warm()
    app = create_app(client, served_endpoints=tuple(endpoint))
    err_console.print(f"honed serve: http://{host}:{port}/v1 (endpoints: {', '.join(endpoint)})")
    try:
        uvicorn.run(app, host=host, port=port, log_level="warning")
    except OSError as exc:
        raise ConfigError(
            f"cannot listen on {host}:{port}: {exc.strerror}", hint="choose another --port"
        ) from exc
    finally:
        h.close()
