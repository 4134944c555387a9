"""The contract between fine-tuning jobs and the backends that train (plugins, the built-ins included).

A job is persisted (`finetune_jobs` / `finetune_events`) and run by a worker process; the worker hands the
backend a `JobContext` and calls `run`, which blocks until the model is trained and returns the model
reference to register. Training data is always a list of chat examples in OpenAI's fine-tuning format,
`{"messages": [{"role": "system"|"user"|"assistant", "content": "..."}, ...]}`, whose last message is the
assistant turn to learn; it is stored content-hashed in the objects table, so a job's data is frozen.

A backend must be resumable: `run` called again for the same job (same `workdir`) after the worker was
killed continues from what it had saved (a checkpoint; a remote job id) instead of starting over.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from honed.config import Settings

ChatExample = dict[str, Any]
"""`{"messages": [...]}` in OpenAI's chat fine-tuning format."""

#: The entry-point group backends register under: `register(registry)` calls `registry.add(backend)`.
ENTRY_POINT_GROUP = "honed.trainers"


@dataclass(frozen=True, slots=True)
class FinetuneSpec:
    """What a job trains: the base model, the frozen data, and the backend's hyperparameters."""

    backend: str
    base_model: str
    training: str  # objects-table hash of the list of training ChatExamples
    validation: str | None = None  # same, for the validation examples (early stopping, eval loss)
    hyperparameters: dict[str, Any] = field(default_factory=dict)
    suffix: str | None = None
    source: dict[str, Any] = field(default_factory=dict)  # where the data came from (dataset ref, options)

    def to_dict(self) -> dict[str, Any]:
        return {
            "backend": self.backend,
            "base_model": self.base_model,
            "training": self.training,
            "validation": self.validation,
            "hyperparameters": dict(self.hyperparameters),
            "suffix": self.suffix,
            "source": dict(self.source),
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> FinetuneSpec:
        return cls(
            backend=str(data["backend"]),
            base_model=str(data["base_model"]),
            training=str(data["training"]),
            validation=data.get("validation"),
            hyperparameters=dict(data.get("hyperparameters") or {}),
            suffix=data.get("suffix"),
            source=dict(data.get("source") or {}),
        )


@dataclass(frozen=True, slots=True)
class TrainResult:
    """A finished training: the model reference to register (usable as any model) and final metrics."""

    model: str
    metrics: dict[str, Any] = field(default_factory=dict)


class JobContext(Protocol):
    """What a running backend sees of its job."""

    @property
    def job_id(self) -> str: ...

    @property
    def spec(self) -> FinetuneSpec: ...

    @property
    def workdir(self) -> Path:
        """A folder that belongs to this job (`<workspace data>/finetune/<job id>`): checkpoints, state."""
        ...

    @property
    def settings(self) -> Settings: ...

    def training_examples(self) -> list[ChatExample]: ...

    def validation_examples(self) -> list[ChatExample] | None: ...

    def event(self, message: str, *, kind: str = "message", data: dict[str, Any] | None = None) -> None:
        """Record a job event (kinds: message, metric, checkpoint, status, remote)."""
        ...

    def metric(self, step: int, **values: float) -> None:
        """Record a point of the training curve (e.g. `metric(12, loss=1.3, lr=1e-3)`)."""
        ...

    def cancel_requested(self) -> bool:
        """True once someone asked to cancel; the backend stops at the next safe point and returns."""
        ...


class TrainingBackend(Protocol):
    name: str

    def check(
        self, spec: FinetuneSpec, training: list[ChatExample], validation: list[ChatExample] | None
    ) -> None:
        """Refuse, with an InvalidInputError, a job this backend cannot run (before it is created)."""
        ...

    def probe(self, settings: Settings, base_model: str) -> None:
        """Refuse, with an InvalidInputError or the endpoint's own error, a base model this backend cannot
        train here: cheap, before any training data is built (so a ladder fails before its first call)."""
        ...

    def run(self, ctx: JobContext) -> TrainResult:
        """Train (blocking, in the worker process). Raise `FinetuneCancelled` if a cancel stopped it."""
        ...

    def cancel(self, ctx: JobContext) -> None:
        """Cancel remote work, if any (the local backend stops by polling `cancel_requested`)."""
        ...


BackendFactory = Callable[[], TrainingBackend]
