"""What one logged generation and one piece of feedback are: the validated shape every path writes.

The Python API, honed's own calls (experiments, `honed serve`) and the HTTP ingestion endpoint all build
these, so a record is checked the same way wherever it comes from. Unknown keys are rejected (a typo in
an application's field name should fail loudly, not vanish).
"""

from __future__ import annotations

import random
import re
import uuid
from datetime import UTC, datetime
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, field_validator, model_validator

#: Where a log came from. `app` is the user's application (Python API or HTTP ingestion).
Source = Literal["app", "serve", "experiment", "api", "judge"]
SOURCES: tuple[str, ...] = ("app", "serve", "experiment", "api", "judge")

#: Explicit feedback kinds, then implicit signals. Custom kinds of the same shape are accepted too.
EXPLICIT_KINDS = ("thumbs", "rating", "correction", "comment")
IMPLICIT_KINDS = ("copied", "regenerated", "edited", "accepted", "rejected")
_KIND = re.compile(r"^[a-z][a-z0-9_.-]{0,39}$")
_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._:-]{0,99}$")


def _as_utc(value: datetime) -> datetime:
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


#: A timestamp stored as UTC; one without a zone is taken to be UTC already.
UTCTime = Annotated[datetime, AfterValidator(_as_utc)]


def new_log_id() -> str:
    # 128 random bits from `random` (seeded from the OS, reseeded after fork): uuid4's os.urandom is a
    # system call per id, which costs more than the rest of logging a record where syscalls are slow.
    return f"log-{random.getrandbits(128):032x}"


class ChatMessage(BaseModel):
    model_config = ConfigDict(extra="allow")
    role: Literal["system", "user", "assistant", "tool", "developer"]
    content: str | list[dict[str, Any]] | None = None


class LogRecord(BaseModel):
    """One generation. Needs a model and at least one of `messages` / `inputs`."""

    model_config = ConfigDict(extra="forbid")

    id: str = Field(default_factory=new_log_id)
    created_at: UTCTime = Field(default_factory=lambda: datetime.now(UTC))
    source: Source = "app"
    model: str = Field(min_length=1, max_length=300)
    prompt: str | None = Field(default=None, max_length=200)
    prompt_version: str | None = Field(default=None, max_length=100)
    inputs: dict[str, Any] | None = None
    messages: list[ChatMessage] | None = None
    output: str | None = None
    params: dict[str, Any] = Field(default_factory=dict)
    input_tokens: int | None = Field(default=None, ge=0)
    output_tokens: int | None = Field(default=None, ge=0)
    latency_s: float | None = Field(default=None, ge=0)  # time in the model
    queue_s: float | None = Field(default=None, ge=0)  # time waiting for it (a slot, a batch), apart
    cost_usd: float | None = Field(default=None, ge=0)
    error: str | None = None
    trace_id: str | None = Field(default=None, max_length=200)
    session_id: str | None = Field(default=None, max_length=200)
    metadata: dict[str, Any] = Field(default_factory=dict)

    @field_validator("id")
    @classmethod
    def _id_shape(cls, value: str) -> str:
        if not _ID.match(value):
            raise ValueError("ids use letters, digits, '.', '_', ':' and '-' (at most 100)")
        return value

    @model_validator(mode="after")
    def _has_input(self) -> LogRecord:
        if self.messages is None and self.inputs is None:
            raise ValueError("a log needs `messages` or `inputs` (what went into the model)")
        return self

    def row(self) -> dict[str, Any]:
        """The `logs` table row."""
        out = self.model_dump(exclude={"messages"})
        out["messages"] = (
            [m.model_dump(exclude_none=True) for m in self.messages] if self.messages is not None else None
        )
        return out


class FeedbackRecord(BaseModel):
    """Feedback on one log: `thumbs` (value 1 up / 0 down, or `up`/`down`), `rating` (a number),
    `correction` (text: the output it should have been), `comment` (text), or an implicit signal."""

    model_config = ConfigDict(extra="forbid")

    id: str = Field(default_factory=lambda: "fb-" + uuid.uuid4().hex[:20])
    log_id: str = Field(min_length=1, max_length=100)
    kind: str
    value: float | None = None
    text: str | None = None
    source: str | None = Field(default=None, max_length=200)
    created_at: UTCTime = Field(default_factory=lambda: datetime.now(UTC))

    @field_validator("value", mode="before")
    @classmethod
    def _thumb_words(cls, value: Any) -> Any:
        if isinstance(value, str) and value.lower() in ("up", "down"):
            return 1.0 if value.lower() == "up" else 0.0
        if isinstance(value, bool):
            return float(value)
        return value

    @field_validator("kind")
    @classmethod
    def _kind_shape(cls, value: str) -> str:
        if not _KIND.match(value):
            raise ValueError(
                f"{value!r} is not a feedback kind (use {', '.join(EXPLICIT_KINDS + IMPLICIT_KINDS)}, "
                "or a lowercase name of your own)"
            )
        return value

    @model_validator(mode="after")
    def _kind_needs(self) -> FeedbackRecord:
        if self.kind == "thumbs" and self.value not in (0.0, 1.0):
            raise ValueError("thumbs feedback needs value 1 (up) or 0 (down)")
        if self.kind == "rating" and self.value is None:
            raise ValueError("rating feedback needs a numeric value")
        if self.kind in ("correction", "comment") and not self.text:
            raise ValueError(f"{self.kind} feedback needs text")
        return self

    def row(self) -> dict[str, Any]:
        return self.model_dump()
