"""The web UI: a team's pages over the loop (experiments and their cases, and more to come), served by
`honed serve` at `/` beside the HTTP API, from the same process and over the same domain functions as the
CLI. Server-rendered (Jinja2, autoescaped) with htmx for partial updates; no build step, no CDN.
"""

from honed.ui.app import mount_ui

__all__ = ["mount_ui"]
