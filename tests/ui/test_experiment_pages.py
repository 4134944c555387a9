"""The experiment pages over a real server: the list, a run's analysis and case matrix (filters, pages),
a case in full; untrusted outputs render as text."""

from __future__ import annotations

import getpass
import re

from honed.datasets import Case, record_cases
from honed.experiments import analyse, parse_spec, resolve, run_experiment
from honed.experiments.crossrun import compare_runs
from honed.testing import scripted
from tests.ui.conftest import HOSTILE, Site, client, off_loop


def test_the_list_links_each_run(site: Site) -> None:
    with client(site) as http:
        home = http.get("/")
        assert home.status_code == 303 and home.headers["location"] == "/experiments"
        page = http.get("/experiments")
    assert page.status_code == 200
    assert f'href="/experiments/{site.run_id}"' in page.text
    assert "capitals" in page.text and "caps" in page.text and "qa@v1, qa@v2" in page.text
    assert f"<td>{getpass.getuser()}</td>" in page.text  # who ran it


def test_a_run_page_shows_the_analysis_and_the_matrix(site: Site) -> None:
    report = analyse(site.h.store, site.run_id)
    with client(site) as http:
        page = http.get(f"/experiments/{site.run_id}")
    assert page.status_code == 200
    text = page.text
    # The same analysis as `experiments compare`: both variants' means and the verdict against the baseline.
    for variant, summary in report.stats["exact"].summaries.items():
        assert variant in text and f"{summary.mean:.3f}" in text
    verdict = report.stats["exact"].comparisons["qa@v2"].verdict
    assert verdict in text and "<svg" in text
    # The matrix: 25 cases on the first page, both variants side by side.
    assert text.count('href="/experiments/' + site.run_id + "/cases/") == 25
    assert "30 cases: 1–25 shown" in text and "next →" in text


def test_filters_and_pages_select_cases(site: Site) -> None:
    with client(site) as http:
        better = http.get(f"/experiments/{site.run_id}", params={"show": "improvements"}).text
        second = http.get(f"/experiments/{site.run_id}", params={"offset": 25}).text
        found = http.get(f"/experiments/{site.run_id}", params={"q": "country13"}).text
        fragment = http.get(
            f"/experiments/{site.run_id}", params={"show": "regressions"}, headers={"HX-Request": "true"}
        )
    # Even cases improve under v2 (c00 ... c28, but c07 is odd anyway): 15 improvements.
    assert "15 improvements" not in better  # the selection is said in words
    assert re.search(r"15 cases improved against qa@v1", better)
    assert len(re.findall(r'/cases/c\d\d"', better)) == 15
    assert "26–30 shown" in second and "← previous" in second
    assert re.findall(r'/cases/(c\d\d)"', found) == ["c13"]
    # An htmx request gets the matrix alone.
    assert fragment.status_code == 200 and fragment.text.lstrip().startswith('<div id="cases">')
    assert "<nav" not in fragment.text.split('<div id="cases">')[0]


def test_a_case_page_shows_messages_scores_and_output(site: Site) -> None:
    with client(site) as http:
        page = http.get(f"/experiments/{site.run_id}/cases/c02")
    assert page.status_code == 200
    assert "Answer with the capital only." in page.text  # the messages sent, from the response cache
    assert "capital2" in page.text and "exact" in page.text


def test_model_output_is_text_never_markup(site: Site) -> None:
    with client(site) as http:
        matrix = http.get(f"/experiments/{site.run_id}", params={"q": "country7"})
        case = http.get(f"/experiments/{site.run_id}/cases/c07")
    for page in (matrix, case):
        assert HOSTILE not in page.text
        assert "&lt;script&gt;alert(&#39;pwned&#39;)&lt;/script&gt;" in page.text
        policy = page.headers["content-security-policy"]
        assert "script-src 'self'" in policy and "unsafe-inline" not in policy


def test_unknown_runs_and_cases_are_pages_not_tracebacks(site: Site) -> None:
    with client(site) as http:
        missing = http.get("/experiments/nope")
        case = http.get(f"/experiments/{site.run_id}/cases/zz")
        bad = http.get(f"/experiments/{site.run_id}", params={"show": "weird"})
        api = http.get("/v1/nothing")
    assert missing.status_code == 404 and "text/html" in missing.headers["content-type"]
    assert "nope" in missing.text and "Traceback" not in missing.text
    assert case.status_code == 404 and "no case &#39;zz&#39;" in case.text
    assert bad.status_code == 400 and "show=&#39;weird&#39;" in bad.text
    # The API keeps OpenAI's error shape.
    assert api.status_code == 404 and api.json()["error"]["type"] == "invalid_request_error"


def test_two_runs_of_one_dataset_compare_case_by_case(site: Site) -> None:
    spec = {
        "name": "capitals-again",
        "dataset": "caps",
        "variants": [{"prompt": "qa@v2", "model": "scripted/all-right"}],
        "evaluators": [{"type": "exact"}],
    }
    h = site.h
    with scripted("all-right", lambda r: str(r.messages[-1]["content"]).replace("country", "capital")):
        second = off_loop(lambda: run_experiment(h, resolve(h, parse_spec(spec))).id)
    with client(site) as http:
        choices = http.get("/experiments/compare", params={"a": site.run_id}).text
        page = http.get("/experiments/compare", params={"a": site.run_id, "b": second, "va": "qa@v2"})
    assert f"b={second}" in choices
    assert page.status_code == 200
    text = page.text
    result = compare_runs(h.store, site.run_id, second, variant_a="qa@v2")
    assert f"<h1>{result.b.label} against {site.run_id}:qa@v2</h1>" in text
    assert "B − A = +0.500" in text and 'class="v v-better">better' in text
    assert "0 regressed, 15 improved" in text
    # The same numbers as the domain function gives (what a script would read).
    assert result.stats["exact"].comparisons[result.b.label].mean_diff == 0.5


def test_runs_of_different_dataset_versions_are_not_paired(site: Site) -> None:
    h = site.h
    record_cases(h.store, "caps", [Case(id="x1", inputs={"country": "countryX"}, reference="capitalX")])
    spec = {
        "name": "other",
        "dataset": "caps",
        "variants": [{"prompt": "qa@v2"}],
        "evaluators": [{"type": "exact"}],
    }
    with scripted("ui", lambda r: "capitalX"):
        other = off_loop(lambda: run_experiment(h, resolve(h, parse_spec(spec))).id)
    with client(site) as http:
        page = http.get("/experiments/compare", params={"a": site.run_id, "b": other})
    assert page.status_code == 400 and "ran different dataset versions (caps@v1 and caps@v2)" in page.text
