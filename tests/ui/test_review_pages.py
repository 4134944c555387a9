"""Review queues over a real server: make a queue from a run or from logs, label it (the run's `human`
scores, the log's feedback), assign it, see who labelled what; scopes decide who may do each; untrusted
outputs render as text."""

from __future__ import annotations

import re
from collections.abc import Iterator

import httpx
import pytest

from honed.store.schema import utcnow
from tests.ui.conftest import HOSTILE, Site, client

CSRF = re.compile(r'name="csrf" value="([0-9a-f]+)"')


def csrf_of(text: str) -> str:
    found = CSRF.search(text)
    assert found, "the page has no form"
    return found.group(1)


def make_queue(http: httpx.Client, **form: str) -> str:
    csrf = csrf_of(http.get("/review").text)
    made = http.post("/review/runs", data={"csrf": csrf, **form})
    assert made.status_code == 303, made.text
    return str(made.headers["location"]).removeprefix("/review/")


@pytest.fixture(scope="module")
def queue_id(site: Site) -> str:
    """A queue of all of qa@v2's results (30 items, case 7's output is hostile markup)."""
    with client(site) as http:
        return make_queue(http, run=site.run_id, select="all", variant="qa@v2", name="v2 all")


def test_a_queue_of_a_run_is_listed_and_shows_its_items(site: Site, queue_id: str) -> None:
    with client(site) as http:
        listing = http.get("/review")
        page = http.get(f"/review/{queue_id}")
        item = http.get(f"/review/{queue_id}/items/8")
    assert listing.status_code == 200 and f'href="/review/{queue_id}"' in listing.text
    assert "v2 all" in listing.text and "0 of 30" in listing.text
    assert page.status_code == 200 and "0 of 30 labelled" in page.text
    assert page.text.count(f'href="/review/{queue_id}/items/') >= 30
    # Untrusted output (case c07) is text, never markup, on the item page and in the queue's table.
    assert "c07" in item.text
    for text in (page.text, item.text):
        assert HOSTILE not in text and "&lt;script&gt;alert(&#39;pwned&#39;)&lt;/script&gt;" in text
    assert 'src="/static/review.js"' in item.text and "<script>" not in item.text.replace(HOSTILE, "")
    assert "unsafe-inline" not in item.headers["content-security-policy"]
    with client(site) as http:
        script = http.get("/static/review.js")
    assert script.status_code == 200 and "data-key" in script.text


def test_labels_become_human_scores_and_the_judge_is_compared(site: Site, queue_id: str) -> None:
    with client(site) as http:
        csrf = csrf_of(http.get(f"/review/{queue_id}/items/1").text)
        # qa@v2 answers even cases right: label the first four as a person would (c00 pass, c01 fail, ...).
        for n in range(1, 5):
            verdict = "pass" if (n - 1) % 2 == 0 else "fail"
            done = http.post(f"/review/{queue_id}/items/{n}/label", data={"csrf": csrf, "passed": verdict})
            assert done.status_code == 303 and done.headers["location"].endswith(f"/items/{n + 1}")
        note = http.post(f"/review/{queue_id}/items/1/label", data={"csrf": csrf, "correction": "capital0"})
        assert note.headers["location"].endswith("/items/1")  # a correction stays on the item
        page = http.get(f"/review/{queue_id}").text
    human = {
        s["case_id"]: (s["value"], s["passed"], s["details"]["queue"])
        for s in site.h.store.runs.scores(site.run_id)
        if s["evaluator"] == "human" and s["variant"] == "qa@v2"
    }
    assert human == {
        "c00": (1.0, True, queue_id),
        "c01": (0.0, False, queue_id),
        "c02": (1.0, True, queue_id),
        "c03": (0.0, False, queue_id),
    }
    assert "4 of 30 labelled" in page
    # The exact evaluator agrees with these labels on all four items: kappa 1.
    judges = page.split('id="judges"')[1].split("</table>")[0]
    assert re.search(r"<td>exact</td><td>exact</td>\s*<td>4</td><td>1.000</td><td>1.000</td>", judges), judges
    events = site.h.store.audit.page(20, kind="queue", name=queue_id)[0]
    assert {e.action for e in events} >= {"queue.create", "queue.label"} and {e.user for e in events} == {
        "local"
    }


def test_assign_and_bad_requests(site: Site, queue_id: str) -> None:
    with client(site) as http:
        csrf = csrf_of(http.get(f"/review/{queue_id}").text)
        assert (
            http.post(f"/review/{queue_id}/assign", data={"csrf": csrf, "assignee": "dana"}).status_code
            == 303
        )
        page = http.get(f"/review/{queue_id}").text
        stale = http.post(f"/review/{queue_id}/assign", data={"csrf": "0" * 32, "assignee": "eve"})
        missing = http.get("/review/q-nothing")
        beyond = http.get(f"/review/{queue_id}/items/31")
        bad = http.post(f"/review/{queue_id}/items/1/label", data={"csrf": csrf, "rating": "9"})
        none = http.post(
            "/review/runs",
            data={"csrf": csrf, "run": site.run_id, "select": "regressions", "baseline": "qa@v1"},
        )
    assert '<strong id="assignee">dana</strong>' in page
    assert stale.status_code == 403 and site.h.store.review.get(queue_id).assignee == "dana"
    assert missing.status_code == 404 and "no review queue" in missing.text
    assert beyond.status_code == 404 and "Traceback" not in beyond.text
    assert bad.status_code == 400 and "not on the scale 1-5" in bad.text
    # qa@v2 never does worse than qa@v1: there is nothing to review, and the page says so.
    assert none.status_code == 400 and "no regressions against qa@v1" in none.text


def test_a_queue_of_logs_labels_them_with_feedback(site: Site) -> None:
    rows = [
        {
            "id": f"log-review-{i}",
            "created_at": utcnow(),
            "source": "app",
            "model": "review-model",
            "inputs": {"q": f"question {i}"},
            "output": f"answer {i}",
            "params": {},
            "metadata": {},
        }
        for i in range(3)
    ]
    site.h.store.logs.insert_many(rows)
    with client(site) as http:
        csrf = csrf_of(http.get("/review").text)
        made = http.post("/review/logs", data={"csrf": csrf, "model": "review-model", "limit": "10"})
        assert made.status_code == 303, made.text
        queue = made.headers["location"].removeprefix("/review/")
        item = http.get(f"/review/{queue}/items/1").text
        http.post(f"/review/{queue}/items/1/label", data={"csrf": csrf, "passed": "fail"})
        http.post(f"/review/{queue}/items/1/label", data={"csrf": csrf, "rating": "2"})
        http.post(f"/review/{queue}/items/1/label", data={"csrf": csrf, "comment": "vague"})
        undone = http.post(f"/review/{queue}/undo", data={"csrf": csrf})
    assert "question" in item and "--model review-model" in http_text(site, f"/review/{queue}")
    assert undone.headers["location"].endswith("/items/1")
    log_id = site.h.store.review.item(queue, 0).log_id
    assert log_id is not None
    feedback = [(f["kind"], f["value"], f["source"]) for f in site.h.store.logs.get(log_id).feedback]
    assert feedback == [("thumbs", 0.0, "local"), ("rating", 2.0, "local")]  # the comment was undone


def http_text(site: Site, path: str) -> str:
    with client(site) as http:
        return http.get(path).text


@pytest.fixture(scope="module")
def signed_in(guarded: Site) -> Iterator[dict[str, httpx.Client]]:
    """A client per UI scope, each signed in with a token of that scope."""
    clients: dict[str, httpx.Client] = {}
    for scope in ("read", "annotate"):
        _, secret = guarded.h.store.tokens.create(f"review-{scope}", [scope])
        http = client(guarded)
        assert http.post("/signin", data={"token": secret, "next": "/review"}).status_code == 303
        clients[scope] = http
    yield clients
    for http in clients.values():
        http.close()


def test_a_read_only_viewer_sees_no_label_controls(
    guarded: Site, queue_id: str, signed_in: dict[str, httpx.Client]
) -> None:
    http = signed_in["read"]
    listing = http.get("/review")
    page = http.get(f"/review/{queue_id}")
    item = http.get(f"/review/{queue_id}/items/2")
    assert listing.status_code == page.status_code == item.status_code == 200
    assert 'action="/review/runs"' not in listing.text and 'action="/review/logs"' not in listing.text
    assert 'id="assign"' not in page.text and 'id="start"' not in page.text
    for control in ("/label", "/undo", 'data-key="p"', 'data-key="f"', "<textarea", 'name="passed"'):
        assert control not in item.text, control
    assert 'id="output"' in item.text  # the item itself is there to read
    csrf = csrf_of(item.text)  # the sign-out form's: the viewer's own token
    refused = http.post(f"/review/{queue_id}/items/2/label", data={"csrf": csrf, "passed": "pass"})
    assert refused.status_code == 403 and "needs &#39;annotate&#39;" in refused.text
    # An annotator may label (as their token's name) but not make or assign queues.
    annotator = signed_in["annotate"]
    text = annotator.get(f"/review/{queue_id}/items/2").text
    csrf = csrf_of(text)
    assert 'data-key="p"' in text and 'action="/review/runs"' not in annotator.get("/review").text
    assert (
        annotator.post(f"/review/{queue_id}/assign", data={"csrf": csrf, "assignee": "x"}).status_code == 403
    )
    done = annotator.post(f"/review/{queue_id}/items/2/label", data={"csrf": csrf, "passed": "pass"})
    assert done.status_code == 303
    assert guarded.h.store.review.labels(queue_id)[(1, "review-annotate")].passed is True
