"""Who may use the UI where tokens are required: sign in with a UI-scoped token, a session cookie that
scripts cannot read and other sites cannot send, CSRF on every form, revocation ending the session."""

from __future__ import annotations

import re

import httpx
import pytest

from tests.ui.conftest import Site, client


def sign_in(http: httpx.Client, token: str, next_page: str = "/experiments") -> httpx.Response:
    return http.post("/signin", data={"token": token, "next": next_page})


def csrf_of(page: str) -> str:
    found = re.search(r'name="csrf" value="([0-9a-f]+)"', page)
    assert found, "no CSRF field on the page"
    return found.group(1)


def test_anonymous_visitors_are_sent_to_sign_in_and_learn_nothing(guarded: Site) -> None:
    with client(guarded) as http:
        page = http.get(f"/experiments/{guarded.run_id}?show=regressions")
        unknown = http.get("/no/such/page")
        posted = http.post("/signout", data={})
        form = http.get("/signin")
        api = http.get("/v1/models")
    assert page.status_code == 303
    assert page.headers["location"] == f"/signin?next=%2Fexperiments%2F{guarded.run_id}%3Fshow%3Dregressions"
    assert unknown.status_code == 303  # the same answer as a real page: no map of the site
    assert posted.status_code == 401
    assert form.status_code == 200 and 'name="token"' in form.text
    assert api.status_code == 401  # the API keeps its bearer tokens


def test_a_ui_token_signs_in_with_a_strict_http_only_cookie(guarded: Site) -> None:
    token, secret = guarded.h.store.tokens.create("alice", ["annotate"])
    with client(guarded) as http:
        signed = sign_in(http, secret, f"/experiments/{guarded.run_id}")
        cookie = signed.headers["set-cookie"]
        page = http.get(f"/experiments/{guarded.run_id}")
        api = http.get("/v1/models")  # a session is not an API token
    assert signed.status_code == 303 and signed.headers["location"] == f"/experiments/{guarded.run_id}"
    assert "HttpOnly" in cookie and "SameSite=strict" in cookie.replace("Strict", "strict")
    assert secret not in cookie  # the cookie holds the token's id and a signature, never its secret
    assert page.status_code == 200 and "alice" in page.text and "annotate" in page.text
    assert api.status_code == 401
    assert token.id in cookie


@pytest.mark.parametrize(
    ("scopes", "message"),
    [(["ingest"], "has no web UI scope"), (None, "not valid")],
)
def test_tokens_that_cannot_sign_in(guarded: Site, scopes: list[str] | None, message: str) -> None:
    secret = "hnd_0123456789abcdef_" + "A" * 43
    if scopes is not None:
        secret = guarded.h.store.tokens.create("app", scopes)[1]
    with client(guarded) as http:
        refused = sign_in(http, secret)
        after = http.get("/experiments")
    assert refused.status_code in (401, 403) and message in refused.text
    assert "set-cookie" not in refused.headers
    assert after.status_code == 303


def test_sign_in_only_goes_back_to_this_site(guarded: Site) -> None:
    secret = guarded.h.store.tokens.create("bob", ["read"])[1]
    for target in ("https://evil.example/", "//evil.example/x", "/\\evil.example"):
        with client(guarded) as http:
            assert sign_in(http, secret, target).headers["location"] == "/"


def test_forms_need_the_sessions_csrf_token_and_a_revoked_token_ends_the_session(guarded: Site) -> None:
    token, secret = guarded.h.store.tokens.create("carol", ["write"])
    with client(guarded) as http:
        sign_in(http, secret)
        page = http.get("/experiments").text
        forged = http.post("/signout", data={"csrf": "0" * 32})
        missing = http.post("/signout", data={})
        still = http.get("/experiments")
        guarded.h.store.tokens.revoke(token.id)
        revoked = http.get("/experiments")
    assert forged.status_code == 403 and missing.status_code == 403
    assert still.status_code == 200  # a refused form changed nothing
    assert revoked.status_code == 303  # the next request after revocation is anonymous
    with client(guarded) as http:
        sign_in(http, guarded.h.store.tokens.create("dave", ["read"])[1])
        token_field = csrf_of(http.get("/experiments").text)
        out = http.post("/signout", data={"csrf": token_field})
        after = http.get("/experiments")
    assert out.status_code == 303 and after.status_code == 303
    assert token_field != csrf_of(page)  # each session has its own


def test_a_cross_site_form_post_is_refused_before_it_is_read(guarded: Site) -> None:
    secret = guarded.h.store.tokens.create("erin", ["admin"])[1]
    with client(guarded) as http:
        sign_in(http, secret)
        csrf = csrf_of(http.get("/experiments").text)
        foreign = http.post("/signout", data={"csrf": csrf}, headers={"Origin": "https://evil.example"})
    assert foreign.status_code == 403


def test_the_local_user_of_an_open_server_needs_no_sign_in(site: Site) -> None:
    with client(site) as http:
        page = http.get("/experiments")
        signin = http.get("/signin", params={"next": "/experiments"})
    assert page.status_code == 200 and "local" in page.text and "sign out" not in page.text
    assert signin.status_code == 303 and signin.headers["location"] == "/experiments"
