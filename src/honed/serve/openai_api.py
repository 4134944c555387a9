"""`/v1/models` and `/v1/chat/completions`, in OpenAI's wire format, for the models honed runs.

Any OpenAI client (the official SDK, LangChain, curl) can use a local model, or later a fine-tuned adapter
of it, through this. Requests go through the same `ModelClient` as everything else (concurrency, dynamic
batching in the local provider), without the response cache: an inference server must not replay answers.
Each generation is logged with source "serve" (and the caller's `X-Honed-Session-Id` / `X-Honed-Trace-Id`)
and its log id comes back in `X-Honed-Log-Id`, so an app can attach feedback to it via `/v1/feedback`.
`stream: true` answers with server-sent events (honed.serve.streaming).
`/v1/embeddings` (the local embedders) and the routes other honed processes of the workspace use instead
of loading their own models are in `honed.serve.local_api`.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from contextlib import AbstractContextManager
from typing import TYPE_CHECKING, Any, Literal

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel, ConfigDict, Field, ValidationError
from pydantic_core import ErrorDetails
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException
from starlette.middleware.cors import CORSMiddleware

from honed.errors import HonedError, OutputParseError, UnknownModelError
from honed.logs.context import log_context
from honed.models.client import ModelClient
from honed.models.types import ChatRequest, Completion, Message, Params
from honed.serve.auth import AuthMiddleware, TokenGate, is_api
from honed.serve.body import parse_json
from honed.serve.guard import RequestGuard, RequestPolicy
from honed.serve.ingest import ingest_router
from honed.serve.local_api import local_router
from honed.serve.responses import HttpError, error_for, error_response
from honed.serve.streaming import stream_response
from honed.serve.traces import traces_router

if TYPE_CHECKING:
    from honed.store import Store
    from honed.workspace import Workspace

CREATED = int(time.time())


class FunctionCallIn(BaseModel):
    model_config = ConfigDict(extra="ignore")
    name: str
    arguments: str = ""


class ToolCallIn(BaseModel):
    model_config = ConfigDict(extra="ignore")
    id: str
    type: Literal["function"] = "function"
    function: FunctionCallIn


class ChatMessageIn(BaseModel):
    model_config = ConfigDict(extra="ignore")
    role: Literal["system", "user", "assistant", "tool", "developer"]
    content: str | list[dict[str, Any]] | None = None
    tool_calls: list[ToolCallIn] | None = None
    tool_call_id: str | None = None

    def message(self) -> Message:
        """honed's message: developer is system, and tool calls are flat `{"id", "name", "arguments"}`."""
        out: Message = {
            "role": "system" if self.role == "developer" else self.role,
            "content": _text(self.content),
        }
        if self.tool_calls:
            out["tool_calls"] = [
                {"id": c.id, "name": c.function.name, "arguments": c.function.arguments}
                for c in self.tool_calls
            ]
        if self.tool_call_id is not None:
            out["tool_call_id"] = self.tool_call_id
        return out


class ChatCompletionIn(BaseModel):
    """The subset of OpenAI's request that honed honours; other fields are ignored as OpenAI's servers do."""

    model_config = ConfigDict(extra="ignore")
    model: str
    messages: list[ChatMessageIn] = Field(min_length=1)
    temperature: float | None = None
    top_p: float | None = None
    max_tokens: int | None = None
    max_completion_tokens: int | None = None
    stop: str | list[str] | None = None
    seed: int | None = None
    n: int = Field(default=1, ge=1, le=16)
    stream: bool = False
    stream_options: dict[str, Any] | None = None
    response_format: dict[str, Any] | None = None
    tools: list[dict[str, Any]] | None = None


def _chat_body(raw: bytes, max_depth: int) -> ChatCompletionIn:
    """The request, parsed and validated (in a worker thread: an 8 MB body takes a while)."""
    try:
        return ChatCompletionIn.model_validate(parse_json(raw, max_depth))
    except ValidationError as exc:
        raise _invalid_request(exc.errors()[0]) from None


def _invalid_request(error: ErrorDetails | dict[str, Any]) -> HttpError:
    where = ".".join(str(p) for p in error["loc"] if p != "body")
    message = f"invalid request: {where}: {error['msg']}" if where else f"invalid request: {error['msg']}"
    return HttpError(message, status=400, param=where or None)


def _text(content: str | list[dict[str, Any]] | None) -> str:
    if content is None or isinstance(content, str):
        return content or ""
    return "".join(str(part.get("text", "")) for part in content if part.get("type") == "text")


def _choice(index: int, completion: Completion) -> dict[str, Any]:
    message: dict[str, Any] = {"role": "assistant", "content": completion.text}
    finish = completion.finish_reason or "stop"
    if completion.tool_calls:
        message["tool_calls"] = [
            {"id": c["id"], "type": "function", "function": {"name": c["name"], "arguments": c["arguments"]}}
            for c in completion.tool_calls
        ]
        # OpenAI's shape: a turn that only calls tools has null content and says why it stopped.
        message["content"] = completion.text or None
        finish = "tool_calls"
    return {"index": index, "message": message, "finish_reason": finish, "logprobs": None}


def _header_id(request: Request, name: str) -> str | None:
    value = request.headers.get(name)
    if value is not None and not 0 < len(value) <= 200:
        raise HttpError(f"the {name} header must be 1 to 200 characters", status=400, param=name)
    return value


def create_app(
    client: ModelClient,
    *,
    host: str = "127.0.0.1",
    served_endpoints: tuple[str, ...] = ("local",),
    store: Store | None = None,
    gate: TokenGate | None = None,
    workspace: Workspace | None = None,
) -> FastAPI:
    """The app. Model names without an endpoint (`smollm2-135m-instruct`) mean the first served endpoint.

    `host` is the address the server listens on: requests must name it (or a loopback name, on loopback)
    in their Host header, within the limits and origins of `client.settings.serve` (see
    `honed.serve.guard`). `store` backs the ingestion routes (`/v1/logs`, `/v1/feedback`); with a `gate`
    every request needs a bearer token with the path's scope. With a `workspace`, the web UI is served at
    `/` (see `honed.ui`): signed in with a token where a `gate` is on, else open to one local user.
    """
    app = FastAPI(title="honed", version="1", docs_url=None, redoc_url=None)
    limits = client.settings.serve
    # The last added runs first: the guard, then CORS answers preflights for the allowed origins (they
    # carry no token), then the UI's session check (UI paths), then the token check (API paths).
    if gate is not None:
        app.add_middleware(AuthMiddleware, gate=gate, api_only=workspace is not None)
    if limits.allow_origins:
        app.add_middleware(
            CORSMiddleware,
            allow_origins=list(limits.allow_origins),
            allow_methods=["GET", "POST"],
            allow_headers=["*"],
            expose_headers=["X-Honed-Log-Id"],
        )
    if workspace is not None:
        from honed.ui import mount_ui
        from honed.ui.session import Sessions

        ui_store = workspace.store if gate is not None else None
        mount_ui(app, workspace, Sessions.for_workspace(workspace.settings.data_folder, ui_store))
    policy = RequestPolicy.for_server(host, limits)
    app.add_middleware(RequestGuard, policy=policy, routes=app.router.routes)
    app.include_router(ingest_router(store, max_json_depth=limits.max_json_depth))
    app.include_router(traces_router(store, client.prices, max_body_bytes=limits.max_body_bytes))
    # /v1/embeddings (local embedders) and what other honed processes of the workspace use instead of
    # loading their own models (see honed.models.served).
    app.include_router(local_router(client, served_endpoints))

    def ref_for(model: str) -> str:
        if "/" in model:
            endpoint = model.split("/", 1)[0]
            if endpoint not in served_endpoints:
                raise UnknownModelError(f"this server does not serve endpoint {endpoint!r}")
            return model
        return f"{served_endpoints[0]}/{model}"

    @app.exception_handler(RequestValidationError)
    async def _invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        return error_for(_invalid_request(exc.errors()[0]))

    ui = workspace is not None

    @app.exception_handler(HonedError)
    async def _honed(request: Request, exc: HonedError) -> Response:
        if ui and not is_api(request.url.path):
            from honed.ui.app import honed_error_page

            return honed_error_page(request, exc)
        return error_for(exc)

    @app.exception_handler(HTTPException)
    async def _http(request: Request, exc: HTTPException) -> Response:
        if ui and not is_api(request.url.path):
            from honed.ui.app import error_page

            return error_page(request, exc.status_code, str(exc.detail))
        # Starlette's own errors (404 unknown path, 405 wrong method) in OpenAI's shape too.
        message = f"{exc.detail}: {request.method} {request.url.path}"
        return error_response(exc.status_code, message, "invalid_request_error", headers=exc.headers)

    @app.exception_handler(Exception)
    async def _crash(request: Request, exc: Exception) -> JSONResponse:
        return error_response(500, "internal server error (see the server's log)", "server_error")

    @app.get("/v1/models")
    async def models() -> dict[str, Any]:
        data = []
        for endpoint in served_endpoints:
            provider, _, _ = client.resolve(f"{endpoint}/-")
            for name in await provider.list_models():
                model_id = name if endpoint == served_endpoints[0] else f"{endpoint}/{name}"
                data.append({"id": model_id, "object": "model", "created": CREATED, "owned_by": "honed"})
        return {"object": "list", "data": data}

    @app.post("/v1/chat/completions")
    async def chat(request: Request) -> Any:
        raw = await request.body()
        body = await run_in_threadpool(_chat_body, raw, limits.max_json_depth)
        session_id = _header_id(request, "X-Honed-Session-Id")
        trace_id = _header_id(request, "X-Honed-Trace-Id")
        ref = ref_for(body.model)
        params = Params.from_dict(
            {
                k: v
                for k, v in {
                    "temperature": body.temperature,
                    "top_p": body.top_p,
                    "max_tokens": body.max_completion_tokens or body.max_tokens,
                    "stop": body.stop,
                    "seed": body.seed,
                }.items()
                if v is not None
            }
        )
        schema = None
        if body.response_format and body.response_format.get("type") == "json_schema":
            schema = (body.response_format.get("json_schema") or {}).get("schema") or {}
        messages = [m.message() for m in body.messages]
        requests = [
            ChatRequest.of(ref, messages, params, response_schema=schema, sample_index=i, tools=body.tools)
            for i in range(body.n)
        ]

        def context() -> AbstractContextManager[Any]:
            return log_context(source="serve", session_id=session_id, trace_id=trace_id)

        if body.stream:
            if body.n != 1:
                raise HttpError("stream=true takes n=1 (one choice)", status=400, param="n")
            include_usage = bool((body.stream_options or {}).get("include_usage"))
            return await stream_response(
                client, requests[0], body.model, include_usage=include_usage, context=context
            )
        # The tasks gather() makes copy this context, so each sample is logged with the caller's ids.
        with context():
            results = await asyncio.gather(*(_complete(client, r) for r in requests))
        usage_in = results[0].usage.input_tokens
        usage_out = sum(r.usage.output_tokens for r in results)
        log_ids = [r.log_id for r in results if r.log_id]
        content = {
            "id": f"chatcmpl-{uuid.uuid4().hex}",
            "object": "chat.completion",
            "created": int(time.time()),
            "model": body.model,
            "choices": [_choice(i, r) for i, r in enumerate(results)],
            "usage": {
                "prompt_tokens": usage_in,
                "completion_tokens": usage_out,
                "total_tokens": usage_in + usage_out,
            },
        }
        # One id per choice, in order (a comma-separated list when n > 1), for feedback on what was shown.
        headers = {"X-Honed-Log-Id": ",".join(log_ids)} if log_ids else None
        return JSONResponse(content, headers=headers)

    return app


async def _complete(client: ModelClient, request: ChatRequest) -> Completion:
    try:
        return await client.complete(request)
    except OutputParseError as exc:
        # The client asked for JSON; an OpenAI server still returns the text and leaves parsing to it.
        if isinstance(exc.completion, Completion):
            return exc.completion
        raise
