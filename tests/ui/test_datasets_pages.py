"""The dataset pages over a real server: the list, a dataset's versions and splits, cases with search and
pages, and edits that record a new version and leave the old one; case data stays text."""

from __future__ import annotations

import re

from playwright.sync_api import Page, expect

from honed.datasets import get_dataset
from tests.ui.conftest import HOSTILE, N_CASES, Site, client
from tests.ui.test_prompts_pages import csrf_of


def test_the_list_and_a_datasets_cases_with_search_and_pages(site: Site) -> None:
    with client(site) as http:
        listing = http.get("/datasets")
        first = http.get("/datasets/caps", params={"v": 1})
        second = http.get("/datasets/caps", params={"v": 1, "offset": 25})
        found = http.get("/datasets/caps", params={"v": 1, "q": "country13"})
        missing = http.get("/datasets/nope")
    assert listing.status_code == 200 and 'href="/datasets/caps"' in listing.text
    assert f"{N_CASES} cases: 1–25 shown" in first.text and "next →" in first.text
    assert "(none) 30" in re.sub(r"<[^>]+>", "", first.text)  # the splits, with counts
    assert "26–30 shown" in second.text and "← previous" in second.text
    assert re.findall(r"<code>(c\d\d)</code>", found.text) == ["c13"]
    assert missing.status_code == 404


def test_editing_a_case_in_the_browser_makes_a_new_version(site: Site, tab: Page) -> None:
    before = get_dataset(site.h.store, "caps")
    tab.goto(f"{site.url}/datasets/caps?q=country3")
    tab.click("#cases a:has-text('edit')")
    tab.fill("textarea[name=reference]", "capital3, corrected")
    tab.fill("input[name=note]", "fix c03")
    tab.click("button:has-text('Save as a new version')")
    expect(tab.locator("h1")).to_contain_text(f"v{before.number + 1}")
    expect(tab.locator("#versions")).to_contain_text("fix c03")
    after = get_dataset(site.h.store, "caps")
    assert after.number == before.number + 1
    assert {c.id: c.reference for c in after.cases}["c03"] == "capital3, corrected"
    # The old version is as it was.
    old = get_dataset(site.h.store, f"caps@v{before.number}")
    assert old.cases == before.cases and {c.id: c.reference for c in old.cases}["c03"] == "capital3"
    events, _ = site.h.store.audit.page(5, kind="dataset", name="caps")
    assert events[0].user == "local" and events[0].detail["case"] == "c03"


def test_a_bad_form_comes_back_as_typed_and_a_stale_one_is_refused(site: Site) -> None:
    latest = get_dataset(site.h.store, "caps").number
    with client(site) as http:
        token = csrf_of(http, "/datasets/caps")
        bad = http.post(
            "/datasets/caps/cases",
            data={"csrf": token, "based_on": latest, "id": "x1", "inputs": "{not json"},
        )
        stale = http.post(
            "/datasets/caps/cases",
            data={"csrf": token, "based_on": latest - 1 if latest > 1 else 99, "inputs": '{"country": "y"}'},
        )
    assert bad.status_code == 400 and "inputs is not valid JSON" in bad.text and "{not json" in bad.text
    assert stale.status_code == 400 and "changed since you opened" in stale.text
    assert get_dataset(site.h.store, "caps").number == latest


def test_a_script_in_a_case_renders_as_text(site: Site) -> None:
    with client(site) as http:
        token = csrf_of(http, "/datasets/caps")
        latest = get_dataset(site.h.store, "caps").number
        added = http.post(
            "/datasets/caps/cases",
            data={
                "csrf": token,
                "based_on": latest,
                "id": "evil",
                "inputs": f'{{"country": "{HOSTILE}"}}',
                "reference": HOSTILE,
            },
        )
        assert added.status_code == 303
        page = http.get(added.headers["location"], params={"q": "evil"})
    assert HOSTILE not in page.text and "&lt;script&gt;" in page.text
