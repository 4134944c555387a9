"""Fine-tuning jobs: the list with each job's status, and a job's page with its events and loss curve.

A job's status is the one `honed finetune list` shows (`FinetuneJob.status`: a job whose worker died
reads as interrupted); the curve is drawn from the job's metric events by `honed.finetune.jobs`.
"""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import Response

from honed.finetune.jobs import curve_summary, get_job, list_jobs, loss_curve_svg
from honed.ui.web import page, trusted
from honed.workspace import Workspace

#: Jobs on the list (newest first); older ones are opened by id.
JOBS_SHOWN = 200


def router(h: Workspace) -> APIRouter:
    api = APIRouter()

    @api.get("/finetune")
    def jobs(request: Request) -> Response:
        return page(request, "finetune/list.html", {"jobs": list_jobs(h, limit=JOBS_SHOWN)})

    @api.get("/finetune/{job_id}")
    def job(request: Request, job_id: str) -> Response:
        found = get_job(h, job_id)
        events = found.events()
        metrics = [e for e in events if e["kind"] == "metric"]
        chart = loss_curve_svg(metrics)
        context = {
            "job": found,
            "spec": found.spec,
            # The metric events are the curve's points (one per logged step): drawn, not listed.
            "events": [e for e in events if e["kind"] != "metric"],
            "curve": curve_summary(metrics),
            "chart": None if chart is None else trusted(chart),
        }
        return page(request, "finetune/job.html", context)

    return api
