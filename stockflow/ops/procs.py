"""Small process helpers of the local operation (Linux first; no-ops elsewhere where they can be)."""

from __future__ import annotations

import os
from pathlib import Path


def die_with_parent(sig: int) -> None:
    """In the child, before exec: ask Linux to send ``sig`` when the parent dies, so that a killed
    `stockflow up` (kill -9, a crashed test) does not leave a server holding its port. No-op elsewhere."""
    try:
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        pr_set_pdeathsig = 1
        libc.prctl(pr_set_pdeathsig, sig)
    except (OSError, AttributeError):  # not Linux
        pass


def tail(path: Path, lines: int = 25) -> str:
    """The last ``lines`` lines of a log file ("" when unreadable)."""
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return ""


def group_alive(pgid: int) -> bool:
    """True while any process of the process group ``pgid`` exists."""
    try:
        os.killpg(pgid, 0)
    except (ProcessLookupError, PermissionError):
        return False
    return True
