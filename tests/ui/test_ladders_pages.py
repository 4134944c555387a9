"""The ladder pages over a real server: the stored ledgers, and a ladder's page, which is the body of its
HTML report (ledger, charts, diagnosis) under the UI's navigation, with the report's styles as a
stylesheet (no inline style or script); notes written by people render as text."""

from __future__ import annotations

import pytest

from honed.optimize.ladder import KIND
from honed.optimize.report import ladder_sections
from tests.optimize.test_report import HOSTILE_NOTE, make_diagnosis, make_ledger
from tests.ui.conftest import Site, client


@pytest.fixture(scope="module")
def ladder(site: Site) -> str:
    """Two ledgers of one ladder, stored as `honed optimize run` stores them (no steps are run)."""
    ledger = make_ledger()
    site.h.store.names.record(KIND, ledger["name"], ledger, note="run run-7f3a (completed)")
    site.h.store.names.record(
        KIND, ledger["name"], {**ledger, "diagnosis": make_diagnosis()}, note="run run-8 (completed)"
    )
    return str(ledger["name"])


def test_the_list_links_each_ladder(site: Site, ladder: str) -> None:
    with client(site) as http:
        page = http.get("/ladders")
    assert page.status_code == 200 and f'href="/ladders/{ladder}"' in page.text and "<td>2</td>" in page.text


def test_a_ladder_page_embeds_the_report_body(site: Site, ladder: str) -> None:
    latest = {**make_ledger(), "diagnosis": make_diagnosis()}
    with client(site) as http:
        page = http.get(f"/ladders/{ladder}")
        first = http.get(f"/ladders/{ladder}", params={"version": "v1"})
        css = http.get("/ladders.css")
    assert page.status_code == 200
    assert ladder_sections(latest) in page.text  # the report's own sections, as they are
    assert "<svg" in page.text and "Recommendation" in page.text  # charts and the diagnosis
    assert "Recommendation" not in first.text and ladder_sections(make_ledger()) in first.text
    assert page.text.count("<html") == 1 and "<style" not in page.text  # embedded, not a page in a page
    assert (
        css.status_code == 200 and css.headers["content-type"].startswith("text/css") and ".axis" in css.text
    )


def test_a_note_with_markup_is_text(site: Site, ladder: str) -> None:
    with client(site) as http:
        page = http.get(f"/ladders/{ladder}")
    assert HOSTILE_NOTE not in page.text and "&lt;script&gt;" in page.text


def test_unknown_ladders_are_pages(site: Site) -> None:
    with client(site) as http:
        missing = http.get("/ladders/nope")
        version = http.get("/ladders/catalogue-qa", params={"version": "v9"})
    assert missing.status_code == 404 and "nope" in missing.text
    assert version.status_code == 404
