"""The experiment pages in a real browser: filter the matrix (htmx swaps it in), open a case; untrusted
output stays text; the page runs no script of its own content and raises no script error."""

from __future__ import annotations

from playwright.sync_api import Page, expect

from tests.ui.conftest import HOSTILE, Site


def test_filter_regressions_then_open_a_case(site: Site, tab: Page) -> None:
    tab.goto(f"{site.url}/experiments")
    tab.click(f"a[href='/experiments/{site.run_id}']")
    expect(tab.locator("h1").first).to_have_text("capitals")
    expect(tab.locator("#cases")).to_contain_text("30 cases: 1–25 shown")
    tab.select_option("select[name=show]", "improvements")
    expect(tab.locator("#cases")).to_contain_text("15 cases improved against qa@v1")
    assert tab.locator("#cases tbody tr").count() == 15
    assert "show=improvements" in tab.url  # the filter is in the address, so the view can be shared
    tab.select_option("select[name=show]", "regressions")
    expect(tab.locator("#cases")).to_contain_text("No case matches.")
    tab.select_option("select[name=show]", "all")
    tab.fill("input[name=q]", "country4")
    tab.press("input[name=q]", "Enter")
    expect(tab.locator("#cases tbody tr")).to_have_count(1)
    tab.click("#cases a:has-text('c04')")
    expect(tab.locator("h1")).to_contain_text("c04")
    expect(tab.locator("body")).to_contain_text("Answer with the capital only.")


def test_a_script_in_an_output_is_shown_as_text(site: Site, tab: Page) -> None:
    dialogs: list[str] = []
    tab.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
    tab.goto(f"{site.url}/experiments/{site.run_id}/cases/c07")
    expect(tab.locator("pre.out").last).to_have_text(HOSTILE)
    tab.goto(f"{site.url}/experiments/{site.run_id}?q=country7")
    expect(tab.locator("#cases")).to_contain_text(HOSTILE)
    assert dialogs == []
