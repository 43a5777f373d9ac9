"""Beyond localhost the dashboard needs a password (or an explicit opt-out): without it no page
is reachable, a wrong password says so, the right one opens every page; the Makefile's check."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from streamlit import config
from streamlit.testing.v1 import AppTest

REPO = Path(__file__).resolve().parent.parent
APP = str(REPO / "app.py")
PASSWORD = "correct horse battery staple"


@pytest.fixture
def served_on(monkeypatch):
    """``served_on(address)``: this process's Streamlit listens on ``address`` for the test."""
    before = config.get_option("server.address")

    def serve(address):
        config.set_option("server.address", address)

    yield serve
    config.set_option("server.address", before)


def open_app(page: str | None = None, secrets: dict | None = None) -> AppTest:
    at = AppTest.from_file(APP, default_timeout=60)
    for key, value in (secrets or {}).items():
        at.secrets[key] = value
    at.run()
    if page:
        at.switch_page(page).run()
    return at


def titles(at: AppTest) -> list[str]:
    return [t.value for t in at.title]


def sign_in(at: AppTest, password: str) -> AppTest:
    at.text_input(key="auth.password").input(password)
    next(b for b in at.button if "Sign in" in b.label).click()
    return at.run()


EVERY_PAGE = sorted(f"pages/{p.name}" for p in (REPO / "pages").glob("*.py"))


@pytest.mark.parametrize("address", ["0.0.0.0", "192.168.1.20", "::", "my-server.example.org"])
def test_no_password_beyond_localhost_serves_no_page(tmp_home, served_on, address):
    served_on(address)
    for page in (None, "pages/runs.py"):
        at = open_app(page)
        assert not at.exception
        assert not titles(at), titles(at)  # no page drew anything
        (error,) = [e.value for e in at.error]
        assert "PEDSENSE_PASSWORD" in error and "PEDSENSE_NO_AUTH=1" in error and address in error


@pytest.mark.parametrize("page", EVERY_PAGE)
def test_every_page_is_behind_the_sign_in(tmp_home, served_on, monkeypatch, page):
    """A page run on its own (a deep link, AppTest) asks for the password before drawing."""
    served_on("0.0.0.0")
    monkeypatch.setenv("PEDSENSE_PASSWORD", PASSWORD)
    at = open_app(page)
    assert not at.exception and titles(at) == ["pedsense"] and at.text_input(key="auth.password")


@pytest.mark.parametrize("source", ["environment", "secrets"])
def test_a_password_gates_every_page(tmp_home, served_on, monkeypatch, source):
    served_on("0.0.0.0")
    secrets = {"password": PASSWORD} if source == "secrets" else {}
    if source == "environment":
        monkeypatch.setenv("PEDSENSE_PASSWORD", PASSWORD)
    at = open_app("pages/runs.py", secrets)
    assert titles(at) == ["pedsense"] and not at.dataframe and not at.sidebar.markdown
    assert at.text_input(key="auth.password").proto.type == at.text_input(key="auth.password").proto.PASSWORD

    sign_in(at, "wrong guess")
    assert any("Wrong password" in e.value for e in at.error)
    assert titles(at) == ["pedsense"] and not any("Runs" in t for t in titles(at))

    sign_in(at, PASSWORD)
    assert not at.exception and not at.error, [e.value for e in at.error]
    assert "Runs" in titles(at)  # the deep link it asked for
    at.switch_page("pages/data.py").run()
    assert "Data" in titles(at)
    at.switch_page("app.py").run()  # the sidebar (and its sign-out) is app.py's
    next(b for b in at.sidebar.button if "Sign out" in b.label).click()
    at.run()
    assert titles(at) == ["pedsense"] and at.text_input(key="auth.password")


def test_only_the_exact_password_opens_the_pages(tmp_home, served_on, monkeypatch):
    """Near misses are wrong: case, spaces around the attempt, a prefix. Spaces around the
    configured password (a shell export's stray newline) are not part of it."""
    served_on("0.0.0.0")
    monkeypatch.setenv("PEDSENSE_PASSWORD", f"  {PASSWORD}\n")
    at = open_app("pages/runs.py")
    for near_miss in (PASSWORD.upper(), PASSWORD.title(), f" {PASSWORD}", f"{PASSWORD} ", PASSWORD[:-1], ""):
        sign_in(at, near_miss)
        assert any("Wrong password" in e.value for e in at.error), repr(near_miss)
        assert titles(at) == ["pedsense"], repr(near_miss)
    sign_in(at, PASSWORD)
    assert not at.error and "Runs" in titles(at)


@pytest.mark.parametrize("password", [" ", "\t\n", "short", "  seven7  "])
def test_a_blank_or_short_password_beyond_localhost_serves_no_page(tmp_home, served_on, monkeypatch, password):
    served_on("0.0.0.0")
    monkeypatch.setenv("PEDSENSE_PASSWORD", password)
    at = open_app("pages/runs.py")
    assert not at.exception and not titles(at) and not at.text_input
    (error,) = [e.value for e in at.error]
    assert "PEDSENSE_PASSWORD" in error and "0.0.0.0" in error
    assert ("at least 8 characters" in error) if password.strip() else ("PEDSENSE_NO_AUTH=1" in error)


def test_a_password_set_on_localhost_is_asked_too(tmp_home, monkeypatch):
    monkeypatch.setenv("PEDSENSE_PASSWORD", PASSWORD)
    at = open_app()
    assert at.text_input(key="auth.password") and not at.sidebar.markdown


def test_opting_out_serves_without_a_password(tmp_home, served_on, monkeypatch):
    served_on("0.0.0.0")
    monkeypatch.setenv("PEDSENSE_NO_AUTH", "1")
    at = open_app("pages/runs.py")
    assert not at.exception and "Runs" in titles(at)


def test_localhost_needs_no_password(tmp_home):
    at = open_app()
    assert "pedsense" in titles(at) and not [t for t in at.text_input if t.key == "auth.password"]


# -- the Makefile's check (the same rule: ui.auth.refusal) ---------------------------------------
def check(host: str, **env: str) -> subprocess.CompletedProcess:
    import os

    clean = {k: v for k, v in os.environ.items() if k not in ("PEDSENSE_PASSWORD", "PEDSENSE_NO_AUTH")}
    return subprocess.run([sys.executable, "-m", "ui.auth", host], cwd=REPO, env={**clean, **env},
                          capture_output=True, text=True, timeout=120)


def test_make_run_refuses_a_public_host_without_a_password_naming_both_ways():
    assert "-m ui.auth" in (REPO / "Makefile").read_text()
    refused = check("0.0.0.0")
    assert refused.returncode == 2
    assert "PEDSENSE_PASSWORD" in refused.stderr and "PEDSENSE_NO_AUTH=1" in refused.stderr
    assert check("localhost").returncode == 0 and check("127.0.0.1").returncode == 0
    assert check("0.0.0.0", PEDSENSE_PASSWORD="long enough").returncode == 0
    for weak in (" ", "x", "  1234567 "):  # blank, or under 8 characters once stripped
        refused = check("0.0.0.0", PEDSENSE_PASSWORD=weak)
        assert refused.returncode == 2 and "PEDSENSE_PASSWORD" in refused.stderr, (weak, refused.stderr)
    assert check("localhost", PEDSENSE_PASSWORD="x").returncode == 0
    opted_out = check("0.0.0.0", PEDSENSE_NO_AUTH="1")
    assert opted_out.returncode == 0 and "warning:" in opted_out.stderr and "without a password" in opted_out.stderr


def test_streamlit_oidc_sign_in_gates_the_pages_when_configured(tmp_home, served_on):
    served_on("0.0.0.0")
    auth = {"auth": {"redirect_uri": "http://localhost:8501/oauth2callback", "cookie_secret": "x",
                     "client_id": "id", "client_secret": "secret",
                     "server_metadata_url": "https://id.example.org/.well-known/openid-configuration"}}
    at = AppTest.from_file(APP, default_timeout=60)
    at.secrets.update(auth)
    at.user = {"is_logged_in": False}
    at.run()
    at.switch_page("pages/runs.py").run()
    assert not at.exception and titles(at) == ["pedsense"]
    assert any(b.label == "Sign in" for b in at.button) and not at.text_input
    at.user = {"is_logged_in": True, "email": "researcher@example.org"}
    at.run()
    assert not at.exception and "Runs" in titles(at)


def test_the_serving_docs_say_media_links_are_outside_the_sign_in_and_how_a_proxy_closes_them():
    serving = (REPO / "docs" / "serving.md").read_text(encoding="utf-8")
    section = serving[serving.index("## Media links are outside the sign-in"):]
    section = section[: section.index("\n## ", 1)]
    assert "/media/<hash>" in section and "outside any session" in section
    assert "auth_basic_user_file" in section and "basic_auth" in section

