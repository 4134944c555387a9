"""The playground over a real server: a stored prompt opened, run on two scripted models side by side over
dataset cases and by hand, saved as a new version (seen by `honed prompts list`), an output added as a
case; outputs stay text; a read-only viewer finds nothing to run, save, move or edit."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator

import pytest
from playwright.sync_api import Page, expect

from honed.datasets import get_dataset
from honed.models.types import ChatRequest
from honed.prompts.registry import SAVE_ACTION
from honed.testing import Paced, scripted
from tests.support.cli import honed
from tests.ui.conftest import HOSTILE, Site, client
from tests.ui.test_prompts_pages import csrf_of, root_of


def reply(request: ChatRequest) -> str:
    """`MODEL: QUESTION`, so each column shows which model answered what; country7 gets hostile markup."""
    question = str(request.messages[-1]["content"])
    return HOSTILE if question == "country7" else f"{request.model.split('/')[-1]}: {question}"


@pytest.fixture(scope="module")
def models() -> Iterator[tuple[str, str]]:
    with scripted("pg-a", reply) as a, scripted("pg-b", reply) as b:
        yield a, b


def run_form(token: str, models: tuple[str, str], **fields: str) -> dict[str, str | list[str]]:
    return {
        "csrf": token,
        "name": "qa",
        "role": ["system", "user"],
        "content": ["Answer with the capital only.", "{{ country }}"],
        "model": list(models),
        **fields,
    }


def test_opening_a_stored_version_fills_the_form(site: Site) -> None:
    with client(site) as http:
        page = http.get("/playground", params={"prompt": "qa@v1"})
        unknown = http.get("/playground", params={"prompt": "nope"})
    assert page.status_code == 200
    assert ">Answer.</textarea>" in page.text and 'name="var.country"' in page.text
    assert 'value="scripted/ui"' in page.text  # the prompt's model in the first column
    assert unknown.status_code == 404


def test_a_run_side_by_side_by_hand_and_over_cases(site: Site, models: tuple[str, str]) -> None:
    with client(site) as http:
        token = csrf_of(http, "/playground")
        by_hand = http.post("/playground/run", data=run_form(token, models, **{"var.country": "Chile"}))
        cases = http.post(
            "/playground/run", data=run_form(token, models, dataset="caps@v1", start="2", cases="3")
        )
        again = http.post(
            "/playground/run", data=run_form(token, models, dataset="caps@v1", start="2", cases="3")
        )
        bad = http.post("/playground/run", data=run_form(token, models, dataset="caps@v1", cases="21"))
    assert by_hand.status_code == 200
    grid = by_hand.text.split('id="grid"')[1]
    assert "pg-a: Chile" in grid and "pg-b: Chile" in grid and "tokens" in grid
    rows = cases.text.split('id="grid"')[1]
    assert re.findall(r"<code>(c\d\d)</code>", rows) == ["c02", "c03", "c04"]
    assert rows.count('<pre class="out">') == 6 and "pg-b: country4" in rows
    # The response cache applies when the workspace's client uses it (this one does).
    assert site.h.client.use_cache and again.text.count("· cached") == 6
    assert bad.status_code == 400 and "1 to 20 cases" in bad.text


def test_save_a_run_as_a_prompt_version_in_the_browser(
    site: Site, models: tuple[str, str], tab: Page
) -> None:
    tab.goto(f"{site.url}/playground?prompt=qa@v2")
    tab.fill("input[aria-label='model 1']", models[0])
    tab.fill("input[aria-label='model 2']", models[1])
    tab.fill("input[name=dataset]", "caps@v1")
    tab.fill("input[name=start]", "6")
    tab.fill("input[name=cases]", "2")
    tab.click("#run")
    expect(tab.locator("#grid tbody tr")).to_have_count(2)
    expect(tab.locator("#grid thead")).to_contain_text(models[1])
    expect(tab.locator("#grid tbody tr").first).to_contain_text("pg-a: country6")
    # The hostile output of case 7 is text on the page, not markup.
    expect(tab.locator("#grid tbody tr").nth(1).locator("pre.out").first).to_have_text(HOSTILE)
    tab.fill("textarea[aria-label='message 1']", "Answer with the capital only, in one word.")
    tab.fill("input[name=note]", "one word")
    tab.click("#save")
    expect(tab.locator("#content")).to_contain_text("in one word")
    assert re.search(r"/prompts/qa\?v=(\d+)$", tab.url)
    listed = honed("prompts", "list", "--json", cwd=root_of(site))
    assert listed.returncode == 0, listed.stderr
    [qa] = [p for p in json.loads(listed.stdout) if p["name"] == "qa"]
    shown = honed("prompts", "show", "qa", cwd=root_of(site))
    assert "in one word" in shown.stdout and qa["versions"] >= 3
    events, _ = site.h.store.audit.page(10, kind="prompt", name="qa")
    saved = [e for e in events if e.action == SAVE_ACTION]
    assert saved[0].user == "local" and saved[0].detail["note"] == "one word"


def test_outputs_stream_into_the_page_as_the_models_write_them(site: Site, tab: Page) -> None:
    words = "Santiago is the capital of Chile <b>bold</b> not markup"
    with scripted("pg-slow", lambda _: Paced(words, 0.25)) as slow:
        tab.goto(f"{site.url}/playground?prompt=qa@v2")
        tab.fill("input[aria-label='model 1']", slow)
        tab.fill("textarea[name='var.country']", "Chile")
        tab.click("#run")
        cell = tab.locator("#cell-0-0")
        # Part of the answer is on the page while the model is still writing the rest.
        expect(cell).to_contain_text("Santiago is")
        assert len(cell.inner_text()) < len(words)
        expect(tab.locator("#grid .stats.pending")).to_have_count(1)
        # Then the finished grid: the whole output, as text, with its tokens, latency and cost.
        expect(tab.locator("#grid pre.out").first).to_have_text(words, timeout=10_000)
        expect(tab.locator("#grid .stats")).to_contain_text("out tokens")
        assert tab.locator("#grid b").count() == 0
    site.h.flush_logs()
    [logged] = [r for r in site.h.store.logs.query() if r["output"] == words]
    assert logged["metadata"]["playground"] is True and logged["metadata"]["user"] == "local"


def test_add_an_output_as_a_dataset_case(site: Site, models: tuple[str, str], tab: Page) -> None:
    tab.goto(f"{site.url}/playground?prompt=qa@v2")
    tab.fill("input[aria-label='model 1']", models[0])
    tab.fill("textarea[name='var.country']", "Peru")
    tab.click("#run")
    cell = tab.locator("#grid td.cell").first
    expect(cell.locator("pre.out")).to_have_text("pg-a: Peru")
    cell.locator("input[name=target]").fill("golden")
    cell.locator("button:has-text('Add as a case')").click()
    expect(tab.locator("h1")).to_contain_text("golden")
    [case] = get_dataset(site.h.store, "golden").cases
    assert case.inputs == {"country": "Peru"} and case.reference == "pg-a: Peru"
    assert case.metadata["model"] == models[0]


def test_a_read_only_viewer_finds_no_edit_controls(guarded: Site) -> None:
    _, secret = guarded.h.store.tokens.create("reader", ["read"])
    with client(guarded) as http:
        signed = http.post("/signin", data={"token": secret, "next": "/prompts"})
        assert signed.status_code == 303, signed.text
        pages = {
            p: http.get(p) for p in ("/playground?prompt=qa@v1", "/prompts/qa", "/datasets/caps", "/prompts")
        }
        token = csrf_of(http, "/prompts")
        moved = http.post("/prompts/qa/labels", data={"csrf": token, "label": "x", "version": "1"})
        ran = http.post("/playground/run", data={"csrf": token, "model": "scripted/echo"})
        edit = http.get("/datasets/caps/edit")
    for path, page in pages.items():
        assert page.status_code == 200, path
        assert "reader" in page.text
        for control in ('id="run"', 'id="save"', 'id="move-label"', "/edit", 'id="add-case"'):
            assert control not in page.text, (path, control)
        # The one form that posts is signing out.
        assert re.findall(r'method="post" action="([^"]+)"', page.text) == ["/signout"], path
    assert moved.status_code == 403 and ran.status_code == 403 and edit.status_code == 403
