"""A workspace with a finished experiment run, and honed serve's app (with the web UI) on a real socket."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

import httpx
import pytest
from playwright.sync_api import Browser, Page, sync_playwright

from honed.api import Honed
from honed.config import load_settings
from honed.datasets import Case, record_cases
from honed.experiments import parse_spec, resolve, run_experiment
from honed.models.types import ChatRequest
from honed.prompts import Prompt, push
from honed.serve import create_app
from honed.serve.auth import TokenGate
from honed.testing import scripted
from tests.support.servers import running

T = TypeVar("T")
HOSTILE = "<script>alert('pwned')</script>"
CHROMIUM = Path("/usr/bin/chromium")
#: Chromium as root, offline: no sandbox, and none of the background connections this closed network refuses.
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
#: Screenshots of failed browser tests go here (a CI artefact).
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"
N_CASES = 30


def answer(request: ChatRequest) -> str:
    """v1 answers every case wrong; v2 gets the even cases right; case 7's v2 output is hostile markup."""
    country = str(request.messages[-1]["content"])
    if country == "country7":
        return HOSTILE
    good = "capital only" in str(request.messages[0]["content"])
    n = int(country.removeprefix("country"))
    return f"capital{n}" if good and n % 2 == 0 else "I don't know"


@dataclass
class Site:
    url: str
    run_id: str
    h: Honed


def make_run(h: Honed, model: str) -> str:
    for i, system in enumerate(["Answer.", "Answer with the capital only."], 1):
        prompt = Prompt.model_validate(
            {
                "name": "qa",
                "model": model,
                "messages": [
                    {"role": "system", "content": system},
                    {"role": "user", "content": "{{ country }}"},
                ],
            }
        )
        push(h.store, [prompt], note=f"v{i}")
    cases = [
        Case(id=f"c{i:02d}", inputs={"country": f"country{i}"}, reference=f"capital{i}")
        for i in range(N_CASES)
    ]
    record_cases(h.store, "caps", cases)
    spec = {
        "name": "capitals",
        "dataset": "caps",
        "variants": [{"prompt": "qa@v1"}, {"prompt": "qa@v2"}],
        "evaluators": [{"type": "exact"}],
    }
    return run_experiment(h, resolve(h, parse_spec(spec))).id


def off_loop(fn: Callable[[], T]) -> T:
    """Run `fn` in a thread of its own: Playwright's sync API keeps an event loop running on the test
    thread, where honed's synchronous calls (asyncio.run inside) cannot start theirs."""
    with ThreadPoolExecutor(1) as pool:
        return pool.submit(fn).result()


@pytest.fixture(scope="module")
def ui_workspace(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Honed, str]]:
    from honed.config import init_workspace

    root = init_workspace(tmp_path_factory.mktemp("ui"))
    h = Honed(load_settings(start=root))
    with scripted("ui", answer) as model:
        run_id = off_loop(lambda: make_run(h, model))
    yield h, run_id
    h.close()


@pytest.fixture(scope="module")
def site(ui_workspace: tuple[Honed, str]) -> Iterator[Site]:
    """The UI open to the local user (loopback, no tokens), as `honed serve` starts it."""
    h, run_id = ui_workspace
    app = create_app(h.client, store=h.store, workspace=h)
    with running(app) as base:
        yield Site(base.removesuffix("/v1"), run_id, h)


@pytest.fixture(scope="module")
def guarded(ui_workspace: tuple[Honed, str]) -> Iterator[Site]:
    """The UI where tokens are required: people sign in."""
    h, run_id = ui_workspace
    app = create_app(h.client, store=h.store, workspace=h, gate=TokenGate(h.store))
    with running(app) as base:
        yield Site(base.removesuffix("/v1"), run_id, h)


def client(site: Site) -> httpx.Client:
    return httpx.Client(base_url=site.url, follow_redirects=False, timeout=30)


@pytest.fixture
def workspace_path(ui_workspace: tuple[Honed, str]) -> Path:
    return ui_workspace[0].settings.root


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    """Debian's Chromium driven by Playwright (its own browser download cannot work offline). Per module,
    not per session: Playwright's sync API keeps an event loop running on the test thread while it is
    open, and a later test file on the same worker must be able to call honed's sync functions."""
    assert CHROMIUM.exists(), f"{CHROMIUM} is missing: scripts/test.sh installs it (apt-get install chromium)"
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        yield launched
        launched.close()


@pytest.fixture
def tab(browser: Browser, request: pytest.FixtureRequest) -> Iterator[Page]:
    """A fresh browser context and page; on a failed test its screenshot is saved in test-artifacts/."""
    context = browser.new_context(viewport={"width": 1400, "height": 1000})
    page = context.new_page()
    page.set_default_timeout(15_000)
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    yield page
    report = getattr(request.node, "rep_call", None)
    if report is not None and report.failed:
        ARTIFACTS.mkdir(exist_ok=True)
        page.screenshot(path=str(ARTIFACTS / f"{request.node.name}.png"), full_page=True)
    context.close()
    assert not errors, f"script errors on the page: {errors}"


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]):  # type: ignore[no-untyped-def]
    """Keep each phase's report on the test item, so the `tab` fixture knows whether the test failed."""
    outcome = yield
    report = outcome.get_result()
    setattr(item, f"rep_{report.when}", report)
