"""The fine-tuning pages over a real server: jobs with their status, a job's events and its training and
validation loss curve (SVG). Jobs are recorded without a worker and their history written directly: no
training runs here (that is tests/finetune)."""

from __future__ import annotations

import re
import subprocess
import sys
from dataclasses import dataclass

import pytest

from honed.finetune.backend import FinetuneSpec
from honed.finetune.jobs import create_job, loss_curve_svg
from tests.finetune.lora_data import BASE, TINY, examples
from tests.ui.conftest import HOSTILE, Site, client

ESCAPED = "&lt;script&gt;alert(&#39;pwned&#39;)&lt;/script&gt;"


@dataclass
class Jobs:
    trained: str
    died: str


def dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


@pytest.fixture(scope="module")
def jobs(site: Site) -> Jobs:
    h = site.h
    spec = FinetuneSpec(backend="local", base_model=BASE, training="", hyperparameters=TINY)
    trained = create_job(h, spec, examples(12), examples(4, start=50), start=False)
    for step in range(1, 7):
        data: dict[str, float] = {"step": step, "loss": 3.0 / step}
        if step % 2 == 0:
            data["val_loss"] = 2.0 / step + 0.2
        h.store.jobs.add_event(trained.id, "metric", None, data)
    h.store.jobs.add_event(trained.id, "message", f"checkpoint saved {HOSTILE}")
    h.store.jobs.update(trained.id, status="succeeded", model="ft:smollm2:ui")
    died = create_job(h, spec, examples(4), start=False)
    h.store.jobs.update(died.id, status="running", pid=dead_pid())
    return Jobs(trained.id, died.id)


def test_the_list_shows_each_job_with_its_status(site: Site, jobs: Jobs) -> None:
    with client(site) as http:
        page = http.get("/finetune")
    assert page.status_code == 200
    rows = re.findall(r'href="/finetune/([0-9a-f]+)".*?<span class="status (\w+)">', page.text, re.S)
    # Newest first; a running job whose worker is gone reads as interrupted, as in `honed finetune list`.
    assert rows == [(jobs.died, "interrupted"), (jobs.trained, "succeeded")]
    assert "ft:smollm2:ui" in page.text and BASE in page.text


def test_a_job_page_shows_events_and_the_loss_curve(site: Site, jobs: Jobs) -> None:
    with client(site) as http:
        page = http.get(f"/finetune/{jobs.trained[:6]}")  # a unique prefix opens it, as on the CLI
    assert page.status_code == 200
    text = page.text
    assert "created: 12 training, 4 validation examples" in text
    assert ESCAPED in text and HOSTILE not in text  # an event message is text
    assert "6 point(s) over 6 step(s)" in text and "3.000 → 0.500" in text
    assert "best validation loss 0.533 at step 6" in text
    svg = text[text.index("<svg") : text.index("</svg>")]
    assert 'class="training"' in svg and 'class="validation"' in svg
    assert svg.count(" L") >= 5  # six training points joined by a line


def test_a_job_without_metrics_says_so(site: Site, jobs: Jobs) -> None:
    with client(site) as http:
        page = http.get(f"/finetune/{jobs.died}")
        missing = http.get("/finetune/ffffffffffff")
    assert "No loss recorded yet." in page.text and "<svg" not in page.text
    assert missing.status_code == 404 and "no fine-tuning job" in missing.text


def test_the_curve_is_well_formed_svg() -> None:
    import xml.etree.ElementTree as ET

    assert loss_curve_svg([]) is None
    one = loss_curve_svg([{"data": {"step": 1, "loss": 2.0}}])
    assert one is not None and "<circle" in one  # a lone point is still drawn
    ET.fromstring(one)
