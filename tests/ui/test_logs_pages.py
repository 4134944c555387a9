"""The log pages over a real server: the list with the CLI's filters and keyset pages, a log in full with
feedback and "add to dataset" (and none of those controls for a read-only viewer), a trace as a tree;
untrusted log text renders as text."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from html.parser import HTMLParser

import httpx
import pytest

from honed.datasets import get_dataset
from honed.logs.browse import MAX_SPANS
from tests.ui.conftest import HOSTILE, Site, client

ESCAPED = "&lt;script&gt;alert(&#39;pwned&#39;)&lt;/script&gt;"
N_BULK = 60


@dataclass
class Logged:
    hostile: str
    plain: str
    failed: str
    root: str
    tool: str
    llm: str


@pytest.fixture(scope="module")
def logged(site: Site) -> Logged:
    """Logs written with the library's `Honed.log`: a bulk of 60, a hostile output, a failure, a trace."""
    h = site.h
    for i in range(N_BULK):
        h.log(model="app/bulk", prompt="bulk", inputs={"i": i}, output=f"answer {i}")
    ids = Logged(
        hostile=h.log(
            model="app/hostile",
            messages=[{"role": "user", "content": "say <b>hi</b>"}],
            output=HOSTILE,
            input_tokens=12,
            output_tokens=7,
            latency_s=0.25,
            cost_usd=0.0012,
        ),
        plain=h.log(model="app/plain", inputs={"question": "Capital of France?"}, output="Lyon"),
        failed=h.log(model="app/plain", inputs={"question": "?"}, error="TimeoutError: 30 s"),
        root=h.log(
            model="agent/run", inputs={"task": "t"}, output="done", trace_id="tr-1", metadata={"span_id": "a"}
        ),
        tool=h.log(
            model="tool/search",
            inputs={"q": "x"},
            output="found",
            trace_id="tr-1",
            metadata={"span_id": "b", "parent_span_id": "a"},
        ),
        llm=h.log(
            model="app/llm",
            inputs={"q": "y"},
            output="answer",
            trace_id="tr-1",
            metadata={"span_id": "c", "parent_span_id": "b"},
        ),
    )
    h.flush_logs()
    h.feedback(ids.plain, "thumbs", "down")
    return ids


def log_links(text: str) -> list[str]:
    return re.findall(r'href="/logs/(log-[0-9a-f]+)"', text)


def csrf_of(text: str) -> str:
    found = re.search(r'name="csrf" value="([0-9a-f]+)"', text)
    assert found, "the page has no form"
    return found.group(1)


def test_the_list_filters_as_the_cli_does(site: Site, logged: Logged) -> None:
    with client(site) as http:
        everything = http.get("/logs")
        hostile = http.get("/logs", params={"model": "app/hostile", "since": "1h"})
        down = http.get("/logs", params={"thumbs": "down"})
        failed = http.get("/logs", params={"errors": "only", "model": "app/plain"})
        working = http.get("/logs", params={"errors": "none", "model": "app/plain"})
        old = http.get("/logs", params={"until": "2000-01-01"})
    assert everything.status_code == 200 and 'href="/logs"' in everything.text  # the section is in the nav
    assert log_links(hostile.text) == [logged.hostile]
    assert log_links(down.text) == [logged.plain] and "down" in down.text
    assert log_links(failed.text) == [logged.failed] and "TimeoutError" in failed.text
    assert log_links(working.text) == [logged.plain]
    assert log_links(old.text) == [] and "No log matches" in old.text


def test_scores_filter_and_show(site: Site, logged: Logged) -> None:
    from tests.logs.test_browse import score

    site.h.store.logs.put_scores([score(logged.plain, "judge", 0.9), score(logged.hostile, "judge", 0.2)])
    with client(site) as http:
        page = http.get("/logs", params={"min_score": "judge=0.5"})
    assert log_links(page.text) == [logged.plain] and "judge=0.90" in page.text


def test_bad_filters_are_one_line_errors(site: Site) -> None:
    with client(site) as http:
        since = http.get("/logs", params={"since": "last tuesday"})
        score = http.get("/logs", params={"min_score": "judge"})
        cursor = http.get("/logs", params={"after": "nonsense"})
    assert since.status_code == 400 and "&#39;last tuesday&#39; is not a time" in since.text
    assert score.status_code == 400 and "EVALUATOR=NUMBER" in score.text
    assert cursor.status_code == 400 and "malformed" in cursor.text


def test_pages_follow_the_keyset_cursor(site: Site, logged: Logged) -> None:
    with client(site) as http:
        first = http.get("/logs", params={"prompt": "bulk"})
        more = re.search(r'href="/logs\?([^"]*after=[^"]*)">older', first.text)
        assert more, "a full page links the next one"
        second = http.get("/logs?" + more.group(1).replace("&amp;", "&"))
        fragment = http.get("/logs", params={"prompt": "bulk"}, headers={"HX-Request": "true"})
    assert len(log_links(first.text)) == 50
    rest = log_links(second.text)
    assert len(rest) == N_BULK - 50 and not set(rest) & set(log_links(first.text))
    assert "older →" not in second.text and "prompt=bulk" in more.group(1)  # the filter travels along
    assert fragment.text.lstrip().startswith('<div id="logs">')


def test_a_log_page_shows_the_call_and_its_output_as_text(site: Site, logged: Logged) -> None:
    with client(site) as http:
        page = http.get(f"/logs/{logged.hostile}")
        by_prefix = http.get(f"/logs/{logged.hostile[:20]}")
    assert page.status_code == 200 and by_prefix.status_code == 200
    text = page.text
    assert HOSTILE not in text and ESCAPED in text
    assert "say &lt;b&gt;hi&lt;/b&gt;" in text  # a message, as text too
    assert "12 in / 7 out" in text and "250 ms" in text and "$0.0012" in text and "app/hostile" in text
    assert "unsafe-inline" not in page.headers["content-security-policy"]
    # The local user may do everything: both forms are there.
    assert (
        f'action="/logs/{logged.hostile}/feedback"' in text
        and f'action="/logs/{logged.hostile}/dataset"' in text
    )


def test_feedback_from_the_page_is_recorded_and_audited(site: Site, logged: Logged) -> None:
    with client(site) as http:
        csrf = csrf_of(http.get(f"/logs/{logged.plain}").text)
        stale = http.post(f"/logs/{logged.plain}/feedback", data={"thumbs": "up"})
        up = http.post(f"/logs/{logged.plain}/feedback", data={"csrf": csrf, "thumbs": "up"})
        fixed = http.post(
            f"/logs/{logged.plain}/feedback", data={"csrf": csrf, "correction": "Paris", "comment": ""}
        )
        empty = http.post(f"/logs/{logged.plain}/feedback", data={"csrf": csrf, "correction": " "})
        page = http.get(f"/logs/{logged.plain}")
    assert stale.status_code == 403
    assert up.status_code == 303 and up.headers["location"] == f"/logs/{logged.plain}#feedback"
    assert fixed.status_code == 303
    assert empty.status_code == 400 and "no feedback given" in empty.text
    kinds = [
        (f["kind"], f["value"], f["text"], f["source"]) for f in site.h.store.logs.get(logged.plain).feedback
    ]
    assert kinds[-2:] == [("thumbs", 1.0, None, "local"), ("correction", None, "Paris", "local")]
    assert "Paris" in page.text
    events, _ = site.h.store.audit.page(20, kind="log", name=logged.plain)
    assert [e.action for e in events] == ["log.feedback", "log.feedback"] and events[0].user == "local"


def test_add_to_dataset_records_a_new_version(site: Site, logged: Logged) -> None:
    with client(site) as http:
        csrf = csrf_of(http.get(f"/logs/{logged.root}").text)
        added = http.post(f"/logs/{logged.root}/dataset", data={"csrf": csrf, "dataset": "from-ui"})
        shown = http.get(added.headers["location"])
        again = http.post(f"/logs/{logged.llm}/dataset", data={"csrf": csrf, "dataset": "from-ui"})
        failed = http.post(f"/logs/{logged.failed}/dataset", data={"csrf": csrf, "dataset": "from-ui"})
    assert added.status_code == 303 and added.headers["location"] == f"/logs/{logged.root}?added=from-ui%40v1"
    assert "Added to dataset <code>from-ui@v1</code>" in shown.text
    assert again.status_code == 303 and "from-ui%40v2" in again.headers["location"]
    assert failed.status_code == 400 and "cannot become a case" in failed.text
    cases = get_dataset(site.h.store, "from-ui").cases
    assert [(c.id, c.reference) for c in cases] == [(logged.root, "done"), (logged.llm, "answer")]
    events, _ = site.h.store.audit.page(5, kind="dataset", name="from-ui")
    assert [e.action for e in events] == ["dataset.add_log", "dataset.add_log"]


class Depths(HTMLParser):
    """The nesting depth (in <ul>s) of each link to a log on a trace page."""

    def __init__(self) -> None:
        super().__init__()
        self.depth = 0
        self.links: list[tuple[str, int]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "ul":
            self.depth += 1
        href = dict(attrs).get("href") or ""
        if tag == "a" and href.startswith("/logs/log-"):
            self.links.append((href.removeprefix("/logs/"), self.depth))

    def handle_endtag(self, tag: str) -> None:
        if tag == "ul":
            self.depth -= 1


def test_a_trace_is_drawn_as_a_tree(site: Site, logged: Logged) -> None:
    with client(site) as http:
        log = http.get(f"/logs/{logged.llm}")
        page = http.get("/traces/tr-1")
        missing = http.get("/traces/nope")
    assert 'href="/traces/tr-1"' in log.text
    assert page.status_code == 200 and "3 span(s)" in page.text and MAX_SPANS > 3
    parsed = Depths()
    parsed.feed(page.text)
    assert parsed.links == [(logged.root, 1), (logged.tool, 2), (logged.llm, 3)]
    assert missing.status_code == 404 and "no logs in trace" in missing.text


def test_an_ingested_otlp_trace_is_a_tree_of_its_spans(site: Site) -> None:
    from tests.serve.test_traces import _otlp_json, _span

    trace = "7e" * 16
    root, llm, tool = "01" * 8, "02" * 8, "03" * 8
    spans = [
        _span(root, name="agent step", trace_id=trace, attributes={"openinference.span.kind": "AGENT"}),
        _span(
            llm,
            parent=root,
            trace_id=trace,
            attributes={
                "gen_ai.operation.name": "chat",
                "gen_ai.request.model": "gpt-4o-mini",
                "gen_ai.output.messages": json.dumps(
                    [{"role": "assistant", "parts": [{"type": "text", "content": "<b>x</b>"}]}]
                ),
            },
        ),
        _span(
            tool,
            name="lookup",
            parent=llm,
            trace_id=trace,
            attributes={
                "gen_ai.operation.name": "execute_tool",
                "gen_ai.tool.call.arguments": '{"city": "<i>P</i>"}',
            },
        ),
    ]
    with client(site) as http:
        sent = http.post("/v1/traces", json=_otlp_json(spans))
        page = http.get(f"/traces/{trace}")
    assert sent.status_code == 200 and page.status_code == 200
    assert "3 span(s)" in page.text
    tree = page.text.split('<ul class="trace">')[1]
    # agent step, then its generation (a link to the log), then the tool call under the generation
    assert tree.index("agent step") < tree.index(f"/logs/span-{trace}-{llm}") < tree.index("lookup")
    assert tree.count("<ul>") == 2 and "kind-agent" in tree and "kind-tool" in tree
    assert "<b>" not in tree and "<i>" not in tree  # outputs and arguments are text


def test_unknown_logs_are_pages(site: Site) -> None:
    with client(site) as http:
        missing = http.get("/logs/log-nothing")
    assert missing.status_code == 404 and "text/html" in missing.headers["content-type"]


@pytest.fixture(scope="module")
def signed_in(guarded: Site, logged: Logged) -> Iterator[dict[str, httpx.Client]]:
    """A client per UI scope, each signed in with a token of that scope."""
    clients: dict[str, httpx.Client] = {}
    for scope in ("read", "annotate"):
        _, secret = guarded.h.store.tokens.create(f"{scope}-user", [scope])
        http = client(guarded)
        assert http.post("/signin", data={"token": secret, "next": "/logs"}).status_code == 303
        clients[scope] = http
    yield clients
    for http in clients.values():
        http.close()


def test_a_read_only_viewer_sees_no_controls_and_cannot_post(
    guarded: Site, logged: Logged, signed_in: dict[str, httpx.Client]
) -> None:
    feedback, dataset = (
        f'action="/logs/{logged.hostile}/feedback"',
        f'action="/logs/{logged.hostile}/dataset"',
    )
    http = signed_in["read"]
    page = http.get(f"/logs/{logged.hostile}")
    assert page.status_code == 200 and feedback not in page.text and dataset not in page.text
    assert "<textarea" not in page.text and "thumbs" not in page.text
    csrf = csrf_of(page.text)  # the sign-out form's token: the viewer's own
    refused = http.post(f"/logs/{logged.hostile}/feedback", data={"csrf": csrf, "thumbs": "up"})
    assert refused.status_code == 403 and "needs &#39;annotate&#39;" in refused.text
    before = len(guarded.h.store.logs.get(logged.hostile).feedback)
    annotator = signed_in["annotate"]
    page = annotator.get(f"/logs/{logged.hostile}")
    assert feedback in page.text and dataset not in page.text  # may label, may not write datasets
    csrf = csrf_of(page.text)
    assert (
        annotator.post(f"/logs/{logged.hostile}/dataset", data={"csrf": csrf, "dataset": "x"}).status_code
        == 403
    )
    done = annotator.post(f"/logs/{logged.hostile}/feedback", data={"csrf": csrf, "thumbs": "down"})
    assert done.status_code == 303
    after = guarded.h.store.logs.get(logged.hostile).feedback
    assert len(after) == before + 1 and after[-1]["source"] == "annotate-user"
