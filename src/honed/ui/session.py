"""Who is using the web UI, and what they may do: the viewer, sign-in sessions and CSRF tokens.

On a loopback address without tokens (`honed serve` as a developer starts it) there is one local user who
may do everything. Elsewhere (or with `--require-token`) a person signs in with an API token that has a UI
scope; the token's name is the user's name, so every change records who made it. The session is a cookie
(HttpOnly, SameSite=Strict, Secure over HTTPS) holding the token id, an expiry and a random nonce, signed
with HMAC-SHA256 by a key kept in the workspace's data folder (readable by its owner only), so sessions
survive a restart and a revoked token ends its sessions at the next request.

Every form and every htmx request carries a CSRF token derived from the session's nonce (the local user's
from a per-process nonce); a POST without the right one is refused before anything is read or written. The
request guard already refuses cross-site origins and foreign Host names (`honed.serve.guard`): the CSRF
token is the second lock, for a browser that sends no Origin.

Scopes, each including the ones before it: `read` (see everything, change nothing), `annotate` (label
review queues, give feedback), `write` (save prompts, datasets, queues, playground runs), `admin`.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import secrets
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from honed.store.tokens import UI_SCOPES

if TYPE_CHECKING:
    from honed.store import Store
    from honed.store.tokens import ApiToken

COOKIE = "honed_session"
#: How long a sign-in lasts.
SESSION_S = 12 * 3600
KEY_FILE = "ui.key"


@dataclass(frozen=True)
class Viewer:
    """The person making a request: their name, their UI scope and the CSRF token their forms carry."""

    user: str
    scope: str
    csrf: str
    #: The API token they signed in with (None: the local user).
    token_id: str | None = None

    def can(self, scope: str) -> bool:
        """Whether the viewer's scope includes `scope` (`read` < `annotate` < `write` < `admin`)."""
        return UI_SCOPES.index(self.scope) >= UI_SCOPES.index(scope)

    @property
    def local(self) -> bool:
        return self.token_id is None


def ui_scope(token: ApiToken) -> str | None:
    """The highest UI scope a token has; None when it has none (an ingest-only token cannot sign in)."""
    held = [s for s in UI_SCOPES if s in token.scopes]
    return held[-1] if held else None


class Sessions:
    """Signs and checks session cookies and CSRF tokens. `store` None: the open local mode (one user)."""

    def __init__(self, key: bytes, store: Store | None) -> None:
        self._key = key
        self._store = store
        self._local_nonce = secrets.token_hex(16)

    @property
    def open(self) -> bool:
        """No sign-in: the server is on loopback without tokens."""
        return self._store is None

    @classmethod
    def for_workspace(cls, data_folder: Path | None, store: Store | None) -> Sessions:
        """Sessions signed with the workspace's key (made on first use), or a per-process key when there is
        no data folder (sessions then end with the process)."""
        return cls(_key(data_folder) if data_folder is not None else secrets.token_bytes(32), store)

    def local_viewer(self) -> Viewer:
        return Viewer("local", "admin", self._csrf(self._local_nonce))

    def sign_in(self, token: ApiToken, *, now: float | None = None) -> str:
        """The cookie value of a new session for `token` (which must have a UI scope)."""
        expires = int((time.time() if now is None else now) + SESSION_S)
        body = f"{token.id}.{expires}.{secrets.token_hex(16)}"
        return f"{body}.{self._sign(body)}"

    def viewer(self, cookie: str | None, *, now: float | None = None) -> Viewer | None:
        """The viewer of a request: the local user in open mode, else the session's (None when the cookie
        is missing, forged, expired, or its token was revoked or lost its UI scope)."""
        if self._store is None:
            return self.local_viewer()
        if not cookie or cookie.count(".") != 3:
            return None
        body, _, signature = cookie.rpartition(".")
        if not hmac.compare_digest(signature, self._sign(body)):
            return None
        token_id, expires, nonce = body.split(".")
        if not expires.isdigit() or int(expires) < (time.time() if now is None else now):
            return None
        token = self._store.tokens.find(token_id)
        if token is None or not token.active:
            return None
        scope = ui_scope(token)
        if scope is None:
            return None
        return Viewer(token.name, scope, self._csrf(nonce), token.id)

    def _sign(self, body: str) -> str:
        return hmac.new(self._key, body.encode(), hashlib.sha256).hexdigest()

    def _csrf(self, nonce: str) -> str:
        return hmac.new(self._key, f"csrf.{nonce}".encode(), hashlib.sha256).hexdigest()[:32]


def _key(folder: Path) -> bytes:
    """The workspace's signing key: 32 random bytes in `folder/ui.key`, created owner-only on first use
    (O_EXCL, so two servers starting at once agree on one key)."""
    path = folder / KEY_FILE
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        folder.mkdir(parents=True, exist_ok=True)
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:
            return path.read_bytes()
        with os.fdopen(fd, "wb") as out:
            out.write(secrets.token_bytes(32))
        data = path.read_bytes()
    return data
