"""The dashboard in a real headless Chromium: Overview and Runs render titles and sidebar.

Uses Debian's ``chromium`` (``.ci/run`` installs it); never downloads Playwright's browser.
Skipped only when chromium is absent and ``$CI`` is unset; in CI a missing browser fails.
"""

from __future__ import annotations

import os
import re
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

import pytest

from pedsense.runfolder import RunFolder

REPO = Path(__file__).resolve().parent.parent
# No UI wait shorter than a slow, busy machine needs (load 10 on 2 cores): every wait polls
# up to a minute and returns as soon as the page is there.
UI_WAIT_MS = 60_000
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"]

pytestmark = pytest.mark.browser


def chromium_path() -> str:
    found = shutil.which("chromium") or ("/usr/bin/chromium" if Path("/usr/bin/chromium").exists() else None)
    if found:
        return found
    if os.environ.get("CI"):
        pytest.fail("chromium is not installed; CI must install it (`apt-get install -y chromium`).")
    pytest.skip("chromium is not installed (apt-get install -y chromium); CI runs this test.")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("localhost", 0))
        return sock.getsockname()[1]


def wait_healthy(url: str, server: subprocess.Popen, timeout: float = 90.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise RuntimeError(f"streamlit exited with {server.returncode}")
        try:
            with urllib.request.urlopen(f"{url}/_stcore/health", timeout=2) as response:
                if response.read().strip() == b"ok":
                    return
        except OSError:
            time.sleep(0.5)
    raise TimeoutError(f"streamlit did not answer on {url} within {timeout:.0f} s")


@contextmanager
def serve_dashboard(home: Path, **env: str) -> Iterator[str]:
    """The real dashboard (``streamlit run app.py``) on ``home`` and a free port; yields its URL."""
    port = free_port()
    command = [sys.executable, "-m", "streamlit", "run", "app.py", "--server.port", str(port),
               "--server.headless", "true", "--server.address", "localhost",
               "--browser.gatherUsageStats", "false"]
    process = subprocess.Popen(command, cwd=REPO, env={**os.environ, "PEDSENSE_HOME": str(home), **env},
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
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


def finished_run(home: Path) -> str:
    """A completed ResNet-LSTM run folder as a training leaves it (config, metrics, status, log)."""
    folder = RunFolder.create("resnet-lstm", "browser-demo", home=home)
    folder.write_config({"model_type": "resnet-lstm", "parameters": {"epochs": 3, "batch_size": 8}})
    folder.set_status("running")
    for epoch, (loss, acc) in enumerate([(0.69, 0.55), (0.52, 0.71), (0.41, 0.78)], start=1):
        folder.append_metrics({"epoch": epoch, "train_loss": loss, "val_loss": loss + 0.05,
                               "train_acc": acc + 0.03, "val_acc": acc})
    folder.log("completed after 3 epochs")
    folder.set_status("completed")
    return folder.run_id


@pytest.fixture
def server(demo_home):
    finished_run(demo_home)
    with serve_dashboard(demo_home) as url:
        yield url


def test_overview_and_runs_render_in_chromium(server, tmp_path):
    executable = chromium_path()
    from playwright.sync_api import expect, sync_playwright

    expect.set_options(timeout=UI_WAIT_MS)  # each assertion polls up to it (Playwright: 5 s)

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=executable, args=CHROMIUM_ARGS,
                                             headless=True)
        try:
            page = browser.new_page(viewport={"width": 1440, "height": 1000})
            page.set_default_timeout(UI_WAIT_MS)
            page.goto(f"{server}/runs", wait_until="domcontentloaded")
            expect(page.get_by_role("heading", name="Runs", exact=True)).to_be_visible(timeout=60_000)
            # A deep link as the fresh server's first visit still goes through app.py's
            # navigation: our sidebar, not Streamlit's list of every file in pages/.
            sidebar = page.locator('[data-testid="stSidebar"]')
            expect(sidebar).to_contain_text("Data home", timeout=90_000)
            expect(sidebar).not_to_contain_text("evaluation panel")
            # The live view's heading (the table's text also sits in a hidden accessibility grid).
            expect(page.get_by_role("heading", name=re.compile("browser-demo"))).to_be_visible(
                timeout=90_000)
            expect(page.locator(".js-plotly-plot").first).to_be_visible(timeout=90_000)
            page.wait_for_timeout(1500)
            page.screenshot(path=str(tmp_path / "runs.png"), full_page=True)
            page.goto(server, wait_until="domcontentloaded")
            expect(page.get_by_role("heading", name="pedsense")).to_be_visible(timeout=90_000)
            expect(sidebar).to_contain_text("Data home", timeout=90_000)
            expect(sidebar).to_contain_text("Device")
            expect(page.get_by_text("Synthetic demo").first).to_be_visible()
            expect(page.get_by_text("Next step")).to_be_visible(timeout=90_000)
            expect(page.get_by_text("All runs")).to_be_visible(timeout=90_000)
            page.wait_for_timeout(1500)
            page.screenshot(path=str(tmp_path / "overview.png"), full_page=True)

        finally:
            browser.close()
    assert (tmp_path / "overview.png").stat().st_size > 10_000
    assert (tmp_path / "runs.png").stat().st_size > 10_000


# -- the Errors page plays one window ----------------------------------------------------------------
from test_app_errors import _trim_val, errors_home_base  # noqa: E402,F401
from test_infer_fixtures import infer_home_base  # noqa: E402,F401


@pytest.fixture
def errors_server(errors_home_base, tmp_path, copy_home):
    """The dashboard on a copy of a home whose ResNet-LSTM and hybrid runs are evaluated on val."""
    home = copy_home(errors_home_base, tmp_path / "home")
    with serve_dashboard(home) as url:
        yield url, home


@pytest.mark.slow
def test_errors_page_plays_a_window_in_chromium(errors_server, tmp_path):
    executable = chromium_path()
    from playwright.sync_api import expect, sync_playwright

    expect.set_options(timeout=UI_WAIT_MS)  # each assertion polls up to it (Playwright: 5 s)

    url, home = errors_server
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=executable, args=CHROMIUM_ARGS, headless=True)
        try:
            page = browser.new_page(viewport={"width": 1440, "height": 1200})
            page.set_default_timeout(UI_WAIT_MS)
            page.goto(f"{url}/errors", wait_until="domcontentloaded")
            expect(page.get_by_role("heading", name="Errors", exact=True)).to_be_visible(timeout=90_000)
            # the first run listed has a predictions table: its matrix is drawn as buttons
            expect(page.get_by_role("button", name=re.compile(r"^true negative: \d+$"))).to_be_visible(
                timeout=90_000)
            play = page.get_by_role("button", name=re.compile("Play window"))
            expect(play.first).to_be_visible(timeout=90_000)
            play.first.click()
            video = page.locator("video").first
            expect(video).to_be_visible(timeout=120_000)
            # the WebM decodes and plays in the browser: time moves on and it has a picture
            page.wait_for_function(
                "() => { const v = document.querySelector('video'); "
                "return v && v.readyState >= 2 && v.videoWidth > 0; }", timeout=60_000)
            played = page.evaluate(
                "async () => { const v = document.querySelector('video'); v.muted = true; "
                "await v.play(); await new Promise(r => setTimeout(r, 1500)); "
                "return {t: v.currentTime, w: v.videoWidth, h: v.videoHeight, err: v.error && v.error.code}; }")
            assert played["err"] is None and played["t"] > 0 and played["w"] >= 640, played
            page.screenshot(path=str(tmp_path / "errors.png"), full_page=True)
        finally:
            browser.close()
    assert list((home / "models").rglob("renders/errors/val/*.webm")), "the clip is kept in the run folder"
    assert (tmp_path / "errors.png").stat().st_size > 10_000


# -- two tabs follow a stop; nothing leaves localhost ----------------------------------------------
def test_stop_in_one_tab_shows_stopping_then_stopped_in_the_other(server, demo_home):
    """A run of another process (the test's manager, as the CLI or another dashboard would be)
    is stopped from the first tab: the second shows "Stopping…" then "stopped" by itself (the
    sidebar's watcher), and no request of either page leaves localhost."""
    from urllib.parse import urlparse

    from playwright.sync_api import expect, sync_playwright


    expect.set_options(timeout=UI_WAIT_MS)  # each assertion polls up to it (Playwright: 5 s)

    from pedsense.runs import RunManager
    from test_watch import RELEASE, _held_trainer

    executable = chromium_path()
    RELEASE.clear()
    other = RunManager(demo_home, trainers={"resnet-lstm": _held_trainer}, check_data=False)
    requests: list[str] = []
    try:
        run_id = other.submit("resnet-lstm", {"name": "held", "epochs": 2, "device": "cpu"})
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=executable, args=CHROMIUM_ARGS, headless=True)
            try:
                context = browser.new_context(viewport={"width": 1440, "height": 1000})
                context.set_default_timeout(UI_WAIT_MS)
                context.on("request", lambda request: requests.append(request.url))
                tabs = [context.new_page(), context.new_page()]
                for tab in tabs:
                    tab.goto(f"{server}/runs", wait_until="domcontentloaded")
                    expect(tab.get_by_role("heading", name=re.compile("held"))).to_be_visible(timeout=90_000)
                    expect(tab.get_by_role("button", name=re.compile("Stop$"))).to_be_visible(timeout=60_000)
                tabs[0].get_by_role("button", name=re.compile("Stop$")).click()
                stopping = tabs[1].get_by_role("button", name=re.compile("Stopping…"))
                expect(stopping).to_be_visible(timeout=60_000)
                expect(stopping).to_be_disabled()
                RELEASE.set()
                expect(tabs[1].get_by_text("Stopped on request")).to_be_visible(timeout=60_000)
                expect(tabs[1].get_by_role("button", name=re.compile("Resume"))).to_be_visible(timeout=60_000)
            finally:
                browser.close()
        assert other.wait(run_id, 60).status == "stopped"
    finally:
        RELEASE.set()
        other.shutdown()
    outside = [u for u in requests if urlparse(u).scheme not in ("data", "blob")
               and urlparse(u).hostname not in ("localhost", "127.0.0.1")]
    assert requests and not outside, outside


# -- a toast when a run started from the CLI ends ------------------------------------------------------
@pytest.mark.slow
def test_a_toast_names_a_cli_run_when_it_ends(tmp_home):
    """An open tab (on the Overview, not the Runs page) hears of a run the `pedsense` command
    trained: a toast naming it, how it ended, and a link to its view."""
    from playwright.sync_api import expect, sync_playwright

    from test_cli_train import TINY_ARGS
    from test_train_fixtures import write_resnet_sequences

    executable = chromium_path()
    write_resnet_sequences(tmp_home, {"train": 2, "val": 1}, frames=2)
    with serve_dashboard(tmp_home) as url, sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=executable, args=CHROMIUM_ARGS, headless=True)
        cli = None
        try:
            page = browser.new_page(viewport={"width": 1440, "height": 1000})
            page.goto(url, wait_until="domcontentloaded")
            expect(page.get_by_role("heading", name="pedsense")).to_be_visible(timeout=60_000)
            expect(page.locator('[data-testid="stSidebar"]')).to_contain_text("No run is training", timeout=60_000)
            cli = subprocess.Popen([sys.executable, "-m", "pedsense", "train", "resnet-lstm", "--epochs", "1",
                                    "--name", "from-cli", *TINY_ARGS], cwd=REPO,
                                   env={**os.environ, "PEDSENSE_HOME": str(tmp_home)},
                                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            toast = page.get_by_test_id("stToast").filter(has_text="from-cli")
            expect(toast).to_contain_text("completed", timeout=120_000)
            assert "runs?run=resnet-lstm%2Ffrom-cli_" in toast.get_by_role("link").get_attribute("href")
            assert cli.wait(60) == 0
        finally:
            browser.close()
            if cli is not None and cli.poll() is None:
                cli.kill()
                cli.wait(10)
