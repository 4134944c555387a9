"""`honed serve`: the OpenAI-compatible HTTP server for honed's models, and log ingestion for apps."""

from __future__ import annotations

import contextlib
from typing import TYPE_CHECKING, Any

import typer

from honed.cli.common import err_console, open_honed
from honed.config import Settings

if TYPE_CHECKING:
    import socket

    from honed.api import Honed
    from honed.logs.online import OnlineEvaluation
    from honed.models.client import ModelClient
    from honed.serve.auth import TokenGate
    from honed.store import Store


def serve(
    host: str = typer.Option(
        "127.0.0.1", "--host", help="Address to listen on; other than loopback, API tokens are required."
    ),
    port: int = typer.Option(
        8000, "--port", "-p", min=0, max=65535, help="Port to listen on (0: any free one, printed)."
    ),
    endpoint: list[str] = typer.Option(["local"], "--endpoint", help="Endpoints to serve (repeatable)."),
    warm: bool = typer.Option(
        True, "--warm/--no-warm", help="Load the local model before accepting requests."
    ),
    require_token: bool = typer.Option(
        False, "--require-token", help="Require API tokens on loopback too (always required elsewhere)."
    ),
    allow_origin: list[str] = typer.Option(
        [],
        "--allow-origin",
        help="A web page origin (scheme://host[:port]) that may call the server besides its own "
        "(repeatable; or serve.allow_origins in honed.toml, HONED_SERVE_ALLOW_ORIGINS).",
    ),
    allowed_host: list[str] = typer.Option(
        [],
        "--allowed-host",
        help="A name the Host header may carry besides the listening address: NAME (any port), "
        "NAME:PORT, *.DOMAIN or * (repeatable; or serve.allowed_hosts, HONED_SERVE_ALLOWED_HOSTS). "
        "On 0.0.0.0 any Host is accepted unless this is given.",
    ),
    max_body_bytes: int | None = typer.Option(
        None,
        "--max-body-bytes",
        help="Largest request body, in bytes (default 8 MiB; or serve.max_body_bytes, "
        "HONED_SERVE_MAX_BODY_BYTES).",
    ),
    open_browser: bool = typer.Option(
        False, "--open", help="Open the web UI in a browser once the server answers."
    ),
) -> None:
    """Serve /v1/models and /v1/chat/completions so any OpenAI client can use honed's models, and
    /v1/logs and /v1/feedback so applications in any language can log generations and feedback.

    Example: honed serve --port 8000, then
      OpenAI(base_url="http://127.0.0.1:8000/v1", api_key="none").chat.completions.create(
          model="smollm2-135m-instruct", messages=[{"role": "user", "content": "Hi"}])

    To listen on the network: honed tokens create my-app --scope inference --scope ingest, then
    honed serve --host 0.0.0.0, and send the printed token as the API key (Authorization: Bearer ...).

    A web app on another origin calling it from the browser: honed serve --allow-origin http://localhost:3000

    While it runs (on loopback, without --require-token), other honed commands in this workspace use its
    models instead of loading their own: `honed models run local/...`, `honed kb search` and `kb ingest`
    with a local embedder (also served at /v1/embeddings). [local] use_server = false turns that off.
    """
    from honed.serve.auth import TokenGate, check_can_listen
    from honed.serve.listen import listen

    flags: dict[str, Any] = {
        "serve.allow_origins": allow_origin or None,
        "serve.allowed_hosts": allowed_host or None,
        "serve.max_body_bytes": max_body_bytes,
        # The server runs the models itself: never hand its work to another server of the workspace.
        "local.use_server": False,
    }
    h = open_honed(no_cache=True, **flags)
    try:
        store = h.store if h.has_store else None
        # Refuse before loading any model: a server nobody may call is a mistake to report at once.
        required = check_can_listen(host, store, require_token=require_token)
        gate = TokenGate(store) if required and store is not None else None
        client = h.client
        for name in endpoint:
            client.resolve(f"{name}/-")  # unknown endpoints fail before the server starts
        data_folder = h.settings.data_folder
        # The port before anything slow or visible: a taken one fails here, before the models load, the
        # address is printed or the discovery file of the server that holds it is replaced.
        sockets = listen(host, port, data_folder=data_folder)
        try:
            _serve(
                h, client, sockets, host, endpoint, warm=warm, gate=gate, store=store, open_ui=open_browser
            )
        finally:
            for sock in sockets:
                sock.close()
    finally:
        h.close()


def _serve(
    h: Honed,
    client: ModelClient,
    sockets: list[socket.socket],
    host: str,
    endpoint: list[str],
    *,
    warm: bool,
    gate: TokenGate | None,
    store: Store | None,
    open_ui: bool = False,
) -> None:
    """Load, announce and serve on `sockets` (already listening) until stopped."""
    import uvicorn

    from honed.models import served
    from honed.serve import create_app
    from honed.serve.auth import is_loopback

    port = sockets[0].getsockname()[1]  # the one the system chose for --port 0
    data_folder = h.settings.data_folder
    if warm:
        for name in endpoint:
            client.resolve(f"{name}/-")[0].warm()
        if data_folder is not None:
            _warm_embedder(h.settings)
    # The web UI needs a workspace to show; without one (no `honed init` here) the server is the API alone.
    ui = h if store is not None else None
    app = create_app(
        client, host=host, served_endpoints=tuple(endpoint), store=store, gate=gate, workspace=ui
    )
    # Other honed commands of this workspace use this server's models instead of loading their own
    # (honed.models.served): announced only where they can call it, on loopback without a token.
    published = None
    address = f"[{host}]" if ":" in host else host
    if gate is None and is_loopback(host) and data_folder is not None:
        published = served.publish(
            data_folder, base_url=f"http://{address}:{port}/v1", endpoints=tuple(endpoint)
        )
    online = None
    try:
        online = _online_evaluation(h.settings) if store is not None else None
        auth = "API token required" if gate is not None else "no token needed on loopback"
        err_console.print(
            f"honed serve: http://{address}:{port}/v1 (endpoints: {', '.join(endpoint)}; {auth})",
            markup=False,
            soft_wrap=True,  # the address whole on one line, whatever the terminal's width
        )
        if online is not None:
            names = ", ".join(str(r.evaluator) for r in online.rules)
            err_console.print(f"online evaluation every {online.interval_s:g} s: {names}", markup=False)
        _exit_on_sigterm()
        server = uvicorn.Server(uvicorn.Config(app, log_level="warning"))
        if open_ui:
            _open_when_started(server, f"http://{address}:{port}/")
        # Ctrl-C ends the server as uvicorn.run does: quietly, once it has shut down.
        with contextlib.suppress(KeyboardInterrupt):
            server.run(sockets=sockets)
    finally:
        if published is not None:
            served.withdraw(published)
        if online is not None:
            online.stop()


def ui(
    port: int = typer.Option(
        8000, "--port", "-p", min=0, max=65535, help="Port to listen on (0: any free one, printed)."
    ),
) -> None:
    """Open the web UI: honed serve --open --no-warm on 127.0.0.1.

    The local model loads on first use. Example: cd my-project && honed ui, then the browser shows the
    experiments, review queues, the playground, prompts, datasets, logs, knowledge bases, fine-tuning
    jobs and ladders of this workspace.
    """
    serve(
        host="127.0.0.1",
        port=port,
        endpoint=["local"],
        warm=False,
        require_token=False,
        allow_origin=[],
        allowed_host=[],
        max_body_bytes=None,
        open_browser=True,
    )


def _open_when_started(server: Any, url: str) -> None:
    """Open `url` in the user's browser (Python's `webbrowser`: $BROWSER, else the desktop's) once
    `server` answers; where there is none (a machine without a desktop), say where to point one."""
    import threading
    import time
    import webbrowser

    def wait_then_open() -> None:
        while not server.started:
            if server.should_exit:
                return
            time.sleep(0.05)
        if not webbrowser.open(url):
            err_console.print(f"no browser to open here: open {url}", markup=False, soft_wrap=True)

    threading.Thread(target=wait_then_open, name="honed-open-ui", daemon=True).start()


def _exit_on_sigterm() -> None:
    """Let SIGTERM end the process through the `finally` blocks above (the discovery file withdrawn, the
    log writer drained): uvicorn shuts down gracefully on it, then raises it again under the handler it
    found, which by default kills the process on the spot."""
    import signal
    import threading

    if threading.current_thread() is not threading.main_thread():
        return

    def stop(signum: int, frame: object) -> None:
        raise SystemExit(128 + signum)

    signal.signal(signal.SIGTERM, stop)


def _warm_embedder(settings: Settings) -> None:
    """Load the default local embedder in the background, so the first dense search sent here does not
    wait for it (requests that need it meanwhile wait for the load, not for a second one)."""
    import threading

    # honed's own modules are imported here, before the thread starts, never in it: the main thread goes on
    # to import the web UI, which imports the evaluators package, and the thread's import of the similarity
    # evaluator (the packaged model's home) raced it into Python's import deadlock (a failed `honed serve`).
    import honed.evals.evaluators.similarity  # noqa: F401
    from honed.rag.index.embedders.local import DEFAULT_MODEL, create
    from honed.rag.index.embedders.registry import default_registry

    def load() -> None:
        try:
            create(default_registry().resolve(f"local/{DEFAULT_MODEL}", settings), settings).model  # noqa: B018
        except Exception as exc:  # the first request reports it properly
            err_console.print(f"could not load the local embedder: {exc}", markup=False, style="dim")

    threading.Thread(target=load, name="honed-warm-embedder", daemon=True).start()


def _online_evaluation(settings: Settings) -> OnlineEvaluation | None:
    """The `[logging] online_eval` rules, started; None when there are none."""
    if not settings.logging.online_eval:
        return None
    from honed.logs.online import OnlineEvaluation

    return OnlineEvaluation(
        settings, settings.logging.online_eval, interval_s=settings.logging.online_eval_interval_s
    ).start()
