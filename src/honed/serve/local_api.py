"""Routes that share this server's loaded models: local embeddings for anyone, generations for honed.

- `POST /v1/embeddings`: OpenAI's embeddings API for the local embedders (`all-MiniLM-L6-v2`, a
  `local/NAME` fine-tuned in the workspace): `input` is a string or a list of strings, `encoding_format`
  `float` (default) or `base64` (float32 little-endian, as OpenAI's). The reply adds `honed_identity`,
  the embedder's identity (its model and weights' fingerprint), so a caller can tell it is the same model.
- `POST /v1/honed/generate`: one honed `ChatRequest` run by a served endpoint's provider exactly as in
  the caller's process, answered with the provider's own result. No cache and no log here: the calling
  honed process (see `honed.models.served`) caches, retries and logs the call as its own. The caller
  names the model identity it expects (a LoRA adapter's fingerprint); another one is a 409.
- `GET /v1/honed/status`: this server's pid and how many requests each of these routes has answered.

Every route here sits behind the same `RequestGuard` (Host, Origin, JSON, size and depth limits) and,
off loopback, the same token check (scope `inference`) as `/v1/chat/completions`.
"""

from __future__ import annotations

import base64
import json
import os
import threading
from collections import Counter
from typing import TYPE_CHECKING, Any, Literal

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field, ValidationError
from starlette.concurrency import run_in_threadpool

from honed.errors import HonedError, UnknownModelError
from honed.models.types import ChatRequest, Params
from honed.serve.body import read_json
from honed.serve.responses import HttpError, error_for

if TYPE_CHECKING:
    from honed.models.client import ModelClient
    from honed.rag.types import Embedder

#: OpenAI's limit on inputs per embeddings request
MAX_INPUTS = 2048


class EmbeddingsIn(BaseModel):
    model_config = ConfigDict(extra="ignore")
    model: str
    input: str | list[str] = Field(min_length=1)
    encoding_format: Literal["float", "base64"] = "float"
    #: honed's callers send their embedder's batch size, so a batch is encoded as it would be there
    honed_batch_size: int | None = Field(default=None, ge=1, le=1024)


class GenerateIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    endpoint: str
    model: str
    request: dict[str, Any]
    identity: str | None = None


def honed_error(exc: HonedError) -> JSONResponse:
    """`error_for(exc)` plus the error's class, message and hint, so a honed caller raises the same."""
    response = error_for(exc)
    content = json.loads(bytes(response.body))
    content["error"].update(honed_error=type(exc).__name__, honed_message=exc.message, honed_hint=exc.hint)
    headers = exc.headers if isinstance(exc, HttpError) else None
    return JSONResponse(content, status_code=response.status_code, headers=headers)


def _validated(model: type[BaseModel], body: Any) -> Any:
    try:
        return model.model_validate(body)
    except ValidationError as exc:
        error = exc.errors()[0]
        where = ".".join(str(p) for p in error["loc"])
        raise HttpError(
            f"invalid request: {where}: {error['msg']}", status=400, param=where or None
        ) from None


def local_router(client: ModelClient, served_endpoints: tuple[str, ...]) -> APIRouter:
    """The routes above, over `client` (whose settings name the workspace and its embedders)."""
    router = APIRouter()
    settings = client.settings
    max_depth = settings.serve.max_json_depth
    counts: Counter[str] = Counter()
    embedders: dict[tuple[str, int | None], Embedder] = {}
    # One encode at a time per process: a model's fast tokenizer must not be used by two threads at once.
    encode_lock = threading.Lock()

    def embedder_for(model: str, batch_size: int | None) -> Embedder:
        from honed.rag.index.embedders.registry import default_registry

        registry = default_registry()
        options = {"batch_size": batch_size} if batch_size is not None else None
        ref = registry.resolve(model, settings, options)
        if ref.config.provider != "local":
            raise UnknownModelError(
                f"this server embeds with local models only, not {model!r}",
                hint="use all-MiniLM-L6-v2 or local/NAME (a model fine-tuned in the workspace)",
            )
        key = (f"{ref.endpoint}/{ref.model}", batch_size)
        found = embedders.get(key)
        if found is None:
            found = embedders[key] = registry.build(model, settings, options)
        return found

    def embed(body: EmbeddingsIn) -> dict[str, Any]:
        texts = [body.input] if isinstance(body.input, str) else list(body.input)
        if len(texts) > MAX_INPUTS:
            raise HttpError(f"at most {MAX_INPUTS} inputs per request, not {len(texts)}", status=400)
        embedder = embedder_for(body.model, body.honed_batch_size)
        with encode_lock:
            vectors = embedder.embed(texts)
            tokens = _tokens(embedder, texts)
        data = []
        for i, vector in enumerate(vectors):
            value: Any = (
                base64.b64encode(vector.astype("<f4").tobytes()).decode()
                if body.encoding_format == "base64"
                else [float(x) for x in vector]
            )
            data.append({"object": "embedding", "index": i, "embedding": value})
        return {
            "object": "list",
            "data": data,
            "model": body.model,
            "usage": {"prompt_tokens": tokens, "total_tokens": tokens},
            "honed_identity": embedder.identity(),
        }

    @router.post("/v1/embeddings")
    async def embeddings(request: Request) -> Any:
        try:
            body = _validated(EmbeddingsIn, await read_json(request, max_depth))
            reply = await run_in_threadpool(embed, body)
        except HonedError as exc:
            return honed_error(exc)
        counts["embeddings"] += 1
        return reply

    @router.post("/v1/honed/generate")
    async def generate(request: Request) -> Any:
        try:
            body: GenerateIn = _validated(GenerateIn, await read_json(request, max_depth))
            if body.endpoint not in served_endpoints:
                raise UnknownModelError(f"this server does not serve endpoint {body.endpoint!r}")
            provider, ref, _ = client.resolve(f"{body.endpoint}/{body.model}")
            raw = body.request
            chat = ChatRequest.of(
                str(raw.get("model", f"{body.endpoint}/{body.model}")),
                raw.get("messages") or [],
                Params.from_dict(raw.get("params")),
                response_schema=raw.get("response_schema"),
                sample_index=int(raw.get("sample_index", 0)),
                tools=raw.get("tools"),
            )
            identity = provider.model_identity(ref.model)
            if identity != body.identity:
                raise HttpError(
                    f"{body.endpoint}/{body.model} is {identity or 'the base model'} here, "
                    f"not {body.identity or 'the base model'}",
                    status=409,
                    code="model_changed",
                )
            result = await provider.complete(ref.model, chat)
        except HonedError as exc:
            return honed_error(exc)
        except (TypeError, ValueError) as exc:
            return honed_error(HttpError(f"invalid request: {exc}", status=400))
        counts["generate"] += 1
        return {
            "text": result.text,
            "input_tokens": result.usage.input_tokens,
            "output_tokens": result.usage.output_tokens,
            "finish_reason": result.finish_reason,
            "model": result.model,
            "tool_calls": list(result.tool_calls) if result.tool_calls else None,
            "queue_s": result.queue_s,
        }

    @router.get("/v1/honed/status")
    async def status() -> dict[str, Any]:
        return {"pid": os.getpid(), "endpoints": list(served_endpoints), "requests": dict(counts)}

    return router


def _tokens(embedder: Embedder, texts: list[str]) -> int:
    """The word pieces the model read (its own tokenizer, truncated as it truncates); 0 if unknown."""
    model = getattr(embedder, "model", None)
    tokenizer = getattr(model, "tokenizer", None)
    if tokenizer is None:
        return 0
    limit = getattr(model, "max_seq_length", None)
    encoded = tokenizer(texts, truncation=limit is not None, max_length=limit)
    return sum(len(ids) for ids in encoded["input_ids"])
