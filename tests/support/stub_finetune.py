"""A real HTTP server on 127.0.0.1 that replays OpenAI's fine-tuning API, for tests.

It stands in for OpenAI's API, which cannot be reached here. The replies are recorded exchanges in the real
API's shape (the `FileObject`, `FineTuningJob` and `FineTuningJobEvent` types of the openai SDK, and the
API reference): `POST /files` (multipart), `POST /fine_tuning/jobs`, `GET /fine_tuning/jobs/{id}` (each
retrieve moves the job one step along validating_files -> queued -> running -> running -> the outcome,
adding the events OpenAI adds), `GET /fine_tuning/jobs/{id}/events` (newest first, paged with `after` and
`has_more`), `GET /fine_tuning/jobs?metadata[k]=v`, `POST /fine_tuning/jobs/{id}/cancel`, and OpenAI's error
object for a wrong API key (401). Every request is recorded as (method, path).
"""

from __future__ import annotations

import email.parser
import email.policy
import json
import threading
import urllib.parse
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

CREATED_AT = 1_721_764_800  # 2024-07-23, when the recording was made
STEPS = 4

#: OpenAI's reply to a wrong key; it masks the key ("sk-wron**********-key"), as recorded.
AUTH_ERROR = {
    "error": {
        "message": "Incorrect API key provided: {masked}. You can find your API key at "
        "https://platform.openai.com/account/api-keys.",
        "type": "invalid_request_error",
        "param": None,
        "code": "invalid_api_key",
    }
}

#: The `error` of a job that failed validation, as recorded.
TRAINING_FILE_ERROR = {
    "code": "invalid_training_file",
    "message": "The job failed due to an invalid training file. Invalid file format. "
    "Example 3, message 2 Unrecognized key(s) in object: 'contnet'",
    "param": "training_file",
}


def mask(key: str) -> str:
    return f"{key[:7]}{'*' * max(len(key) - 11, 0)}{key[-4:]}"


@dataclass
class RemoteJob:
    body: dict[str, Any]  # the FineTuningJob object
    outcome: str
    polls: int = 0
    events: list[dict[str, Any]] = field(default_factory=list)  # oldest first


class FinetuneStub:
    """The server's state: files, jobs and the requests seen. `outcome`: succeeded | failed | running
    (a job that never finishes, for cancel tests)."""

    def __init__(self, *, api_key: str, outcome: str = "succeeded", page_size: int = 100) -> None:
        self.api_key = api_key
        self.outcome = outcome
        self.page_size = page_size
        self.echo_key = False  # a server that (unlike OpenAI) echoes the whole key in its error
        self.files: dict[str, dict[str, Any]] = {}
        self.uploads: dict[str, bytes] = {}
        self.jobs: dict[str, RemoteJob] = {}
        self.creates: list[dict[str, Any]] = []  # bodies of POST /fine_tuning/jobs
        self.requests: list[tuple[str, str]] = []
        self.lock = threading.Lock()
        self.httpd: ThreadingHTTPServer | None = None
        self._event_seq = 0

    @property
    def base_url(self) -> str:
        assert self.httpd is not None
        return f"http://127.0.0.1:{self.httpd.server_address[1]}/v1"

    def count(self, method: str, path: str) -> int:
        return sum(1 for m, p in self.requests if m == method and p == path)

    # -- the API --------------------------------------------------------------------------------------

    def handle(self, method: str, path: str, query: dict[str, list[str]], body: Any) -> tuple[int, Any]:
        parts = path.removeprefix("/v1").strip("/").split("/")
        with self.lock:
            if method == "POST" and parts == ["files"]:
                return 200, self._upload(body)
            if method == "POST" and parts == ["fine_tuning", "jobs"]:
                return 200, self._create(body)
            if method == "GET" and parts == ["fine_tuning", "jobs"]:
                return 200, self._list(query)
            if len(parts) >= 3 and parts[:2] == ["fine_tuning", "jobs"] and parts[2] in self.jobs:
                job = self.jobs[parts[2]]
                if method == "GET" and len(parts) == 3:
                    self._advance(job)
                    return 200, job.body
                if method == "GET" and parts[3:] == ["events"]:
                    return 200, self._events(job, query)
                if method == "POST" and parts[3:] == ["cancel"]:
                    return 200, self._cancel(job)
        error = {"message": f"Unknown request URL: {method} {path}.", "type": "invalid_request_error"}
        return 404, {"error": {**error, "param": None, "code": "unknown_url"}}

    def _upload(self, form: dict[str, Any]) -> dict[str, Any]:
        file_id = f"file-{len(self.files) + 1:024d}"
        filename, data = form["file"]
        self.uploads[file_id] = data
        obj = {
            "id": file_id,
            "object": "file",
            "bytes": len(data),
            "created_at": CREATED_AT,
            "filename": filename,
            "purpose": form["purpose"],
            "status": "processed",
            "status_details": None,
            "expires_at": None,
        }
        self.files[file_id] = obj
        return obj

    def _create(self, body: dict[str, Any]) -> dict[str, Any]:
        self.creates.append(body)
        job_id = f"ftjob-{len(self.jobs) + 1:024d}"
        hyper = (body.get("method") or {}).get("supervised", {}).get("hyperparameters", {})
        job = {
            "object": "fine_tuning.job",
            "id": job_id,
            "model": body["model"],
            "created_at": CREATED_AT,
            "finished_at": None,
            "fine_tuned_model": None,
            "organization_id": "org-stub",
            "result_files": [],
            "status": "validating_files",
            "validation_file": body.get("validation_file"),
            "training_file": body["training_file"],
            "hyperparameters": {
                "n_epochs": hyper.get("n_epochs", "auto"),
                "batch_size": hyper.get("batch_size", "auto"),
                "learning_rate_multiplier": hyper.get("learning_rate_multiplier", "auto"),
            },
            "trained_tokens": None,
            "error": None,
            "seed": body.get("seed", 1_234_567_890),
            "estimated_finish": None,
            "integrations": [],
            "metadata": body.get("metadata"),
            "user_provided_suffix": body.get("suffix"),
            "method": {
                "type": "supervised",
                "supervised": {"hyperparameters": {"batch_size": "auto", "n_epochs": "auto", **hyper}},
            },
        }
        remote = self.jobs[job_id] = RemoteJob(job, self.outcome)
        self._event(remote, f"Validating training file: {body['training_file']}")
        self._event(remote, f"Created fine-tuning job: {job_id}")
        return job

    def _list(self, query: dict[str, list[str]]) -> dict[str, Any]:
        wanted = {k[len("metadata[") : -1]: v[0] for k, v in query.items() if k.startswith("metadata[")}
        found = [
            j.body
            for j in reversed(self.jobs.values())
            if all((j.body.get("metadata") or {}).get(k) == v for k, v in wanted.items())
        ]
        return {"object": "list", "data": found, "has_more": False}

    def _advance(self, job: RemoteJob) -> None:
        """One retrieve = one step of the recorded progression."""
        body = job.body
        if body["status"] in ("succeeded", "failed", "cancelled"):
            return
        job.polls += 1  # the first retrieve sees the job as created
        if job.polls == 2:
            body["status"] = "queued"
            self._event(job, "Files validated, moving job to queued state")
        elif job.polls == 3:
            if job.outcome == "failed":
                body.update(status="failed", finished_at=CREATED_AT + 60, error=TRAINING_FILE_ERROR)
                self._event(job, TRAINING_FILE_ERROR["message"], level="error")
                return
            body["status"] = "running"
            body["estimated_finish"] = CREATED_AT + 900
            self._event(job, "Fine-tuning job started")
            for step in (1, 2):
                self._metric(job, step)
        elif job.polls == 4:
            for step in range(3, STEPS + 1):
                self._metric(job, step)
        elif job.polls >= 5 and job.outcome == "succeeded":
            suffix = body.get("user_provided_suffix") or ""
            body.update(
                status="succeeded",
                finished_at=CREATED_AT + 840,
                estimated_finish=None,
                fine_tuned_model=f"ft:{body['model']}:org:{suffix}:abc",
                trained_tokens=12_345,
                result_files=["file-result0000000000000000001"],
            )
            self._event(job, f"Checkpoint created at step {STEPS}")
            self._event(job, f"New fine-tuned model created: {body['fine_tuned_model']}")
            self._event(job, "The job has successfully completed")

    def _metric(self, job: RemoteJob, step: int) -> None:
        loss = round(2.0 / step, 4)
        data = {
            "step": step,
            "train_loss": loss,
            "total_steps": STEPS,
            "train_mean_token_accuracy": round(0.5 + step / 20, 4),
        }
        self._event(job, f"Step {step}/{STEPS}: training loss={loss:.2f}", data=data, kind="metrics")

    def _cancel(self, job: RemoteJob) -> dict[str, Any]:
        if job.body["status"] not in ("succeeded", "failed", "cancelled"):
            job.body.update(status="cancelled", finished_at=CREATED_AT + 120, estimated_finish=None)
            self._event(job, "Fine-tuning job cancelled")
        return job.body

    def _event(
        self, job: RemoteJob, message: str, *, level: str = "info", data: Any = None, kind: str = "message"
    ) -> None:
        self._event_seq += 1
        job.events.append(
            {
                "object": "fine_tuning.job.event",
                "id": f"ftevent-{self._event_seq:024d}",
                "created_at": CREATED_AT + self._event_seq,
                "level": level,
                "message": message,
                "data": data if data is not None else {},
                "type": kind,
            }
        )

    def _events(self, job: RemoteJob, query: dict[str, list[str]]) -> dict[str, Any]:
        newest_first = list(reversed(job.events))
        start = 0
        if "after" in query:
            ids = [e["id"] for e in newest_first]
            start = ids.index(query["after"][0]) + 1
        limit = min(int(query.get("limit", ["20"])[0]), self.page_size)
        page = newest_first[start : start + limit]
        return {"object": "list", "data": page, "has_more": start + limit < len(newest_first)}


class _Handler(BaseHTTPRequestHandler):
    stub: FinetuneStub
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def _serve(self, method: str) -> None:
        url = urllib.parse.urlsplit(self.path)
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        self.stub.requests.append((method, url.path))
        key = self.headers.get("Authorization", "").removeprefix("Bearer ")
        if key != self.stub.api_key:
            shown = key if self.stub.echo_key else mask(key)
            body = json.loads(json.dumps(AUTH_ERROR))
            body["error"]["message"] = body["error"]["message"].format(masked=shown)
            self._reply(401, body)
            return
        ctype = self.headers.get("Content-Type", "")
        parsed: Any = None
        if ctype.startswith("multipart/form-data"):
            parsed = _form(ctype, raw)
        elif raw:
            parsed = json.loads(raw)
        status, reply = self.stub.handle(method, url.path, urllib.parse.parse_qs(url.query), parsed)
        self._reply(status, reply)

    def _reply(self, status: int, body: Any) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.send_header("x-request-id", "req_stub")
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self) -> None:
        self._serve("GET")

    def do_POST(self) -> None:
        self._serve("POST")


def _form(content_type: str, raw: bytes) -> dict[str, Any]:
    """A multipart/form-data body as {field: value}, a file field as (filename, bytes)."""
    header = f"Content-Type: {content_type}\r\n\r\n".encode()
    message = email.parser.BytesParser(policy=email.policy.HTTP).parsebytes(header + raw)
    out: dict[str, Any] = {}
    for part in message.iter_parts():  # type: ignore[attr-defined]
        name = part.get_param("name", header="content-disposition")
        payload = part.get_payload(decode=True)
        filename = part.get_filename()
        out[name] = (filename, payload) if filename else payload.decode()
    return out


@contextmanager
def finetune_stub(
    *, api_key: str, outcome: str = "succeeded", page_size: int = 100
) -> Iterator[FinetuneStub]:
    """Serve a `FinetuneStub` on a free port of 127.0.0.1 for the block."""
    stub = FinetuneStub(api_key=api_key, outcome=outcome, page_size=page_size)
    handler = type("Handler", (_Handler,), {"stub": stub})
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    httpd.daemon_threads = True
    stub.httpd = httpd
    thread = threading.Thread(target=httpd.serve_forever, name="finetune-stub", daemon=True)
    thread.start()
    try:
        yield stub
    finally:
        httpd.shutdown()
        httpd.server_close()
        thread.join(5)
