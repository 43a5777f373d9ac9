"""`pedsense serve` (the dashboard with its scheduler) and `pedsense worker-pool` (the scheduler alone).

A run queued while no page is open (``pedsense train --queue``, a queue left across a restart)
starts as soon as a slot is free: the scheduler runs in the process that serves the dashboard
(``pedsense serve``, what ``make run`` starts) or on its own (``pedsense worker-pool``, for a
headless machine), never in a browser session. One pool serves a data home; the workers it
starts keep training when it stops.
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add ``serve`` and ``worker-pool`` to the `pedsense` parser."""
    serve = subparsers.add_parser("serve", help="serve the dashboard and start queued runs (no page needs to be open)")
    serve.add_argument("--host", default="localhost", help="address to serve on (default localhost)")
    serve.add_argument("--port", type=int, default=8501, help="port (default 8501)")
    serve.set_defaults(func=cmd_serve)

    pool = subparsers.add_parser("worker-pool", help="start queued runs as workers, with no dashboard (Ctrl-C ends it; "
                                                     "the runs keep training)")
    pool.add_argument("--until-empty", action="store_true",
                      help="return once nothing is queued or running (drain the queue, then exit)")
    pool.set_defaults(func=cmd_worker_pool)


def _say(line: str) -> None:
    print(line, file=sys.stderr, flush=True)


def _terminate_as_interrupt() -> None:
    """SIGTERM ends this process like Ctrl-C (so the dashboard it started is ended too)."""
    def interrupt(signum, frame):
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, interrupt)


def cmd_worker_pool(args: argparse.Namespace) -> int:
    from pedsense.config import paths
    from pedsense.supervisor import serve_queue

    home = paths().home
    _say(f"worker pool {os.getpid()} serving the queue of {home}" + (" until it is empty" if args.until_empty else ""))
    _terminate_as_interrupt()
    try:
        other = serve_queue(home, until_empty=args.until_empty, say=_say)
    except KeyboardInterrupt:
        _say("worker pool stopped; the runs it started keep training (`pedsense runs` lists them).")
        return 0
    if other is not None:
        _say(f"the queue of {home} is already served by worker pool {other}; nothing to do here.")
    return 0


def cmd_serve(args: argparse.Namespace) -> int:
    from pedsense.config import REPO_ROOT, paths
    from pedsense.supervisor import serve_queue

    home = paths().home
    command = [sys.executable, "-m", "streamlit", "run", str(REPO_ROOT / "app.py"), "--server.address",
               args.host, "--server.port", str(args.port)]
    _terminate_as_interrupt()
    server = subprocess.Popen(command, cwd=REPO_ROOT, env={**os.environ, "PEDSENSE_HOME": str(home)})
    try:
        other = serve_queue(home, should_stop=lambda: server.poll() is not None, say=_say)
        if other is not None:
            _say(f"the queue of {home} is already served by worker pool {other}; serving the dashboard only.")
            server.wait()
    except KeyboardInterrupt:
        pass
    finally:
        if server.poll() is None:
            server.terminate()
            try:
                server.wait(15)
            except subprocess.TimeoutExpired:
                server.kill()
                server.wait()
    return 0 if server.returncode in (0, -signal.SIGTERM, None) else int(server.returncode)
