"""`/v1/models` and `/v1/chat/completions`, in OpenAI's wire format, for the models honed runs.

Any OpenAI client (the official SDK, LangChain, curl) can use a local model, or later a fine-tuned adapter
of it, through this. Requests go through the same `ModelClient` as everything else (concurrency, dynamic
batching in the local provider), without the response cache: an inference server must not replay answers.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from typing import Any, Literal

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field

from honed.errors import (
    EndpointUnreachableError,
    HonedError,
    InvalidInputError,
    OutputParseError,
    ProviderError,
    UnknownModelError,
)
from honed.models.client import ModelClient
from honed.models.types import ChatRequest, Completion, Params

CREATED = int(time.time())


class ChatMessageIn(BaseModel):
    model_config = ConfigDict(extra="ignore")
    role: Literal["system", "user", "assistant", "tool", "developer"]
    content: str | list[dict[str, Any]] | None = None


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
    response_format: dict[str, Any] | None = None
    tools: list[dict[str, Any]] | None = None


def _text(content: str | list[dict[str, Any]] | None) -> str:
    if content is None or isinstance(content, str):
        return content or ""
    return "".join(str(part.get("text", "")) for part in content if part.get("type") == "text")


def _error(status: int, message: str, kind: str, code: str | None = None) -> JSONResponse:
    return JSONResponse(
        status_code=status, content={"error": {"message": message, "type": kind, "param": None, "code": code}}
    )


def _status_for(exc: HonedError) -> tuple[int, str]:
    if isinstance(exc, UnknownModelError):
        return 404, "model_not_found"
    if isinstance(exc, InvalidInputError):
        return 400, "invalid_request_error"
    if isinstance(exc, EndpointUnreachableError):
        return 502, "upstream_unreachable"
    if isinstance(exc, ProviderError):
        return (503 if exc.retryable else 502), "upstream_error"
    return 500, "server_error"


def create_app(client: ModelClient, *, served_endpoints: tuple[str, ...] = ("local",)) -> FastAPI:
    """The app. Model names without an endpoint (`smollm2-135m-instruct`) mean the first served endpoint."""
    app = FastAPI(title="honed", version="1", docs_url=None, redoc_url=None)

    def ref_for(model: str) -> str:
        if "/" in model:
            endpoint = model.split("/", 1)[0]
            if endpoint not in served_endpoints:
                raise UnknownModelError(f"this server does not serve endpoint {endpoint!r}")
            return model
        return f"{served_endpoints[0]}/{model}"

    @app.exception_handler(RequestValidationError)
    async def _invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"] if p != "body")
        return _error(400, f"invalid request: {where}: {first['msg']}", "invalid_request_error")

    @app.exception_handler(HonedError)
    async def _honed(request: Request, exc: HonedError) -> JSONResponse:
        status, kind = _status_for(exc)
        return _error(status, exc.one_line(), kind)

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
    async def chat(body: ChatCompletionIn) -> Any:
        if body.stream:
            return _error(
                400,
                "streaming is not supported by honed serve yet; send stream=false",
                "invalid_request_error",
            )
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
        messages = [
            {"role": "system" if m.role == "developer" else m.role, "content": _text(m.content)}
            for m in body.messages
        ]
        requests = [
            ChatRequest.of(ref, messages, params, response_schema=schema, sample_index=i, tools=body.tools)  # type: ignore[arg-type]
            for i in range(body.n)
        ]
        results = await asyncio.gather(*(_complete(client, r) for r in requests))
        usage_in = results[0].usage.input_tokens
        usage_out = sum(r.usage.output_tokens for r in results)
        return {
            "id": f"chatcmpl-{uuid.uuid4().hex}",
            "object": "chat.completion",
            "created": int(time.time()),
            "model": body.model,
            "choices": [
                {
                    "index": i,
                    "message": {"role": "assistant", "content": r.text},
                    "finish_reason": r.finish_reason or "stop",
                    "logprobs": None,
                }
                for i, r in enumerate(results)
            ],
            "usage": {
                "prompt_tokens": usage_in,
                "completion_tokens": usage_out,
                "total_tokens": usage_in + usage_out,
            },
        }

    return app


async def _complete(client: ModelClient, request: ChatRequest) -> Completion:
    try:
        return await client.complete(request)
    except OutputParseError as exc:
        # The client asked for JSON; an OpenAI server still returns the text and leaves parsing to it.
        if isinstance(exc.completion, Completion):
            return exc.completion
        raise
