"""Is a process still the one that started a run? (Linux ``/proc``; elsewhere the pid alone.)"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any


def process_start_token(pid: int) -> str | None:
    """When process ``pid`` started (``/proc/<pid>/stat`` field 22), so a reused pid is not
    mistaken for it; None where ``/proc`` is not available."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    # Field 22 (starttime) counted after the ")" that closes the command name.
    return stat.rsplit(")", 1)[1].split()[19]


def process_alive(pid: Any, start_token: str | None = None) -> bool:
    """True when process ``pid`` exists (and, when known, is the same process that started)."""
    try:
        pid = int(pid)
        os.kill(pid, 0)
    except (TypeError, ValueError, ProcessLookupError):
        return False
    except PermissionError:
        return True
    except OSError:
        return False
    return start_token is None or process_start_token(pid) in (None, start_token)
