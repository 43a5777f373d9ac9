"""Watching is free: a run's speed with the Runs page open vs a blank page, and the idle cost.

Starts the real dashboard (``python -m streamlit run app.py`` on a free port, on a tiny data home
of its own: the demo set with ResNet-LSTM sequences) and Debian's Chromium through Playwright,
then prints, in one run:

- the training speed of the quick ResNet-LSTM preset while the browser shows the Runs page with
  that run selected ("watched") vs while it shows ``about:blank`` ("unwatched"), in pairs whose
  order alternates (drift in the load of a shared machine hits both sides alike); the median of
  the pairs' ratios (target >= 0.95). Every run is the same kind: queued on the data home by a
  ``RunManager`` of this script (the dashboard's manager class) and trained in a
  ``python -m pedsense.worker`` process; its speed is the samples (batches × batch size) over
  the time from its RunStarted to its RunFinished record in ``events.jsonl``, so the process
  start and the page load are not counted.
- the server process's CPU share (utime + stime of its own pid, not its children, over wall
  time) while the Runs page is open on a finished run, for ``--idle`` seconds (target < 2 % of
  one core); also its share and the browser's (Chromium on the same machine) during the watched
  runs, for information.

    .venv/bin/python bench/bench_watch.py                   # 3 pairs of 1-epoch runs, ~8 min on 2 busy cores
    .venv/bin/python bench/bench_watch.py --pairs 2 --idle 10      # quicker
    .venv/bin/python bench/bench_watch.py --browser-apart           # the browser on a core of its own

On one small machine the headless browser's own JavaScript competes with training for the same
cores, which a user's browser (on their own computer) does not. ``--browser-apart`` keeps it
apart: Chromium on the last core, this script, the server and every worker on the others, for
the watched and the unwatched runs alike, so the ratio measures what the server costs a run.
"""

from __future__ import annotations

import argparse
import os
import re
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "bench"))
os.environ.setdefault("PEDSENSE_OFFLINE", "1")
os.environ.setdefault("YOLO_OFFLINE", "1")

from bench_dashboard import make_home  # noqa: E402
from pedsense.runfolder import RunFolder  # noqa: E402
from pedsense.runs import RunManager  # noqa: E402
from pedsense.train.events import read_records  # noqa: E402
from pedsense.train.presets import preset_params  # noqa: E402

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"]
TICKS = os.sysconf("SC_CLK_TCK")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("localhost", 0))
        return sock.getsockname()[1]


def cpu_seconds(pid: int) -> float:
    """utime + stime of ``pid`` itself (not its children), from /proc/<pid>/stat."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICKS


def browser_cpu_seconds(exclude: int) -> float:
    """utime + stime of this script's Chromium processes (its descendants, the server excluded)."""
    parents = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                parents[int(entry.name)] = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, ValueError, IndexError):
                pass
    me, total = os.getpid(), 0.0
    for pid in parents:
        ancestor, depth = pid, 0
        while ancestor in parents and ancestor != me and depth < 32:
            ancestor, depth = parents[ancestor], depth + 1
        if ancestor == me and pid != exclude:
            try:
                if b"chromium" in Path(f"/proc/{pid}/cmdline").read_bytes():
                    total += cpu_seconds(pid)
            except (OSError, ValueError, IndexError):
                pass
    return total


def start_server(home: Path) -> tuple[subprocess.Popen, str]:
    port = free_port()
    env = {**os.environ, "PEDSENSE_HOME": str(home)}
    command = [sys.executable, "-m", "streamlit", "run", "app.py", "--server.port", str(port),
               "--server.headless", "true", "--server.address", "localhost",
               "--browser.gatherUsageStats", "false", "--server.fileWatcherType", "none"]
    server = subprocess.Popen(command, cwd=REPO, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://localhost:{port}"
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise SystemExit(f"streamlit exited with {server.returncode}")
        try:
            with urllib.request.urlopen(f"{url}/_stcore/health", timeout=2) as response:
                if response.read().strip() == b"ok":
                    return server, url
        except OSError:
            time.sleep(0.5)
    server.kill()
    raise SystemExit("streamlit did not answer within 90 s")


def train_speed(run_dir: Path, batch_size: int) -> tuple[float, float]:
    """(samples/s, training seconds) of a finished run, from its events.jsonl."""
    records, _ = read_records(RunFolder(run_dir).events_path)
    started = next(r["t"] for r in records if r["type"] == "RunStarted")
    finished = next(r["t"] for r in records if r["type"] == "RunFinished")
    batches = sum(r["total_batches"] for r in records
                  if r["type"] == "BatchEnd" and r["batch"] == r["total_batches"])
    seconds = finished - started
    return batches * batch_size / seconds, seconds


def one_run(manager: RunManager, page, url: str, server_pid: int, watched: bool, name: str,
            params: dict) -> tuple[float, float, float | None, float | None]:
    """Train one run with the page watching it (or blank); (samples/s, seconds, server CPU share,
    browser CPU share) — the shares while watched only."""
    run_id = manager.submit("resnet-lstm", {"name": name, **params})
    shown = browser = None
    if watched:
        # a fresh visit: the newest run (this one) is the one the page selects
        page.goto(f"{url}/runs", wait_until="domcontentloaded")
        page.get_by_role("heading", name=re.compile(re.escape(name))).wait_for(timeout=90_000)
        cpu0, chrome0, wall0 = cpu_seconds(server_pid), browser_cpu_seconds(server_pid), time.monotonic()
    else:
        page.goto("about:blank")
    summary = manager.wait(run_id, 3600)
    if watched:
        wall = time.monotonic() - wall0
        shown = (cpu_seconds(server_pid) - cpu0) / wall
        browser = (browser_cpu_seconds(server_pid) - chrome0) / wall
    if summary.status != "completed":
        raise SystemExit(f"{run_id} ended {summary.status}: {summary.error}")
    speed, seconds = train_speed(summary.path, params["batch_size"])
    return speed, seconds, shown, browser


def idle_share(page, url: str, server_pid: int, seconds: float) -> float:
    """The server's CPU share with the Runs page open on a finished run (the newest)."""
    page.goto(f"{url}/runs", wait_until="domcontentloaded")
    page.locator(".js-plotly-plot").first.wait_for(timeout=90_000)
    page.wait_for_timeout(5_000)  # let the first draw settle
    cpu0, wall0 = cpu_seconds(server_pid), time.monotonic()
    page.wait_for_timeout(seconds * 1000)
    return (cpu_seconds(server_pid) - cpu0) / (time.monotonic() - wall0)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pairs", type=int, default=3, help="watched/unwatched pairs (default 3)")
    parser.add_argument("--epochs", type=int, default=1, help="epochs per run (default 1)")
    parser.add_argument("--videos", type=int, default=3, help="demo clips (default 3)")
    parser.add_argument("--frames", type=int, default=120, help="frames per demo clip (default 120)")
    parser.add_argument("--idle", type=float, default=20.0, help="seconds of the idle measurement")
    parser.add_argument("--browser-apart", action="store_true",
                        help="Chromium on the last core, the server and the runs on the others")
    args = parser.parse_args()
    chromium = CHROMIUM
    cores = sorted(os.sched_getaffinity(0))
    if args.browser_apart:
        if len(cores) < 2:
            raise SystemExit("--browser-apart needs at least two cores")
        os.sched_setaffinity(0, cores[:-1])  # inherited by the server and the workers
        wrapper = Path(tempfile.mkdtemp()) / "chromium"
        wrapper.write_text(f'#!/bin/sh\nexec taskset -c {cores[-1]} {CHROMIUM} "$@"\n')
        wrapper.chmod(0o755)
        chromium = str(wrapper)
    from playwright.sync_api import sync_playwright

    params = {**preset_params("resnet-lstm", "quick"), "epochs": args.epochs, "num_workers": 0, "device": "cpu"}
    with tempfile.TemporaryDirectory() as tmp:
        home = make_home(Path(tmp), args.videos, args.frames)
        os.environ["PEDSENSE_HOME"] = str(home)
        server, url = start_server(home)
        manager = RunManager(home)
        sides: dict[str, list] = {"watched": [], "unwatched": []}
        try:
            with sync_playwright() as playwright:
                browser = playwright.chromium.launch(executable_path=chromium, args=CHROMIUM_ARGS, headless=True)
                page = browser.new_page(viewport={"width": 1440, "height": 1000})
                one_run(manager, page, url, server.pid, False, "warmup", {**params, "epochs": 1})
                for pair in range(args.pairs):
                    order = ("watched", "unwatched") if pair % 2 == 0 else ("unwatched", "watched")
                    for side in order:
                        sides[side].append(one_run(manager, page, url, server.pid, side == "watched",
                                                   f"{side}-{pair}", params))
                idle = idle_share(page, url, server.pid, args.idle)
                browser.close()
        finally:
            manager.shutdown()
            server.terminate()
            server.wait(15)
    ratios = [w[0] / u[0] for w, u in zip(sides["watched"], sides["unwatched"])]
    print(f"quick ResNet-LSTM preset, {args.epochs} epochs, {args.videos} demo clips of {args.frames} frames, "
          f"{os.cpu_count()} cores shared, load average {os.getloadavg()[0]:.1f} at the end"
          + (f"; Chromium on core {cores[-1]}, server and runs on {cores[:-1]}" if args.browser_apart else
             "; Chromium on the same cores as the runs"))
    for side, runs in sides.items():
        print(f"{side:9}: {[round(r[0], 1) for r in runs]} samples/s; training {[round(r[1], 1) for r in runs]} s")
    print(f"while watching a live run: server CPU median {statistics.median(r[2] for r in sides['watched']):.1%} "
          f"of a core, the browser's (headless Chromium, same machine) "
          f"{statistics.median(r[3] for r in sides['watched']):.1%}")
    print(f"speed watched/unwatched: {statistics.median(ratios):.3f} median of {len(ratios)} pairs "
          f"{[round(r, 3) for r in ratios]} (target >= 0.95)")
    print(f"server CPU with the Runs page open on a finished run: {idle:.1%} of a core over "
          f"{args.idle:.0f} s (target < 2 %)")


if __name__ == "__main__":
    main()
