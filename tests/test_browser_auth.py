"""In a real server and a real Chromium, the fresh server's first visit being a deep link still
meets the sign-in first (Streamlit's pages-directory mode runs that page on its own)."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from test_browser import CHROMIUM_ARGS, REPO, chromium_path, free_port, wait_healthy

pytestmark = pytest.mark.browser
PASSWORD = "s3cret-for-the-browser"


@pytest.fixture
def guarded_server(demo_home):
    port = free_port()
    env = {**os.environ, "PEDSENSE_HOME": str(demo_home), "PEDSENSE_PASSWORD": PASSWORD}
    command = [sys.executable, "-m", "streamlit", "run", "app.py", "--server.port", str(port),
               "--server.headless", "true", "--server.address", "localhost",
               "--browser.gatherUsageStats", "false"]
    process = subprocess.Popen(command, cwd=REPO, env=env, stdout=subprocess.DEVNULL,
                               stderr=subprocess.DEVNULL)
    url = f"http://localhost:{port}"
    try:
        wait_healthy(url, process)
        yield url
    finally:
        process.terminate()
        try:
            process.wait(15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(5)


def test_a_deep_link_first_meets_the_sign_in(guarded_server):
    executable = chromium_path()
    from playwright.sync_api import expect, sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=executable, args=CHROMIUM_ARGS, headless=True)
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 900})
            page.goto(f"{guarded_server}/runs", wait_until="domcontentloaded")
            password = page.get_by_label("Password", exact=True)
            expect(password).to_be_visible(timeout=90_000)
            expect(page.get_by_role("heading", name="Runs", exact=True)).to_have_count(0)
            expect(page.locator('[data-testid="stSidebar"]')).to_have_count(0)
            password.fill("not it")
            page.get_by_role("button", name="Sign in").click()
            expect(page.get_by_text("Wrong password")).to_be_visible(timeout=30_000)
            page.get_by_label("Password", exact=True).fill(PASSWORD)
            page.get_by_role("button", name="Sign in").click()
            expect(page.get_by_role("heading", name="Runs", exact=True)).to_be_visible(timeout=90_000)
            expect(page.locator('[data-testid="stSidebar"]')).to_contain_text("Data home", timeout=60_000)
        finally:
            browser.close()
