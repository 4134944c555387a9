"""Embeddings from any OpenAI-compatible endpoint (OpenAI, Azure, vLLM, Ollama, llama.cpp, `honed serve`).

`openai/MODEL` uses OpenAI itself (key in OPENAI_API_KEY); `NAME/MODEL` uses `[endpoints.NAME]` of
honed.toml when its provider is `openai`, with the same base_url, api_key_env, timeout_s and headers as
chat calls. Texts are posted to `{base_url}/embeddings` in batches (256 inputs by default), one request at
a time: ingestion is a batch job, and a synchronous client keeps it callable from any thread.

Failures are the chat provider's (shared wire code): unreachable servers, missing keys, rejected keys and
HTTP errors become honed's errors with one-line messages; 429, 408, 5xx, timeouts and dropped connections
are retried with the workspace's retry policy, honouring Retry-After. The API key is read from the
environment at call time and never stored, logged or put in a message (a server that echoes it back has
it masked). Vectors are normalised to unit length; the dimension is the `dimensions` option or learned
from the first reply.
"""

from __future__ import annotations

import base64
import os
import time
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import httpx
import numpy as np

from honed.errors import InvalidInputError, MissingAPIKeyError, ModelError, ProviderError, UnknownModelError
from honed.models.client import backoff_delay
from honed.models.providers.openai_wire import Failures, error_text
from honed.rag.types import Embedder, Vectors

if TYPE_CHECKING:
    from honed.config import RetryConfig, Settings
    from honed.rag.embedders.registry import EmbedderRef

OPTIONS = ("dimensions", "batch_size")
OPENAI_BASE_URL = "https://api.openai.com/v1"
BATCH_SIZE = 256
MAX_BATCH = 2048  # OpenAI's limit on inputs per request


class OpenAIEmbedder(Embedder):
    """One model on one OpenAI-compatible endpoint. Safe to share between threads."""

    def __init__(
        self,
        endpoint: str,
        model: str,
        *,
        base_url: str,
        api_key_env: str | None,
        timeout_s: float,
        retry: RetryConfig,
        dimensions: int | None = None,
        batch_size: int = BATCH_SIZE,
        headers: dict[str, str] | None = None,
        azure_api_version: str | None = None,
    ) -> None:
        self.endpoint = endpoint
        self.model = model
        self.base_url = base_url.rstrip("/")
        self.api_key_env = api_key_env
        self.retry = retry
        self.dimensions = dimensions
        self.batch_size = batch_size
        self.extra_headers = dict(headers or {})
        self.azure_api_version = azure_api_version
        self.failures = Failures(endpoint, self.base_url, api_key_env, timeout_s)
        self._dimension = dimensions
        self._client = httpx.Client(timeout=timeout_s)

    @property
    def dimension(self) -> int:
        if self._dimension is None:
            self.embed(["dimension"])  # one tiny call, once: the reply says how long the vectors are
        assert self._dimension is not None
        return self._dimension

    def identity(self) -> str:
        suffix = f"@{self.dimensions}" if self.dimensions is not None else ""
        return f"openai:{self.endpoint}/{self.model}{suffix}"

    def embed(self, texts: Sequence[str], *, query: bool = False) -> Vectors:
        if not texts:
            return np.zeros((0, self._dimension or 0), dtype=np.float32)
        parts = [
            self._embed_batch(texts[i : i + self.batch_size]) for i in range(0, len(texts), self.batch_size)
        ]
        return parts[0] if len(parts) == 1 else np.concatenate(parts)

    def close(self) -> None:
        self._client.close()

    def __repr__(self) -> str:
        return f"OpenAIEmbedder({self.identity()!r}, base_url={self.base_url!r})"

    # -- one request ----------------------------------------------------------------------------------

    def _api_key(self) -> str | None:
        if not self.api_key_env:
            return None  # self-hosted servers usually take no key
        key = os.environ.get(self.api_key_env)
        if not key:
            raise MissingAPIKeyError(
                f"endpoint {self.endpoint!r} needs an API key and {self.api_key_env} is not set",
                hint=f"export {self.api_key_env}=..., or name another variable in api_key_env "
                f"under [endpoints.{self.endpoint}]",
            )
        return key

    def _url(self) -> str:
        if self.azure_api_version:
            deployment = f"{self.base_url}/openai/deployments/{self.model}"
            return f"{deployment}/embeddings?api-version={self.azure_api_version}"
        return f"{self.base_url}/embeddings"

    def _embed_batch(self, texts: Sequence[str]) -> Vectors:
        # OpenAI rejects empty strings; a single space stands in for one.
        body: dict[str, Any] = {"model": self.model, "input": [t or " " for t in texts]}
        if self.dimensions is not None:
            body["dimensions"] = self.dimensions
        data = self._post_with_retries(body)
        vectors = self._parse(data, len(texts))
        if self._dimension is None:
            self._dimension = vectors.shape[1]
        elif vectors.shape[1] != self._dimension:
            raise ProviderError(
                f"endpoint {self.endpoint!r} returned {vectors.shape[1]}-dimensional vectors for "
                f"{self.model!r}, expected {self._dimension}",
                provider=self.endpoint,
                hint="set the `dimensions` option to the size the model produces",
            )
        return vectors

    def _post_with_retries(self, body: dict[str, Any]) -> Any:
        policy = self.retry
        started = time.monotonic()
        attempt = 0
        while True:
            try:
                return self._post(body)
            except ProviderError as exc:
                attempt += 1
                if not exc.retryable or attempt >= policy.max_attempts:
                    if exc.retryable:
                        exc.message = f"{exc.message} (gave up after {attempt} attempts)"
                    raise
                delay = backoff_delay(attempt, policy.base_delay_s, policy.max_delay_s, exc.retry_after)
                if time.monotonic() - started + delay > policy.max_total_s:
                    exc.message = f"{exc.message} (gave up after {attempt} attempts: retry budget spent)"
                    raise
                time.sleep(delay)

    def _post(self, body: dict[str, Any]) -> Any:
        key = self._api_key()
        headers = {"Content-Type": "application/json", **self.extra_headers}
        if key is not None:
            headers.update({"api-key": key} if self.azure_api_version else {"Authorization": f"Bearer {key}"})
        try:
            response = self._client.post(self._url(), json=body, headers=headers)
        except httpx.TimeoutException as exc:
            raise self.failures.timed_out() from exc
        except (httpx.ConnectError, httpx.UnsupportedProtocol, httpx.InvalidURL) as exc:
            raise self.failures.unreachable(exc) from exc
        except httpx.TransportError as exc:
            raise self.failures.dropped(exc) from exc
        if response.status_code >= 400:
            detail = error_text(response.status_code, response.text)
            if key:
                detail = detail.replace(key, "***")
            raise self._status_error(response.status_code, response.headers, detail)
        try:
            return response.json()
        except ValueError as exc:
            raise self.failures.not_json(response.status_code) from exc

    def _status_error(self, status: int, headers: httpx.Headers, detail: str) -> ModelError:
        if status == 404:
            return UnknownModelError(
                f"endpoint {self.endpoint!r} has no embedding model {self.model!r} or no embeddings API at "
                f"{self.base_url} (HTTP 404): {detail}",
                hint=f"list its models with `honed models list --endpoint {self.endpoint}`",
            )
        return self.failures.status(status, headers, detail, self.model)

    def _parse(self, data: Any, count: int) -> Vectors:
        try:
            items = sorted(data["data"], key=lambda item: int(item["index"]))
            rows = [_vector(item["embedding"]) for item in items]
            if len(rows) != count or len({len(r) for r in rows}) != 1 or not len(rows[0]):
                raise ValueError(f"{len(rows)} vectors of sizes {sorted({len(r) for r in rows})} for {count}")
            vectors = np.stack(rows)
        except (KeyError, IndexError, TypeError, ValueError) as exc:
            raise ProviderError(
                f"endpoint {self.endpoint!r} returned a reply that is not an embedding list: "
                f"{' '.join(str(exc).split())[:200]}",
                provider=self.endpoint,
                hint="is base_url an OpenAI-compatible API (it usually ends in /v1)?",
            ) from None
        norms = np.linalg.norm(vectors, axis=1, keepdims=True)
        unit: Vectors = (vectors / np.maximum(norms, np.finfo(np.float32).tiny)).astype(
            np.float32, copy=False
        )
        return unit


def _vector(embedding: Any) -> Any:
    if isinstance(embedding, str):  # encoding_format=base64, which some servers use by default
        return np.frombuffer(base64.b64decode(embedding), dtype="<f4")
    return np.asarray(embedding, dtype=np.float32)


def create(ref: EmbedderRef, settings: Settings) -> OpenAIEmbedder:
    """The `openai` kind's factory."""
    ref.check_options(OPTIONS)
    dimensions = _positive_int(ref, "dimensions", None, None)
    batch_size = _positive_int(ref, "batch_size", BATCH_SIZE, MAX_BATCH)
    config = ref.config
    if not config.base_url:
        raise ProviderError(
            f"endpoint {ref.endpoint!r} has no base_url",
            provider=ref.endpoint,
            hint=f'add base_url = "http://host:port/v1" under [endpoints.{ref.endpoint}] in honed.toml',
        )
    options = config.options
    return OpenAIEmbedder(
        ref.endpoint,
        ref.model,
        base_url=config.base_url,
        api_key_env=config.api_key_env,
        timeout_s=config.timeout_s,
        retry=settings.retry,
        dimensions=dimensions,
        batch_size=batch_size or BATCH_SIZE,
        headers=options.get("headers"),
        azure_api_version=options.get("azure_api_version"),
    )


def _positive_int(ref: EmbedderRef, name: str, default: int | None, most: int | None) -> int | None:
    value = ref.options.get(name, default)
    if value is None:
        return None
    if not isinstance(value, int) or isinstance(value, bool) or value < 1 or (most and value > most):
        limit = f" up to {most}" if most else ""
        raise InvalidInputError(
            f"embedder {str(ref)!r}: {name} must be a positive integer{limit}, not {value!r}"
        )
    return value
