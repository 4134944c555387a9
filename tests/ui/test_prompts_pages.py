"""The prompt pages over a real server: the list, a prompt's history and content, two versions side by
side, a label moved from the page (audited, and seen by `honed prompts list`), and prompt text that stays
text."""

from __future__ import annotations

import html
import json
import re
from pathlib import Path

import httpx
from playwright.sync_api import Page, expect

from honed.prompts import Prompt, push
from tests.support.cli import honed
from tests.ui.conftest import HOSTILE, Site, client, off_loop

#: Every page carries the viewer's CSRF token in the header htmx sends.
CSRF = re.compile(r'"X-CSRF-Token": "([0-9a-f]+)"')


def root_of(site: Site) -> Path:
    """The workspace folder, where `honed` subprocesses run."""
    root = site.h.settings.root
    assert root is not None
    return root


def csrf_of(http: httpx.Client, path: str = "/prompts") -> str:
    found = CSRF.search(http.get(path).text)
    assert found, "the page carries no CSRF token"
    return found.group(1)


def test_the_list_and_a_prompts_history(site: Site) -> None:
    with client(site) as http:
        listing = http.get("/prompts")
        qa = http.get("/prompts/qa")
        first = http.get("/prompts/qa", params={"v": 1})
        missing = http.get("/prompts/qa", params={"v": 9})
    assert listing.status_code == 200 and 'href="/prompts/qa"' in listing.text and "v2" in listing.text
    assert qa.status_code == 200
    # Newest first, each with its note; the latest version's content is shown.
    assert qa.text.index(">v2</a>") < qa.text.index(">v1</a>")
    assert "Answer with the capital only." in qa.text
    assert "Answer with the capital only." not in first.text and "Answer." in first.text
    assert missing.status_code == 404 and "has no version v9" in missing.text


def test_two_versions_side_by_side(site: Site) -> None:
    with client(site) as http:
        page = http.get("/prompts/qa/diff", params={"a": 1, "b": 2})
        same = http.get("/prompts/qa/diff", params={"a": 2, "b": 2})
    assert page.status_code == 200
    assert "messages[0].content" in page.text
    old = page.text.split('id="old">')[1].split("</pre>")[0]
    new = page.text.split('id="new">')[1].split("</pre>")[0]
    assert "Answer." in old and "capital only" not in old and "capital only" in new
    assert '<span class="del">-' in page.text and '<span class="add">+' in page.text
    assert 'id="identical"' in same.text


def test_move_a_label_in_the_browser(site: Site, tab: Page) -> None:
    tab.goto(f"{site.url}/prompts/qa")
    tab.fill("#move-label input[name=label]", "production")
    tab.select_option("#move-label select[name=version]", "1")
    tab.click("#move-label button[type=submit]")
    expect(tab.locator("#label-history tbody tr")).to_have_count(1)
    tab.fill("#move-label input[name=label]", "production")
    tab.select_option("#move-label select[name=version]", "2")
    tab.click("#move-label button[type=submit]")
    latest = tab.locator("#label-history tbody tr").first
    expect(latest).to_contain_text("local")
    expect(latest).to_contain_text("production")
    expect(latest.locator("td").nth(3)).to_have_text("v1")
    expect(latest.locator("td").nth(4)).to_have_text("v2")
    listed = honed("prompts", "list", "--json", cwd=root_of(site))
    assert listed.returncode == 0, listed.stderr
    [qa] = [p for p in json.loads(listed.stdout) if p["name"] == "qa"]
    assert qa["labels"] == {"production": 2}
    shown = honed("prompts", "show", "qa@production", cwd=root_of(site))
    assert shown.returncode == 0 and "capital only" in shown.stdout


def test_a_label_moved_by_someone_else_meanwhile_is_not_moved_again(site: Site) -> None:
    with client(site) as http, client(site) as other:
        http.post("/prompts/qa/labels", data={"csrf": csrf_of(http), "label": "staging", "version": "1"})
        mine, theirs = http.get("/prompts/qa").text, other.get("/prompts/qa").text  # both: staging -> v1
        first = other.post(
            "/prompts/qa/labels",
            data={"csrf": csrf_of(other), "label": "staging", "version": "2", "seen": _seen(theirs)},
        )
        late = http.post(
            "/prompts/qa/labels",
            data={"csrf": csrf_of(http), "label": "staging", "version": "1", "seen": _seen(mine)},
        )
    assert first.status_code == 303
    assert late.status_code == 400 and "changed since you looked" in late.text
    [staging] = [v.number for v in site.h.store.names.history("prompt", "qa") if "staging" in v.labels]
    assert staging == 2  # the first move stands; the late one did not overwrite it unseen


def _seen(page: str) -> str:
    found = re.search(r'name="seen" value="([^"]*)"', page)
    assert found is not None
    return html.unescape(found.group(1))


def test_a_bad_label_or_a_missing_csrf_token_changes_nothing(site: Site) -> None:
    with client(site) as http:
        token = csrf_of(http)
        bad = http.post("/prompts/qa/labels", data={"csrf": token, "label": "latest", "version": "1"})
        forged = http.post("/prompts/qa/labels", data={"label": "forged", "version": "1"})
    assert bad.status_code == 400 and "cannot be a label" in bad.text
    assert forged.status_code == 403
    labels = {lb for v in site.h.store.names.history("prompt", "qa") for lb in v.labels}
    assert not labels & {"latest", "forged"}


def test_a_script_in_a_prompt_renders_as_text(site: Site) -> None:
    hostile = Prompt.parse({"name": "evil", "messages": [{"role": "user", "content": HOSTILE}]})
    off_loop(lambda: push(site.h.store, [hostile], note=HOSTILE))
    with client(site) as http:
        page = http.get("/prompts/evil")
        listing = http.get("/prompts")
    for text in (page.text, listing.text):
        assert HOSTILE not in text and "&lt;script&gt;" in text
