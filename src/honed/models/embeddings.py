"""Embeddings from an OpenAI-compatible endpoint, called the way chat models are.

`OpenAIEmbeddings` makes one `/embeddings` request per `embed` call through the official `openai` SDK,
with what honed.models.endpoints gives every call: the endpoint's base_url, timeout_s and headers, its API
key read at call time, the workspace's retry policy (honouring Retry-After), its max_concurrency across
the threads that share the object, and a price from the price table (`prices.py`; an embedding model
costs its input tokens). Failures are the chat provider's errors (openai_wire.Failures), except that a
404 says the endpoint has no embedding model or API. Batching, normalisation and the vectors' dimension
across batches are the embedder's business (honed.rag.index.embedders.openai).

Calls are synchronous: embedding is a batch job run from worker threads, and a thread-safe synchronous
client keeps it callable from any of them without an event loop.
"""

from __future__ import annotations

import base64
import json
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from honed.errors import ProviderError
from honed.models import endpoints
from honed.models.prices import PriceTable
from honed.models.providers.openai_wire import Failures
from honed.models.types import Usage

if TYPE_CHECKING:
    import openai

    from honed.config import EndpointConfig, Settings

#: options of an `openai` endpoint that embeddings use (the chat provider's `transport` does not apply)
OPTIONS = ("azure_api_version", "headers")


@dataclass(frozen=True, slots=True)
class Embeddings:
    """One request's vectors (float32 rows in input order, as the server sent them: not normalised), the
    tokens it billed, and their cost in USD (None when the model's price is unknown)."""

    vectors: np.ndarray[Any, np.dtype[np.float32]]
    usage: Usage
    cost_usd: float | None


@dataclass(frozen=True, slots=True)
class Spend:
    """What an `OpenAIEmbeddings` has used so far: requests that succeeded, their tokens, their cost
    (None when the price is unknown)."""

    requests: int
    input_tokens: int
    cost_usd: float | None


class OpenAIEmbeddings:
    """One model on one OpenAI-compatible endpoint (`name`, configured by `config`). Thread-safe."""

    def __init__(self, name: str, model: str, config: EndpointConfig, settings: Settings) -> None:
        if not config.base_url:
            raise ProviderError(
                f"endpoint {name!r} has no base_url",
                provider=name,
                hint=f'add base_url = "http://host:port/v1" under [endpoints.{name}] in honed.toml',
            )
        self.endpoint = name
        self.model = model
        self.ref = f"{name}/{model}"
        self.base_url = config.base_url.rstrip("/")
        self.api_key_env = config.api_key_env
        self.retry = settings.retry
        self.limit = endpoints.ThreadLimit(config)
        self.failures = Failures(name, self.base_url, config.api_key_env, config.timeout_s)
        options = config.options
        self.azure_api_version: str | None = options.get("azure_api_version")
        self._prices = PriceTable(settings.prices)
        self._lock = threading.Lock()
        self._requests = self._tokens = 0
        # Azure serves each model as a deployment with its own URL, and wants the API version on every
        # request; the deployment is then the base_url, as the SDK's own Azure client builds it.
        if self.azure_api_version:
            self._client: openai.OpenAI = endpoints.sdk_client(
                f"{self.base_url}/openai/deployments/{model}",
                timeout_s=config.timeout_s,
                headers=options.get("headers"),
                query={"api-version": self.azure_api_version},
            )
        else:
            self._client = endpoints.sdk_client(
                self.base_url, timeout_s=config.timeout_s, headers=options.get("headers")
            )

    def embed(self, texts: Sequence[str], *, dimensions: int | None = None) -> Embeddings:
        """Embed `texts` in one request (retried by the workspace's policy). Raises honed's errors."""
        # The endpoint's slot is held through retries and their backoff, as for chat calls: a server that
        # is rate limiting gets no more requests at once for having refused some.
        with self.limit:
            result = endpoints.call_with_retries(lambda: self._request(texts, dimensions), self.retry)
        with self._lock:
            self._requests += 1
            self._tokens += result.usage.input_tokens
        return result

    @property
    def spend(self) -> Spend:
        with self._lock:
            requests, tokens = self._requests, self._tokens
        return Spend(requests, tokens, self._prices.cost(self.ref, Usage(tokens, 0)))

    def close(self) -> None:
        self._client.close()

    def _request(self, texts: Sequence[str], dimensions: int | None) -> Embeddings:
        import openai

        key = endpoints.api_key(self.endpoint, self.api_key_env)
        extra: dict[str, Any] = {} if dimensions is None else {"dimensions": dimensions}
        try:
            raw = self._client.embeddings.with_raw_response.create(
                model=self.model,
                input=[t or " " for t in texts],  # OpenAI rejects empty strings; a space stands in for one
                # Lists of floats, which every compatible server sends; the SDK would ask for base64.
                encoding_format="float",
                extra_headers=endpoints.auth_headers(key, azure=bool(self.azure_api_version)),
                **extra,
            )
        except openai.APIError as exc:
            raise self.failures.from_sdk(exc, self.model, api="embeddings", key=key) from exc
        response = raw.http_response
        try:
            data = json.loads(response.content)
        except ValueError as exc:
            raise self.failures.not_json(response.status_code) from exc
        vectors = self._vectors(data, len(texts))
        usage = Usage(_prompt_tokens(data), 0)
        return Embeddings(vectors, usage, self._prices.cost(self.ref, usage))

    def _vectors(self, data: Any, count: int) -> np.ndarray[Any, np.dtype[np.float32]]:
        try:
            items = sorted(data["data"], key=lambda item: int(item["index"]))
            rows = [_vector(item["embedding"]) for item in items]
            if len(rows) != count or len({len(r) for r in rows}) != 1 or not len(rows[0]):
                raise ValueError(f"{len(rows)} vectors of sizes {sorted({len(r) for r in rows})} for {count}")
            return np.stack(rows).astype(np.float32, copy=False)
        except (KeyError, IndexError, TypeError, ValueError) as exc:
            # Not retried: well-formed JSON of another shape is a server that speaks another API.
            raise ProviderError(
                f"endpoint {self.endpoint!r} returned a reply that is not an embedding list: "
                f"{' '.join(str(exc).split())[:200]}",
                provider=self.endpoint,
                hint="is base_url an OpenAI-compatible API (it usually ends in /v1)?",
            ) from None


def _vector(embedding: Any) -> Any:
    if isinstance(embedding, str):  # encoding_format=base64, which some servers send whatever is asked
        return np.frombuffer(base64.b64decode(embedding), dtype="<f4")
    return np.asarray(embedding, dtype=np.float32)


def _prompt_tokens(data: Any) -> int:
    usage = data.get("usage") if isinstance(data, dict) else None
    try:
        return int((usage or {}).get("prompt_tokens") or 0)
    except (TypeError, ValueError, AttributeError):
        return 0  # a self-hosted server may report no usage; its tokens then go uncounted
