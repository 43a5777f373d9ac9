"""Whether pretrained weights can be downloaded now: asked once by every trainer (and the
training pages' offline badge) before it falls back to an architecture from scratch.

A module of its own, below ``common`` and the model definitions, because both ask.
"""

from __future__ import annotations

import concurrent.futures
import os
import socket

_TRUE = ("1", "true", "yes", "on")


def offline_reason(host: str = "download.pytorch.org", timeout_s: float = 3.0) -> str | None:
    """Why weights cannot be downloaded now, or None when the network looks reachable.

    ``PEDSENSE_OFFLINE=1`` (or ``YOLO_OFFLINE=1``) says so without touching the network; else
    a DNS lookup with a timeout, so an unplugged machine falls back in seconds, not minutes.
    """
    for variable in ("PEDSENSE_OFFLINE", "YOLO_OFFLINE"):
        if os.environ.get(variable, "").strip().lower() in _TRUE:
            return f"{variable}=1"
    pool = concurrent.futures.ThreadPoolExecutor(max_workers=1)
    try:
        pool.submit(socket.getaddrinfo, host, 443).result(timeout=timeout_s)
        return None
    except concurrent.futures.TimeoutError:
        return f"DNS lookup of {host} timed out"
    except OSError as exc:
        return f"no network ({exc.strerror or exc})"
    finally:
        pool.shutdown(wait=False)
