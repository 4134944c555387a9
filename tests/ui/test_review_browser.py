"""Labelling a review queue with the keyboard in a real browser: make a queue of a run's regressions, label
with p, f, undo with u, move with j/k and the arrows; the labels are the run's `human` scores, as
`honed experiments show --json` reports them."""

from __future__ import annotations

import json
import re

from playwright.sync_api import Page, expect

from tests.support.cli import honed
from tests.ui.conftest import Site


def at(tab: Page, n: int) -> None:
    """Wait until the browser shows item `n`, loaded: a key pressed while the next page is still arriving
    would reach a page whose script is not running yet."""
    expect(tab).to_have_url(re.compile(rf"/review/q-[0-9a-f]+/items/{n}$"))
    tab.wait_for_load_state("load")


def test_label_a_queue_of_regressions_with_the_keyboard(site: Site, tab: Page) -> None:
    tab.goto(f"{site.url}/experiments")
    tab.click("nav.top a:has-text('Review')")
    form = tab.locator("#from-run")
    form.locator("select[name=run]").select_option(site.run_id)
    form.locator("select[name=select]").select_option("regressions")
    form.locator("input[name=baseline]").fill("qa@v2")
    form.locator("button[type=submit]").click()
    # qa@v1 answers every even case wrong where qa@v2 is right: 15 regressions of qa@v1.
    expect(tab.locator("h1")).to_contain_text("regressions against qa@v2")
    expect(tab.locator("#progress")).to_contain_text("0 of 15 labelled")
    tab.click("#start")
    at(tab, 1)
    expect(tab.locator("h1")).to_contain_text("qa@v1")

    tab.keyboard.press("p")  # item 1 passes, on to 2
    at(tab, 2)
    tab.keyboard.press("f")  # item 2 fails, on to 3
    at(tab, 3)
    expect(tab.locator("#progress")).to_contain_text("2 of 15 labelled")
    tab.keyboard.press("u")  # undo: back to item 2, unlabelled
    at(tab, 2)
    expect(tab.locator("#mine")).to_contain_text("none yet")
    tab.keyboard.press("k")  # previous
    at(tab, 1)
    expect(tab.locator("#mine")).to_contain_text("pass")
    tab.keyboard.press("j")  # next
    at(tab, 2)
    tab.keyboard.press("4")  # a rating: kept beside the pass/fail, on to 3
    at(tab, 3)
    tab.keyboard.press("ArrowLeft")
    at(tab, 2)
    tab.keyboard.press("f")
    at(tab, 3)
    tab.keyboard.press("ArrowLeft")
    at(tab, 2)
    expect(tab.locator("#mine")).to_contain_text("fail, 4/5")
    # A comment typed after pressing m, saved with Ctrl+Enter, stays on the item.
    tab.keyboard.press("m")
    tab.keyboard.type("<b>too short</b>")
    tab.keyboard.press("Control+Enter")
    expect(tab.locator("#mine")).to_contain_text("comment")
    expect(tab.locator("pre.v").last).to_have_text("<b>too short</b>")

    queue_id = tab.url.split("/review/")[1].split("/")[0]
    tab.goto(f"{site.url}/review/{queue_id}")
    expect(tab.locator("#progress")).to_contain_text("2 of 15 labelled")
    # Every change, who made it and when: pass, fail (undone), 4, fail, the comment.
    expect(tab.locator("#activity tbody tr")).to_have_count(5)
    expect(tab.locator("#activity")).to_contain_text("(undone)")

    # The labels are the run's human scores: item 1 passed, item 2 failed, both of qa@v1.
    first, second = site.h.store.review.items(queue_id, limit=2)
    root = site.h.settings.root
    assert root is not None
    shown = honed("experiments", "show", site.run_id, "--json", cwd=root)
    assert shown.returncode == 0, shown.stderr
    human = json.loads(shown.stdout)["evaluators"]["human"]["summaries"]["qa@v1"]
    assert (human["n_scored"], human["mean"], human["n_passed"]) == (2, 0.5, 1)
    rows = {
        s["case_id"]: (s["value"], s["passed"], s["details"]["reviewer"], s["details"]["rating"])
        for s in site.h.store.runs.scores(site.run_id)
        if s["evaluator"] == "human"
    }
    assert rows == {first.case_id: (1.0, True, "local", None), second.case_id: (0.0, False, "local", 4)}
