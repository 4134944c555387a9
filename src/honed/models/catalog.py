"""What can be called: every model honed can reach from this workspace, for `honed models list`.

An endpoint is where calls go; a user wants the models they can name. So each endpoint is asked what it
serves: the `local` provider answers from this machine (the embedded model and each LoRA adapter it
finds: the workspace's fine-tuned ones and those named in honed.toml), an OpenAI-compatible endpoint
from its `/v1/models` (all endpoints at once, each within a short timeout; one that does not answer, or
has no key, is listed as such rather than failing the listing), the scripted fake from its scripts.
Fine-tuning jobs that produced a model say which job made it and from which base, and a job's model
that its endpoint does not list (yet, or any more) is still shown, with that status.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from honed.errors import HonedError, MissingAPIKeyError

if TYPE_CHECKING:
    from honed.models.client import ModelClient
    from honed.store import Store
    from honed.store.jobs import JobRow

#: seconds an endpoint has to say which models it serves
LIST_TIMEOUT_S = 3.0

KINDS = ("local", "adapter", "fine-tuned", "served", "scripted")


@dataclass(frozen=True, slots=True)
class ModelEntry:
    """One model to call as `model` (`ENDPOINT/MODEL`), or, with status other than "ready", what keeps
    an endpoint's models from being listed (`model` is then `ENDPOINT/*`).

    `kind`: "local" (the embedded model, run in process), "adapter" (a LoRA adapter on it), "fine-tuned"
    (a model a fine-tuning job made on a remote endpoint), "served" (what an endpoint's /v1/models
    reports), "scripted" (the fake). `status`: "ready", "unreachable", "no key" or "missing"."""

    model: str
    endpoint: str
    kind: str
    base: str | None = None
    job: str | None = None
    status: str = "ready"
    detail: str | None = None
    default: bool = False

    def to_dict(self) -> dict[str, Any]:
        return {
            "model": self.model,
            "endpoint": self.endpoint,
            "kind": self.kind,
            "base": self.base,
            "job": self.job,
            "status": self.status,
            "detail": self.detail,
            "default": self.default,
        }


def list_models(
    client: ModelClient,
    store: Store | None = None,
    *,
    endpoint: str | None = None,
    timeout_s: float = LIST_TIMEOUT_S,
) -> list[ModelEntry]:
    """The models of every endpoint (or of `endpoint` alone), the default model first, then by endpoint.
    `store` supplies the fine-tuning jobs (without one, adapters are listed without their jobs)."""
    endpoints = client.endpoints()
    if endpoint is not None:
        client.resolve(f"{endpoint}/-")  # an unknown endpoint is an error that lists the known ones
        names = [endpoint]
    else:
        names = sorted(endpoints)
    jobs = _jobs_by_model(store)

    async def gather() -> list[list[ModelEntry]]:
        try:
            return list(await asyncio.gather(*(_one(client, name, jobs, timeout_s) for name in names)))
        finally:
            await client.aclose_providers()

    entries = [e for group in asyncio.run(gather()) for e in group]
    # A job's model its endpoint did not list: shown anyway, so a finished job is never invisible.
    listed = {e.model for e in entries}
    for model, job in jobs.items():
        name = model.partition("/")[0]
        if model not in listed and name in names and name in endpoints:
            reachable = not any(e.endpoint == name and e.status != "ready" for e in entries)
            entries.append(
                ModelEntry(
                    model,
                    name,
                    "adapter" if endpoints[name].provider == "local" else "fine-tuned",
                    base=_base(job),
                    job=job.id,
                    status="missing" if reachable else "unreachable",
                    detail="the endpoint does not list it" if reachable else None,
                )
            )
    default = client.settings.default_model
    entries = [_with(e, default=e.model == default) for e in entries]
    order = {kind: i for i, kind in enumerate(KINDS)}
    return sorted(entries, key=lambda e: (not e.default, e.endpoint, order.get(e.kind, 99), e.model))


async def _one(client: ModelClient, name: str, jobs: dict[str, JobRow], timeout_s: float) -> list[ModelEntry]:
    config = client.endpoints()[name]
    try:
        provider, _, _ = client.resolve(f"{name}/-")
    except HonedError as exc:
        return [ModelEntry(f"{name}/*", name, config.provider, status="unusable", detail=exc.one_line())]
    if config.provider == "local":
        return _local(name, provider, client, jobs)
    try:
        provider.preflight()
        served = await asyncio.wait_for(provider.list_models(), timeout_s)
    except MissingAPIKeyError:
        return [ModelEntry(f"{name}/*", name, "served", status="no key", detail=f"set {config.api_key_env}")]
    except TimeoutError:
        detail = f"no answer from {config.base_url} within {timeout_s:g} s"
        return [ModelEntry(f"{name}/*", name, "served", status="unreachable", detail=detail)]
    except HonedError as exc:
        return [ModelEntry(f"{name}/*", name, "served", status="unreachable", detail=exc.one_line())]
    kind = "scripted" if config.provider == "scripted" else "served"
    out = []
    for model in served:
        ref = f"{name}/{model}"
        job = jobs.get(ref)
        if job is not None:
            out.append(
                ModelEntry(ref, name, "fine-tuned", base=_base(job), job=job.id, detail=config.base_url)
            )
        else:
            out.append(ModelEntry(ref, name, kind, detail=config.base_url))
    return out


def _local(name: str, provider: Any, client: ModelClient, jobs: dict[str, JobRow]) -> list[ModelEntry]:
    from honed.models import served
    from honed.models.local import BASE_MODEL

    server = served.find(client.settings)
    runs = (
        f"in honed serve (pid {server.pid})"
        if server is not None and name in server.endpoints
        else "in process, on the CPU"
    )
    base = f"{name}/{BASE_MODEL}"
    entries = [ModelEntry(base, name, "local", detail=runs)]
    adapters = provider.adapters
    for adapter in adapters.known():
        ref = f"{base}+{adapter}"
        job = jobs.get(ref)
        folder = adapters.configured.get(adapter) or (adapters.folder / adapter if adapters.folder else None)
        entries.append(
            ModelEntry(
                ref,
                name,
                "adapter",
                base=base,
                job=job.id if job else None,
                detail=str(folder) if folder else None,
            )
        )
    return entries


def _jobs_by_model(store: Store | None) -> dict[str, JobRow]:
    """Succeeded fine-tuning jobs by the model reference they produced (the newest, for a name reused)."""
    if store is None:
        return {}
    jobs: dict[str, JobRow] = {}
    for row in sorted(store.jobs.list(status="succeeded"), key=lambda r: r.created_at):
        if row.model:
            jobs[row.model] = row
    return jobs


def _base(job: JobRow) -> str | None:
    base = job.spec.get("base_model")
    return str(base) if base else None


def _with(entry: ModelEntry, **changes: Any) -> ModelEntry:
    import dataclasses

    return dataclasses.replace(entry, **changes)
