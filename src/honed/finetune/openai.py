"""The `openai` training backend: a fine-tuning job on OpenAI (or any endpoint with its fine-tuning API).

A remote job costs money, so creating a second one by accident is the failure to design against. The
backend keeps what it has done in `ctx.workdir/state.json`, written atomically after every step: the
uploaded file ids, then `creating` (just before the create call; the job carries the honed job id in its
`metadata`), then the remote job id, all before any polling. A worker that is killed and started again
re-attaches to the job in `state.json`, or finds the one a kill interrupted mid-create by its metadata,
and only then creates one.

The base model is `ENDPOINT/MODEL` with the endpoint configured as for inference (base_url, api_key_env);
the trained model is registered as `ENDPOINT/ft:...`, callable like any model of that endpoint.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from honed.errors import (
    FinetuneCancelled,
    FinetuneError,
    HonedError,
    InvalidInputError,
    ProviderError,
)
from honed.finetune.backend import ChatExample, FinetuneSpec, JobContext, TrainResult

if TYPE_CHECKING:
    import openai

    from honed.config import Settings
    from honed.models.providers.openai_compat import OpenAICompatProvider

__all__ = ["HYPERPARAMETERS", "OpenAIBackend"]

#: Keys of `FinetuneSpec.hyperparameters` this backend passes on (the supervised method's, and `seed`).
HYPERPARAMETERS = frozenset({"n_epochs", "batch_size", "learning_rate_multiplier", "seed"})
TERMINAL = frozenset({"succeeded", "failed", "cancelled"})
STATE_FILE = "state.json"
#: Consecutive failed polls (each after the SDK's own retries) before the worker gives up.
MAX_POLL_FAILURES = 20
METADATA_KEY = "honed_job_id"

T = TypeVar("T")


class OpenAIBackend:
    """Fine-tunes through OpenAI's fine-tuning API with the official SDK; see the module docstring."""

    name = "openai"

    def __init__(self, *, poll_interval_s: float = 15.0, max_retries: int = 3) -> None:
        self.poll_interval_s = poll_interval_s
        self.max_retries = max_retries  # the SDK's own retries of 429/5xx/connection errors per call

    # -- the TrainingBackend contract -------------------------------------------------------------------

    def check(
        self, spec: FinetuneSpec, training: list[ChatExample], validation: list[ChatExample] | None
    ) -> None:
        """Refuse a job OpenAI would refuse: unknown hyperparameters, or examples that break its rules."""
        unknown = sorted(set(spec.hyperparameters) - HYPERPARAMETERS)
        if unknown:
            raise InvalidInputError(
                f"the openai backend does not take hyperparameter(s) {', '.join(unknown)}",
                hint=f"use {', '.join(sorted(HYPERPARAMETERS))}",
            )
        _split_model(spec.base_model)
        from honed.finetune.chat_format import require_chat_examples

        require_chat_examples(training)
        if validation:
            try:
                require_chat_examples(validation, min_examples=1)
            except InvalidInputError as exc:
                exc.message = f"validation data: {exc.message}"
                raise

    def probe(self, settings: Settings, base_model: str) -> None:
        """List one job: an OpenAI-compatible server without the fine-tuning API (vLLM, honed serve)
        answers 404, a wrong key 401, before any data is uploaded. Listing jobs costs nothing."""
        endpoint, _ = _split_model(base_model)
        remote = _Remote.open(settings, endpoint, max_retries=1)
        try:
            remote.call(lambda c: c.fine_tuning.jobs.list(limit=1))
        except ProviderError as exc:
            if exc.status in (404, 405, 501):
                raise InvalidInputError(
                    f"endpoint {endpoint!r} ({remote.provider.base_url}) has no fine-tuning API: "
                    f"GET fine_tuning/jobs answered HTTP {exc.status}",
                    hint="fine-tune on an endpoint that has one (e.g. openai), or name a model already "
                    "fine-tuned elsewhere",
                ) from None
            raise
        finally:
            remote.close()

    def run(self, ctx: JobContext) -> TrainResult:
        """Upload, create (once), poll to the end, and return `ENDPOINT/ft:...` with the final metrics."""
        endpoint, _ = _split_model(ctx.spec.base_model)
        remote = _Remote.open(ctx.settings, endpoint, self.max_retries)
        try:
            return self._run(ctx, remote)
        finally:
            remote.close()

    def cancel(self, ctx: JobContext) -> None:
        """Cancel the remote job, if one was created and has not finished."""
        state = _load_state(ctx.workdir)
        job_id = state.get("job_id")
        if not job_id:
            return  # nothing remote yet: the worker sees cancel_requested before it creates one
        endpoint, _ = _split_model(ctx.spec.base_model)
        remote = _Remote.open(ctx.settings, endpoint, self.max_retries)
        try:
            job = remote.call(lambda c: c.fine_tuning.jobs.retrieve(job_id))
            if job.status not in TERMINAL:
                remote.call(lambda c: c.fine_tuning.jobs.cancel(job_id))
        finally:
            remote.close()

    # -- the steps ------------------------------------------------------------------------------------

    def _run(self, ctx: JobContext, remote: _Remote) -> TrainResult:
        state = _load_state(ctx.workdir)
        job_id = state.get("job_id")
        if job_id:
            ctx.event(f"re-attached to OpenAI fine-tuning job {job_id}", kind="remote")
        else:
            job_id = self._attach_or_create(ctx, remote, state)
        last_status = state.get("status")
        failures = 0
        while True:
            try:
                job = remote.call(lambda c: c.fine_tuning.jobs.retrieve(job_id))
                self._mirror_events(ctx, remote, job_id, state)
            except ProviderError as exc:
                # A job runs for hours: an outage of the API while it does is waited out, not fatal.
                failures += 1
                if not exc.retryable or failures >= MAX_POLL_FAILURES:
                    raise
                ctx.event(f"polling OpenAI failed, will retry: {exc.one_line()}", kind="message")
                time.sleep(self.poll_interval_s)
                continue
            failures = 0
            if job.status != last_status:
                ctx.event(f"remote job {job_id}: {job.status}", kind="status", data={"remote": job.status})
                last_status = state["status"] = job.status
                _save_state(ctx.workdir, state)
            if job.status == "succeeded":
                return self._result(ctx, remote.endpoint, job, state)
            if job.status == "failed":
                err = job.error
                why = err.message if err is not None and err.message else "no reason given"
                code = f" ({err.code})" if err is not None and err.code else ""
                raise FinetuneError(
                    f"OpenAI fine-tuning job {job_id} failed{code}: {' '.join(why.split())}",
                    hint="fix the training data or hyperparameters it names, then create a new job",
                )
            if job.status == "cancelled":
                raise FinetuneCancelled(f"OpenAI fine-tuning job {job_id} was cancelled")
            if ctx.cancel_requested():
                remote.call(lambda c: c.fine_tuning.jobs.cancel(job_id))
                ctx.event(f"asked OpenAI to cancel remote job {job_id}", kind="remote")
                raise FinetuneCancelled(f"OpenAI fine-tuning job {job_id} was cancelled")
            time.sleep(self.poll_interval_s)

    def _attach_or_create(self, ctx: JobContext, remote: _Remote, state: dict[str, Any]) -> str:
        spec = ctx.spec
        if state.get("creating"):
            # A kill between the create call and saving its id: the job may exist. Find it by metadata.
            page = remote.call(
                lambda c: c.fine_tuning.jobs.list(metadata={METADATA_KEY: ctx.job_id}, limit=10)
            )
            if page.data:
                return _remember_job(ctx, state, page.data[0].id, reattached=True)
        if ctx.cancel_requested():
            raise FinetuneCancelled(f"job {ctx.job_id} was cancelled before it reached OpenAI")
        if not state.get("training_file"):
            state["training_file"] = _upload(remote, ctx.training_examples(), f"{ctx.job_id}-train.jsonl")
            _save_state(ctx.workdir, state)
        validation = ctx.validation_examples()
        if validation and not state.get("validation_file"):
            state["validation_file"] = _upload(remote, validation, f"{ctx.job_id}-validation.jsonl")
            _save_state(ctx.workdir, state)
        ctx.event(f"uploaded training data to OpenAI ({state['training_file']})", kind="remote")
        state["creating"] = True
        _save_state(ctx.workdir, state)
        _, model = _split_model(spec.base_model)
        params = dict(spec.hyperparameters)
        seed = params.pop("seed", None)
        kwargs: dict[str, Any] = {
            "model": model,
            "training_file": state["training_file"],
            "metadata": {METADATA_KEY: ctx.job_id},
            "method": {"type": "supervised", "supervised": {"hyperparameters": params}},
        }
        if state.get("validation_file"):
            kwargs["validation_file"] = state["validation_file"]
        if spec.suffix:
            kwargs["suffix"] = spec.suffix
        if seed is not None:
            kwargs["seed"] = int(seed)
        job = remote.call(lambda c: c.fine_tuning.jobs.create(**kwargs))
        return _remember_job(ctx, state, job.id, reattached=False)

    def _mirror_events(self, ctx: JobContext, remote: _Remote, job_id: str, state: dict[str, Any]) -> None:
        """Record the remote events not seen yet, oldest first; metric events also as curve points.

        The API lists events newest first: page back until the newest event already recorded. Progress
        is saved after each event, so a kill repeats at most the one event it interrupted.
        """
        seen = state.get("last_event_id")
        fresh: list[Any] = []
        after: str | None = None
        while True:
            page = remote.call(_events_page(job_id, after))
            reached = False
            for event in page.data:
                if event.id == seen:
                    reached = True
                    break
                fresh.append(event)
            if reached or not page.has_more or not page.data:
                break
            after = page.data[-1].id
        if not fresh:
            return
        for event in reversed(fresh):
            data = event.data if isinstance(event.data, dict) else None
            ctx.event(
                event.message,
                kind="remote",
                data={"id": event.id, "level": event.level, "type": event.type, "data": data},
            )
            if event.type == "metrics" and data is not None and "step" in data:
                values = {k: float(v) for k, v in data.items() if k != "step" and _number(v)}
                if "train_loss" in values:
                    values["loss"] = values.pop("train_loss")
                    state["train_loss"] = values["loss"]
                if values:
                    ctx.metric(int(data["step"]), **values)
            state["last_event_id"] = event.id
            _save_state(ctx.workdir, state)

    def _result(self, ctx: JobContext, endpoint: str, job: Any, state: dict[str, Any]) -> TrainResult:
        if not job.fine_tuned_model:
            raise FinetuneError(
                f"OpenAI reports job {job.id} succeeded but names no fine-tuned model",
                hint="look the job up on the OpenAI dashboard",
            )
        metrics: dict[str, Any] = {"remote_job_id": job.id, "trained_tokens": job.trained_tokens}
        if "train_loss" in state:
            metrics["train_loss"] = state["train_loss"]
        if job.result_files:
            metrics["result_files"] = list(job.result_files)
        return TrainResult(model=f"{endpoint}/{job.fine_tuned_model}", metrics=metrics)


# -- the remote side ----------------------------------------------------------------------------------


class _Remote:
    """The SDK client of one endpoint; `call` turns the SDK's exceptions into honed's."""

    def __init__(self, endpoint: str, provider: OpenAICompatProvider, client: openai.OpenAI) -> None:
        self.endpoint = endpoint
        self.provider = provider
        self.client = client

    @classmethod
    def open(cls, settings: Settings, endpoint: str, max_retries: int) -> _Remote:
        import openai

        from honed.models.client import ModelClient
        from honed.models.providers.openai_compat import OpenAICompatProvider

        endpoints = ModelClient(settings).endpoints()
        config = endpoints.get(endpoint)
        if config is None or config.provider != "openai":
            known = sorted(n for n, e in endpoints.items() if e.provider == "openai")
            raise InvalidInputError(
                f"endpoint {endpoint!r} is not an OpenAI-compatible endpoint; cannot fine-tune on it",
                hint=f"use one of: {', '.join(known)}, or add [endpoints.{endpoint}] with "
                'provider = "openai" to honed.toml',
            )
        provider = OpenAICompatProvider.from_config(endpoint, config, settings)
        key = provider.api_key()  # MissingAPIKeyError, naming the variable, before anything is sent
        client = openai.OpenAI(
            base_url=provider.base_url,
            api_key=key,
            max_retries=max_retries,
            timeout=config.timeout_s,
            default_headers=provider.extra_headers or None,
        )
        return cls(endpoint, provider, client)

    def call(self, fn: Callable[[openai.OpenAI], T]) -> T:
        import openai

        failures = self.provider.failures
        try:
            return fn(self.client)
        except openai.APITimeoutError as exc:
            raise failures.timed_out() from exc
        except openai.APIConnectionError as exc:
            raise failures.unreachable(exc.__cause__ or exc) from exc
        except openai.APIStatusError as exc:
            raise self._status_error(exc) from exc

    def _status_error(self, exc: Any) -> HonedError:
        from honed.models.providers.openai_wire import error_text

        status = int(exc.status_code)
        detail = self._scrub(error_text(status, exc.response.text))
        where = f"endpoint {self.endpoint!r}"
        env = self.provider.api_key_env
        if status in (401, 403):
            return ProviderError(
                f"{where} rejected the API key (HTTP {status}): {detail}",
                provider=self.endpoint,
                status=status,
                hint=f"check the key in {env}" if env else "set api_key_env for this endpoint",
            )
        return ProviderError(
            f"{where}: the fine-tuning API failed (HTTP {status}): {detail}",
            provider=self.endpoint,
            status=status,
            retryable=status == 429 or status >= 500,
            hint="try again later" if status == 429 or status >= 500 else None,
        )

    def _scrub(self, text: str) -> str:
        """The message without the API key, should a server echo it back."""
        with contextlib.suppress(HonedError):
            key = self.provider.api_key()
            if key and key != "not-needed":
                text = text.replace(key, "***")
        return text

    def close(self) -> None:
        self.client.close()


def _events_page(job_id: str, after: str | None) -> Callable[[openai.OpenAI], Any]:
    def fetch(client: openai.OpenAI) -> Any:
        if after is None:
            return client.fine_tuning.jobs.list_events(job_id, limit=100)
        return client.fine_tuning.jobs.list_events(job_id, limit=100, after=after)

    return fetch


def _upload(remote: _Remote, examples: list[ChatExample], filename: str) -> str:
    body = "".join(json.dumps(e, ensure_ascii=False) + "\n" for e in examples).encode("utf-8")
    stored = remote.call(lambda c: c.files.create(file=(filename, io.BytesIO(body)), purpose="fine-tune"))
    return str(stored.id)


def _remember_job(ctx: JobContext, state: dict[str, Any], job_id: str, *, reattached: bool) -> str:
    state["job_id"] = job_id
    state.pop("creating", None)
    _save_state(ctx.workdir, state)
    what = "re-attached to" if reattached else "created"
    ctx.event(f"{what} OpenAI fine-tuning job {job_id}", kind="remote", data={"remote_job_id": job_id})
    return job_id


# -- state and checks -----------------------------------------------------------------------------------


def _load_state(workdir: Path) -> dict[str, Any]:
    path = workdir / STATE_FILE
    if not path.is_file():
        return {}
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except ValueError as exc:
        raise FinetuneError(
            f"{path} is not valid JSON ({exc})",
            hint="it holds the remote job id: fix it by hand, or remove it to start a new remote job",
        ) from None
    return data if isinstance(data, dict) else {}


def _save_state(workdir: Path, state: dict[str, Any]) -> None:
    """Write atomically: a kill mid-write leaves the previous state, never half of one."""
    workdir.mkdir(parents=True, exist_ok=True)
    tmp = workdir / f"{STATE_FILE}.tmp"
    with tmp.open("w", encoding="utf-8") as f:
        json.dump(state, f, indent=2)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, workdir / STATE_FILE)


def _split_model(base_model: str) -> tuple[str, str]:
    endpoint, sep, model = base_model.partition("/")
    if not sep or not endpoint or not model:
        raise InvalidInputError(
            f"base model {base_model!r} is not of the form ENDPOINT/MODEL",
            hint="e.g. openai/gpt-4o-mini-2024-07-18",
        )
    return endpoint, model


def _number(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)
