"""One exception tree for honed.

Every error a user can cause is a `HonedError` whose message says what is wrong and whose `hint` says how
to fix it. Foreign exceptions (httpx, openai, SQLAlchemy, pydantic) are translated into these at the
boundary where they occur; only the CLI turns them into messages and exit codes.

Messages are masked (`honed.secrets.mask`) when made and again when printed, since callers append to
`message` (the retry loop does): an endpoint that echoes an API key, or a driver that quotes a database URL
with its password, cannot carry a secret into a terminal, a stored result or an HTTP reply.
"""

from __future__ import annotations

from honed.secrets import mask


class HonedError(Exception):
    """Base of every error honed raises on purpose."""

    exit_code = 1

    def __init__(self, message: str, *, hint: str | None = None) -> None:
        message = mask(message)
        super().__init__(message)
        self.message = message
        self.hint = mask(hint) if hint else hint

    def __str__(self) -> str:
        return mask(f"{self.message} ({self.hint})" if self.hint else self.message)

    def one_line(self) -> str:
        """The message and hint on one line, as the CLI prints it."""
        return " ".join(str(self).split())


class ConfigError(HonedError):
    """A setting, `honed.toml` or an environment variable is wrong."""


class WorkspaceNotFoundError(ConfigError):
    """No `honed.toml` in this folder or any parent, and no HONED_HOME."""


class InvalidInputError(HonedError):
    """A user-written file or argument is malformed."""


class StoreError(HonedError):
    """The database cannot be reached, migrated or written."""


class ImmutableVersionError(StoreError):
    """Something tried to change the content behind an existing content hash."""


class NotFoundError(HonedError):
    """A named thing (version, label, model, job) does not exist."""


class ModelError(HonedError):
    """Calling a model failed."""


class UnknownModelError(ModelError):
    """A model reference names no registered provider, endpoint or model."""


class MissingAPIKeyError(ModelError):
    """The endpoint needs an API key and its environment variable is unset."""


class ProviderError(ModelError):
    """A provider's call failed. `retryable` says whether trying again can help."""

    def __init__(
        self,
        message: str,
        *,
        provider: str,
        status: int | None = None,
        retry_after: float | None = None,
        retryable: bool = False,
        hint: str | None = None,
    ) -> None:
        super().__init__(message, hint=hint)
        self.provider = provider
        self.status = status
        self.retry_after = retry_after
        self.retryable = retryable


class EndpointUnreachableError(ProviderError):
    """The endpoint could not be connected to (refused, DNS, TLS) or timed out."""


class RateLimitError(ProviderError):
    """HTTP 429 from the endpoint."""


class OutputParseError(ModelError):
    """The model was asked for JSON and returned text that does not parse; `raw` keeps what it said."""

    def __init__(self, message: str, *, raw: str, hint: str | None = None) -> None:
        super().__init__(message, hint=hint)
        self.raw = raw
        self.completion: object | None = None  # the Completion whose text failed to parse, when known


class RetrievalError(HonedError):
    """A knowledge base, embedder, vector store or SQL source failed (unreachable server, bad index)."""


class FinetuneError(HonedError):
    """A fine-tuning job could not be created, run or resumed."""


class FinetuneCancelled(FinetuneError):
    """A fine-tuning job stopped because it was cancelled."""


class BudgetExceededError(HonedError):
    """A run's cost budget is spent."""


class RunInterrupted(HonedError):
    """Ctrl-C stopped a run after the calls in flight were stored; the same command resumes it."""

    exit_code = 130


def is_retryable(error: BaseException) -> bool:
    """Whether a failed call is worth retrying (429, 5xx, timeouts, dropped connections)."""
    return isinstance(error, ProviderError) and error.retryable
