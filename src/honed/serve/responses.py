"""Errors in OpenAI's wire shape, so any OpenAI client raises its usual exception types for them.

`HttpError` is a `HonedError` that also carries the HTTP status and OpenAI's `type`/`code`/`param`; the
app turns every `HonedError` into `{"error": {...}}` through `error_for`. Messages are masked
(`honed.secrets.mask`), so a key echoed in an upstream error never reaches a client.
"""

from __future__ import annotations

from collections.abc import Mapping

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


def error_for(exc: HonedError) -> JSONResponse:
    """The response for a `HonedError` raised while handling a request."""
    message = exc.one_line()  # masked
    if isinstance(exc, HttpError):
        return error_response(exc.status, message, exc.kind, exc.code, param=exc.param, headers=exc.headers)
    status, kind, code = status_for(exc)
    return error_response(status, message, kind, code)


def status_for(exc: HonedError) -> tuple[int, str, str | None]:
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
