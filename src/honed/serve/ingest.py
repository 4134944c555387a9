"""Log and feedback ingestion over HTTP, for applications not written in Python.

`POST /v1/logs` and `POST /v1/feedback` are all-or-nothing: every record is validated with the same models
the Python API uses, ids are checked against the batch and the database, and only then is the batch
written, in one transaction. A client that gets an error knows nothing was kept and can fix and resend
the whole batch without creating duplicates. The work runs in a worker thread: validating 10,000 records
and writing them must not stall the event loop that serves chat completions.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any, Protocol, TypeVar

from fastapi import APIRouter, Request
from fastapi.encoders import jsonable_encoder
from pydantic import BaseModel, ValidationError
from starlette.concurrency import run_in_threadpool

from honed.errors import StoreError
from honed.logs.record import FeedbackRecord, LogRecord
from honed.secrets import mask_data
from honed.serve.body import read_json
from honed.serve.responses import HttpError

if TYPE_CHECKING:
    from honed.store import Store

M = TypeVar("M", bound=BaseModel)

MAX_RECORDS = 10_000


def ingest_router(store: Store | None, *, max_json_depth: int = 64) -> APIRouter:
    """The ingestion routes over `store` (None: a server outside a workspace, which answers 503).

    What `GET /v1/logs/ID` returns is masked (`honed.secrets.mask_data`), should a key have reached a
    stored log. Bodies deeper than `max_json_depth` are refused (see `honed.serve.body`).
    """
    router = APIRouter()

    def need_store() -> Store:
        if store is None:
            raise HttpError(
                "this server has no database, so it cannot keep logs",
                status=503,
                kind="server_error",
                hint="run `honed serve` inside a honed workspace (`honed init`) or set HONED_DATABASE_URL",
            )
        return store

    @router.post("/v1/logs")
    async def post_logs(request: Request) -> dict[str, Any]:
        target = need_store()
        body = await read_json(request, max_json_depth)
        return await run_in_threadpool(ingest_logs, target, body)

    @router.post("/v1/feedback")
    async def post_feedback(request: Request) -> dict[str, Any]:
        target = need_store()
        body = await read_json(request, max_json_depth)
        return await run_in_threadpool(ingest_feedback, target, body)

    @router.get("/v1/logs/{log_id}")
    async def get_log(log_id: str) -> Any:
        entry = await run_in_threadpool(need_store().logs.get, log_id)
        body = jsonable_encoder({"log": entry.log, "feedback": entry.feedback, "scores": entry.scores})
        return mask_data(body)

    return router


def ingest_logs(store: Store, body: Any) -> dict[str, Any]:
    """Validate and write a batch of logs (all or none); the `{"accepted", "ids"}` answer."""
    records = _validate(_items(body, "logs"), LogRecord, "logs")
    return _write(records, "logs", "log", store.logs.existing_log_ids, store.logs.insert_many)


def ingest_feedback(store: Store, body: Any) -> dict[str, Any]:
    """Validate and write a batch of feedback (all or none); unknown log ids are a 404 naming one."""
    records = _validate(_items(body, "feedback"), FeedbackRecord, "feedback")
    return _write(records, "feedback", "feedback", store.logs.existing_feedback_ids, store.logs.add_feedback)


class _Record(Protocol):
    @property
    def id(self) -> str: ...

    def row(self) -> dict[str, Any]: ...


def _write(
    records: Sequence[_Record],
    key: str,
    what: str,
    existing: Callable[[Sequence[str]], set[str]],
    write: Callable[[list[dict[str, Any]]], None],
) -> dict[str, Any]:
    """Write validated `records` once their ids are unique in the batch and new to the store."""
    ids = [r.id for r in records]
    _check_unique(ids, key, what)
    _check_new(existing, ids, key, what)
    try:
        write([r.row() for r in records])
    except StoreError:
        # Another writer stored one of these ids since the check: say which, as the check would have.
        _check_new(existing, ids, key, what)
        raise
    return {"accepted": len(ids), "ids": ids}


def _items(body: Any, key: str) -> list[Any]:
    if isinstance(body, dict):
        extra = sorted(set(body) - {key})
        if extra or key not in body:
            raise HttpError(
                f'the body must be {{"{key}": [...]}} or a JSON list'
                + (f"; unknown key {extra[0]!r}" if extra else f"; {key!r} is missing"),
                status=400,
                param=extra[0] if extra else key,
            )
        body = body[key]
    if not isinstance(body, list):
        raise HttpError(f"{key!r} must be a JSON list of records", status=400, param=key)
    if len(body) > MAX_RECORDS:
        raise HttpError(
            f"a batch holds at most {MAX_RECORDS:,} records, this one has {len(body):,}",
            status=413,
            code="batch_too_large",
            param=key,
            hint="split it into several requests",
        )
    return body


def _validate(items: list[Any], model: type[M], key: str) -> list[M]:
    out: list[M] = []
    bad: list[tuple[int, ValidationError]] = []
    for i, item in enumerate(items):
        try:
            out.append(model.model_validate(item))
        except ValidationError as exc:
            bad.append((i, exc))
    if bad:
        index, error = bad[0]
        first = error.errors()[0]
        field = ".".join(str(p) for p in first["loc"])
        where = f"{key}[{index}]" + (f".{field}" if field else "")
        more = f" (and {len(bad) - 1} more invalid records)" if len(bad) > 1 else ""
        raise HttpError(
            f"{where}: {first['msg']}{more}; none of the {len(items)} records were kept",
            status=422,
            param=where,
            hint="fix the record and send the whole batch again",
        )
    return out


def _check_unique(ids: Sequence[str], key: str, what: str) -> None:
    seen: dict[str, int] = {}
    for i, record_id in enumerate(ids):
        if record_id in seen:
            raise HttpError(
                f"{key}[{i}] repeats the {what} id {record_id!r} of {key}[{seen[record_id]}]; "
                "none of the batch was kept",
                status=409,
                code="duplicate_id",
                param=f"{key}[{i}].id",
            )
        seen[record_id] = i


def _check_new(
    existing: Callable[[Sequence[str]], set[str]], ids: Sequence[str], key: str, what: str
) -> None:
    found = existing(ids)
    if found:
        index = next(i for i, record_id in enumerate(ids) if record_id in found)
        raise HttpError(
            f"{key}[{index}]: a {what} with id {ids[index]!r} is already stored"
            + (f" (and {len(found) - 1} more)" if len(found) > 1 else "")
            + "; none of the batch was kept",
            status=409,
            code="duplicate_id",
            param=f"{key}[{index}].id",
            hint="ids are unique: leave `id` out to have one made, or resend only the new records",
        )
