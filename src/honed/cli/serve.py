"""`honed serve`: the OpenAI-compatible HTTP server for honed's models, and log ingestion for apps."""

from __future__ import annotations

from typing import TYPE_CHECKING

import typer

from honed.cli.common import err_console, open_honed
from honed.config import Settings
from honed.errors import ConfigError

if TYPE_CHECKING:
    from honed.logs.online import OnlineEvaluation


def serve(
    host: str = typer.Option(
        "127.0.0.1", "--host", help="Address to listen on; other than loopback, API tokens are required."
    ),
    port: int = typer.Option(8000, "--port", "-p"),
    endpoint: list[str] = typer.Option(["local"], "--endpoint", help="Endpoints to serve (repeatable)."),
    warm: bool = typer.Option(
        True, "--warm/--no-warm", help="Load the local model before accepting requests."
    ),
    require_token: bool = typer.Option(
        False, "--require-token", help="Require API tokens on loopback too (always required elsewhere)."
    ),
) -> None:
    """Serve /v1/models and /v1/chat/completions so any OpenAI client can use honed's models, and
    /v1/logs and /v1/feedback so applications in any language can log generations and feedback.

    Example: honed serve --port 8000, then
      OpenAI(base_url="http://127.0.0.1:8000/v1", api_key="none").chat.completions.create(
          model="smollm2-135m-instruct", messages=[{"role": "user", "content": "Hi"}])

    To listen on the network: honed tokens create my-app --scope inference --scope ingest, then
    honed serve --host 0.0.0.0, and send the printed token as the API key (Authorization: Bearer ...).
    """
    import uvicorn

    from honed.serve import create_app
    from honed.serve.auth import TokenGate, check_can_listen

    h = open_honed(no_cache=True)
    try:
        store = h.store if h.has_store else None
        # Refuse before loading any model: a server nobody may call is a mistake to report at once.
        required = check_can_listen(host, store, require_token=require_token)
        gate = TokenGate(store) if required and store is not None else None
        client = h.client
        for name in endpoint:
            client.resolve(f"{name}/-")  # unknown endpoints fail before the server starts
        if warm:
            for name in endpoint:
                client.resolve(f"{name}/-")[0].warm()
        app = create_app(client, served_endpoints=tuple(endpoint), store=store, gate=gate)
        online = _online_evaluation(h.settings) if store is not None else None
        auth = "API token required" if gate is not None else "no token needed on loopback"
        err_console.print(f"honed serve: http://{host}:{port}/v1 (endpoints: {', '.join(endpoint)}; {auth})")
        if online is not None:
            names = ", ".join(str(r.evaluator) for r in online.rules)
            err_console.print(f"online evaluation every {online.interval_s:g} s: {names}", markup=False)
        try:
            uvicorn.run(app, host=host, port=port, log_level="warning")
        except OSError as exc:
            raise ConfigError(
                f"cannot listen on {host}:{port}: {exc.strerror}", hint="choose another --port"
            ) from exc
        finally:
            if online is not None:
                online.stop()
    finally:
        h.close()


def _online_evaluation(settings: Settings) -> OnlineEvaluation | None:
    """The `[logging] online_eval` rules, started; None when there are none."""
    if not settings.logging.online_eval:
        return None
    from honed.logs.online import OnlineEvaluation

    return OnlineEvaluation(
        settings, settings.logging.online_eval, interval_s=settings.logging.online_eval_interval_s
    ).start()
