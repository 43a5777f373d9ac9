"""In a real server and a real Chromium, the fresh server's first visit being a deep link still
meets the sign-in first (Streamlit's pages-directory mode runs that page on its own)."""

from __future__ import annotations


import pytest

from test_browser import CHROMIUM_ARGS, UI_WAIT_MS, chromium_path, serve_dashboard

pytestmark = pytest.mark.browser
PASSWORD = "s3cret-for-the-browser"


@pytest.fixture
def guarded_server(demo_home):
    with serve_dashboard(demo_home, PEDSENSE_PASSWORD=PASSWORD) as url:
        yield url


def test_a_deep_link_first_meets_the_sign_in(guarded_server):
    executable = chromium_path()
    from playwright.sync_api import expect, sync_playwright

    expect.set_options(timeout=UI_WAIT_MS)  # each assertion polls up to it (Playwright: 5 s)

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=executable, args=CHROMIUM_ARGS, headless=True)
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 900})
            page.set_default_timeout(UI_WAIT_MS)
            page.goto(f"{guarded_server}/runs", wait_until="domcontentloaded")
            password = page.get_by_label("Password", exact=True)
            expect(password).to_be_visible(timeout=90_000)
            expect(page.get_by_role("heading", name="Runs", exact=True)).to_have_count(0)
            expect(page.locator('[data-testid="stSidebar"]')).to_have_count(0)
            password.fill("not it")
            page.get_by_role("button", name="Sign in").click()
            expect(page.get_by_text("Wrong password")).to_be_visible(timeout=60_000)
            page.get_by_label("Password", exact=True).fill(PASSWORD)
            page.get_by_role("button", name="Sign in").click()
            expect(page.get_by_role("heading", name="Runs", exact=True)).to_be_visible(timeout=90_000)
            expect(page.locator('[data-testid="stSidebar"]')).to_contain_text("Data home", timeout=60_000)
        finally:
            browser.close()
