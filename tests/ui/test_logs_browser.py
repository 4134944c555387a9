"""The log pages in a real browser: filter the list (htmx swaps it in), open a log, give it a thumbs up and
a correction; the hostile output stays text and no script runs."""

from __future__ import annotations

from playwright.sync_api import Dialog, Page, expect

from tests.ui.conftest import HOSTILE, Site, off_loop


def make_logs(site: Site) -> str:
    h = site.h
    for i in range(5):
        h.log(model="app/other", inputs={"i": i}, output=f"other {i}")
    log_id = h.log(model="app/chosen", inputs={"question": "Capital of France?"}, output=HOSTILE)
    h.flush_logs()
    return log_id


def test_filter_the_logs_then_give_feedback(site: Site, tab: Page) -> None:
    log_id = off_loop(lambda: make_logs(site))
    dialogs: list[str] = []

    def seen(dialog: Dialog) -> None:  # a script that ran would most likely alert
        dialogs.append(dialog.message)
        dialog.dismiss()

    tab.on("dialog", seen)
    tab.goto(f"{site.url}/experiments")
    tab.click("nav.top a:has-text('Logs')")
    expect(tab.locator("#logs")).to_contain_text("app/other")
    tab.fill("input[name=model]", "app/chosen")
    tab.press("input[name=model]", "Enter")
    expect(tab.locator("#logs tbody tr")).to_have_count(1)
    assert "model=app%2Fchosen" in tab.url or "model=app/chosen" in tab.url
    expect(tab.locator("#logs")).to_contain_text(HOSTILE)  # the output, as text
    tab.click(f"#logs a[href='/logs/{log_id}']")
    expect(tab.locator("#output")).to_have_text(HOSTILE)
    tab.click("button[name=thumbs][value=up]")
    expect(tab.locator("#feedback + table")).to_contain_text("thumbs")
    expect(tab.locator("#feedback + table")).to_contain_text("up")
    tab.fill("textarea[name=correction]", "Paris")
    tab.click("button:has-text('Save feedback')")
    expect(tab.locator("#feedback + table")).to_contain_text("Paris")
    kinds = off_loop(lambda: [f["kind"] for f in site.h.store.logs.get(log_id).feedback])
    assert kinds == ["thumbs", "correction"] and dialogs == []
