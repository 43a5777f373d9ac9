"""Screenshots of the real dashboard for the documentation: ``make docs-shots``.

    .venv/bin/python docs/shots.py [--home /tmp/pedsense-shots] [--out docs/img]

On a scratch data home (never yours: ``--home``, default a folder under the temporary
directory) it writes the synthetic demo set, builds its datasets under the JAAD benchmark's
``intent`` protocol, starts a ResNet-LSTM run in a worker process (so that the Runs page has a
live chart), trains a second, short one beside it and evaluates that on ``test``. It serves the real
dashboard (``streamlit run app.py``, through ``bench/bench_watch.start_server``) and drives it in
headless Chromium through Playwright, saving one PNG per page, 1280 pixels wide, reduced to a
256-colour palette so that each stays small. Rerun it after a UI change and commit the PNGs.
Everything runs offline (weights from scratch); a rerun on the same home reuses the data and the
evaluated run. Ten minutes or more on 2 busy CPU cores.
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "bench"))
os.environ.setdefault("PEDSENSE_OFFLINE", "1")
os.environ.setdefault("YOLO_OFFLINE", "1")

from bench_watch import CHROMIUM, CHROMIUM_ARGS, start_server  # noqa: E402
from pedsense.runfolder import list_runs  # noqa: E402

WIDTH, HEIGHT = 1280, 860
# The quick preset's model (ResNet-18 on 32-px crops) from scratch, on the benchmark's windows.
TRAIN = ("train", "resnet-lstm", "--preset", "quick", "--task", "intent", "--no-pretrained")
WAIT_MS = 120_000  # a slow, busy machine
LIVE = ("queued", "running")
MAX_BYTES = 150_000  # per PNG: the repository carries them
# True once Streamlit is idle: no running icon in its status widget, no spinner turning, no element
# drawn stale (faded, about to be replaced).
IDLE_JS = ("!document.querySelector('[data-testid^=\"stStatusWidgetRunning\"], "
           "[data-testid=\"stStatusWidgetNewYearsIcon\"], [data-testid=\"stSpinner\"], "
           "[data-stale=\"true\"]')")


def pedsense(home: Path, *args: str) -> str:
    """``pedsense --home HOME ARGS``; its stdout (stops the script when the command fails)."""
    print("$ pedsense", " ".join(args), flush=True)
    done = subprocess.run([sys.executable, "-m", "pedsense", "--home", str(home), *args], cwd=REPO,
                          capture_output=True, text=True, env={**os.environ, "PYTHONPATH": str(REPO)})
    if done.returncode:
        raise SystemExit(f"pedsense {' '.join(args)} failed:\n{done.stdout}\n{done.stderr}")
    return done.stdout


def run_named(home: Path, prefix: str, statuses: tuple[str, ...]):
    """The newest resnet-lstm run folder whose name starts with ``prefix``, in one of ``statuses``."""
    for folder in list_runs(home, ("resnet-lstm",)):
        if folder.path.name.startswith(prefix) and folder.status in statuses:
            return folder
    return None


def prepare(home: Path) -> None:
    """The demo set and its intent datasets; two runs may train at once (the live one beside)."""
    pedsense(home, "demo-data", "--if-missing")
    pedsense(home, "preprocess", "all", "--task", "intent")
    pedsense(home, "runs", "--max-parallel", "2")


def evaluated_run(home: Path) -> str:
    """A completed run evaluated on ``test``; returns its id."""
    running = run_named(home, "demo_", LIVE)
    if running:  # an earlier try of this script left it training
        wait_for(running, lambda: running.status not in LIVE)
    if run_named(home, "demo_", ("completed",)) is None:
        pedsense(home, *TRAIN, "--epochs", "2", "--name", "demo")
    run_id = run_named(home, "demo_", ("completed",)).run_id
    pedsense(home, "evaluate", run_id, "--split", "test")
    return run_id


def live_run(home: Path) -> str:
    """A run training in a worker process: one an earlier try left running or stopped (resumed),
    else a new one."""
    folder = run_named(home, "live_", LIVE)
    if folder is not None:
        return folder.run_id
    folder = run_named(home, "live_", ("stopped",))
    if folder is not None:
        pedsense(home, "resume", folder.run_id, "--detach")
        return folder.run_id
    return pedsense(home, *TRAIN, "--epochs", "12", "--name", "live", "--detach").split()[0]


def wait_for(folder, done, timeout: float = 1800) -> None:
    """Until ``done()``; a run that ended early, or the timeout, stops the script."""
    deadline = time.monotonic() + timeout
    while not done():
        if time.monotonic() > deadline:
            raise SystemExit(f"{folder.run_id} is still {folder.status} after {timeout:.0f} s")
        time.sleep(2)


def wait_for_epochs(home: Path, run_id: str, epochs: int) -> None:
    """Until the live run has ``epochs`` rows in metrics.csv (so its charts have lines)."""
    folder = next(f for f in list_runs(home, ("resnet-lstm",)) if f.run_id == run_id)

    def done() -> bool:
        if folder.status not in LIVE:
            raise SystemExit(f"{run_id} is {folder.status} with {len(folder.read_metrics())} epochs")
        return len(folder.read_metrics()) >= epochs

    wait_for(folder, done)


def save(page, out: Path, name: str) -> None:
    """A full-width PNG of the page, palette-quantised (Pillow) to keep it small."""
    from PIL import Image

    page.wait_for_timeout(1500)  # let charts finish their transition
    path = out / f"{name}.png"
    page.screenshot(path=str(path))
    image = Image.open(path).convert("RGB")
    for colors in (256, 128, 64):  # a video frame needs fewer colours to stay under MAX_BYTES
        image.quantize(colors=colors, method=Image.Quantize.MEDIANCUT).save(path, optimize=True)
        if path.stat().st_size <= MAX_BYTES:
            break
    print(f"wrote {path.relative_to(REPO) if path.is_relative_to(REPO) else path} "
          f"({path.stat().st_size // 1024} KB)", flush=True)


def open_page(page, url: str, heading: str) -> None:
    """Go to ``url`` and wait for its title (a regular expression) and the script run's end."""
    from playwright.sync_api import expect

    page.goto(url, wait_until="domcontentloaded")
    expect(page.get_by_role("heading", name=re.compile(heading)).first).to_be_visible(timeout=WAIT_MS)
    idle(page)


def idle(page) -> None:
    """Until the script run finished: no running icon, spinner or stale element."""
    page.wait_for_timeout(500)
    page.wait_for_function(IDLE_JS, timeout=WAIT_MS)
    page.wait_for_timeout(500)


def choose(page, label: str, option: str) -> None:
    """Pick ``option`` (a substring of its text) in the selectbox labelled ``label``."""
    box = page.locator('[data-testid="stSelectbox"]').filter(has_text=label).first
    box.locator("input").first.click()
    page.get_by_role("option").filter(has_text=option).first.click()
    page.evaluate("document.activeElement && document.activeElement.blur()")  # no focus ring
    idle(page)


def shoot(url: str, out: Path, evaluated: str, live: str, home: Path) -> None:
    from playwright.sync_api import expect, sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        try:
            page = browser.new_page(viewport={"width": WIDTH, "height": HEIGHT})
            open_page(page, f"{url}/", "^pedsense$")
            save(page, out, "overview")
            open_page(page, f"{url}/data", "Data")
            save(page, out, "data")
            open_page(page, f"{url}/train_resnet_lstm", "^Train ResNet")
            save(page, out, "train-resnet-lstm")
            open_page(page, f"{url}/sweep", "Sweeps")
            save(page, out, "sweep")
            open_page(page, f"{url}/leaderboard", "Leaderboard")
            save(page, out, "leaderboard")

            wait_for_epochs(home, live, 2)
            page.set_viewport_size({"width": WIDTH, "height": 1240})  # the live view's charts too
            open_page(page, f"{url}/runs", "Runs")
            choose(page, "Run", live)
            expect(page.locator(".js-plotly-plot").first).to_be_visible(timeout=WAIT_MS)
            page.wait_for_timeout(4000)  # two chart refreshes
            save(page, out, "runs")
            choose(page, "Run", evaluated)
            tab = page.get_by_role("tab", name="Evaluation")
            tab.click()
            idle(page)
            choose(page, "Split", "test")  # the split it was evaluated on: the benchmark view
            expect(page.get_by_text("comparable").first).to_be_visible(timeout=WAIT_MS)
            tab.evaluate("element => element.scrollIntoView({block: 'start'})")
            save(page, out, "runs-evaluation")
            page.set_viewport_size({"width": WIDTH, "height": HEIGHT})

            open_page(page, f"{url}/viewer", "Viewer")
            frame = page.locator('[data-testid="stSlider"]').filter(has_text="Frame").first
            expect(frame).to_be_visible(timeout=WAIT_MS)
            box = frame.bounding_box()  # a click on the track a fifth along: past the LSTM's buffering
            page.mouse.click(box["x"] + box["width"] * 0.2, box["y"] + box["height"] * 0.75)
            idle(page)
            expect(page.locator('[data-testid="stImage"] img').first).to_be_visible(timeout=WAIT_MS)
            idle(page)
            frame.evaluate("element => element.scrollIntoView({block: 'start'})")  # slider and frame
            save(page, out, "viewer")
            open_page(page, f"{url}/errors", "Errors")
            save(page, out, "errors")
        finally:
            browser.close()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--home", type=Path, default=Path(tempfile.gettempdir()) / "pedsense-shots",
                        help="scratch data home (default: %(default)s)")
    parser.add_argument("--out", type=Path, default=REPO / "docs" / "img", help="where the PNGs go")
    args = parser.parse_args(argv)
    home, out = args.home.resolve(), args.out.resolve()
    home.mkdir(parents=True, exist_ok=True)
    out.mkdir(parents=True, exist_ok=True)
    prepare(home)
    live = live_run(home)
    evaluated = evaluated_run(home)
    server, url = start_server(home)
    try:
        shoot(url, out, evaluated, live, home)
    finally:
        pedsense(home, "stop", live)
        server.terminate()
        server.wait(15)
    return 0


if __name__ == "__main__":
    sys.exit(main())
