"""Errors in OpenAI's wire shape, so any OpenAI client raises its usual exception types for them.

`HttpError` is a `HonedError` that also carries the HTTP status and OpenAI's `type`/`code`/`param`; the
app turns every `HonedError` into `{"error": {...}}` through `error_for`. Messages pass through `scrub`,
which removes the values of provider API keys, so a key echoed in an upstream error never reaches a client.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping

from fastapi.responses import JSONResponse

from honed.errors import (
    EndpointUnreachableError,
    HonedError,
    InvalidInputError,
    NotFoundError,
    ProviderError,
    UnknownModelError,
)


class HttpError(HonedError):
    """An error with an HTTP status decided where it is raised (auth, body limits, conflicts)."""

    def __init__(
        self,
        message: str,
        *,
        status: int,
        kind: str = "invalid_request_error",
        code: str | None = None,
        param: str | None = None,
        hint: str | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(message, hint=hint)
        self.status = status
        self.kind = kind
        self.code = code
        self.param = param
        self.headers = dict(headers or {})


def error_response(
    status: int,
    message: str,
    kind: str,
    code: str | None = None,
    *,
    param: str | None = None,
    headers: Mapping[str, str] | None = None,
) -> JSONResponse:
    return JSONResponse(
        status_code=status,
        content={"error": {"message": message, "type": kind, "param": param, "code": code}},
        headers=dict(headers or {}),
    )


def error_for(exc: HonedError, secrets: Iterable[str] = ()) -> JSONResponse:
    """The response for a `HonedError` raised while handling a request."""
    message = scrub(exc.one_line(), secrets)
    if isinstance(exc, HttpError):
        return error_response(exc.status, message, exc.kind, exc.code, param=exc.param, headers=exc.headers)
    status, kind, code = _status_for(exc)
    return error_response(status, message, kind, code)


def _status_for(exc: HonedError) -> tuple[int, str, str | None]:
    if isinstance(exc, UnknownModelError):
        return 404, "invalid_request_error", "model_not_found"
    if isinstance(exc, NotFoundError):
        return 404, "invalid_request_error", "not_found"
    if isinstance(exc, InvalidInputError):
        return 400, "invalid_request_error", None
    if isinstance(exc, EndpointUnreachableError):
        return 502, "upstream_unreachable", None
    if isinstance(exc, ProviderError):
        return (503 if exc.retryable else 502), "upstream_error", None
    return 500, "server_error", None


def provider_secrets(api_key_envs: Iterable[str | None]) -> tuple[str, ...]:
    """The current values of the API-key environment variables (OpenAI's always), for `scrub`."""
    names = {"OPENAI_API_KEY", *(n for n in api_key_envs if n)}
    # Very short values would blank out ordinary words; real keys are long.
    return tuple(v for v in (os.environ.get(n) for n in names) if v and len(v) >= 8)


def scrub(text: str, secrets: Iterable[str]) -> str:
    for value in secrets:
        text = text.replace(value, "***")
    return text
