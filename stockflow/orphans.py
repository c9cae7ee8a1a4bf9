"""Nothing outlives the command that started it: the temporary Prefect server, and how to tell whether
the process that owns a run is still alive.

- :func:`guard_ephemeral_server`: the temporary Prefect API server that Prefect starts for a command
  without ``PREFECT_API_URL`` is launched through :func:`main` of this module, which watches its parent
  and stops the server when the parent is gone. Prefect stops it at exit; this covers what ``atexit``
  cannot (kill -9, an OOM kill). ``stockflow up`` uses a parent-death signal for its own children.
- :func:`owner_stamp` / :func:`owner_alive`: who runs a run (host, boot, pid, process start), stored with
  the run, so that the next start can tell a crashed run from one that is still working.

Run as ``python -m stockflow.orphans PARENT_PID MODULE ARGS...``.
"""

from __future__ import annotations

import importlib.abc
import importlib.machinery
import importlib.util
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Sequence
from functools import lru_cache
from types import ModuleType
from typing import Any

_TARGET = "prefect.server.api.server"
_POLL_S = 0.5


def _guarded_args(args: Sequence[str]) -> list[str]:
    """``[python, -m, uvicorn, ...]`` -> ``[python, -m, stockflow.orphans, PID, uvicorn, ...]``."""
    args = list(args)
    if len(args) >= 3 and args[1] == "-m" and args[2] != __name__:
        return [args[0], "-m", __name__, str(os.getpid()), *args[2:]]
    return args


class _SubprocessShim:
    """The ``subprocess`` module as Prefect's server module sees it: ``Popen`` starts the guard."""

    def __getattr__(self, name: str) -> Any:
        return getattr(subprocess, name)

    @staticmethod
    def Popen(args: Any, *a: Any, **kw: Any) -> subprocess.Popen[Any]:  # noqa: N802 (mirrors subprocess)
        return subprocess.Popen(_guarded_args(args), *a, **kw)


def _patch(module: ModuleType) -> None:
    module.subprocess = _SubprocessShim()  # type: ignore[attr-defined]


class _PatchOnImport(importlib.abc.MetaPathFinder):
    """Patch Prefect's server module when (and only if) it is imported: ``--help`` stays instant."""

    def find_spec(
        self, fullname: str, path: Any, target: Any = None
    ) -> importlib.machinery.ModuleSpec | None:
        if fullname != _TARGET:
            return None
        sys.meta_path.remove(self)
        spec = importlib.util.find_spec(fullname)
        if spec is None or spec.loader is None:
            return spec
        loader: Any = spec.loader
        original = loader.exec_module

        def exec_module(module: ModuleType) -> None:
            original(module)
            _patch(module)

        loader.exec_module = exec_module
        return spec


def guard_ephemeral_server() -> None:
    """Make the temporary Prefect server of this process stop when this process dies (idempotent)."""
    if _TARGET in sys.modules:
        _patch(sys.modules[_TARGET])
        return
    if not any(isinstance(f, _PatchOnImport) for f in sys.meta_path):
        sys.meta_path.insert(0, _PatchOnImport())


def _watch_parent(parent: int) -> None:
    while True:
        time.sleep(_POLL_S)
        if os.getppid() != parent:
            os.kill(os.getpid(), signal.SIGTERM)  # uvicorn shuts down cleanly on SIGTERM
            time.sleep(10)
            os._exit(1)


def main(argv: Sequence[str]) -> None:
    """Run module ``argv[1]`` with ``argv[2:]`` as its arguments while parent ``argv[0]`` lives."""
    import runpy

    parent, module, rest = int(argv[0]), argv[1], list(argv[2:])
    if os.getppid() != parent:
        sys.exit(1)
    threading.Thread(target=_watch_parent, args=(parent,), name="parent-watch", daemon=True).start()
    sys.argv = [module, *rest]
    runpy.run_module(module, run_name="__main__", alter_sys=True)


@lru_cache(maxsize=1)
def _boot_id() -> str:
    try:
        with open("/proc/sys/kernel/random/boot_id") as f:
            return f.read().strip()
    except OSError:
        return ""


def _start_ticks(pid: int) -> str | None:
    """The process's start time (clock ticks after boot) from /proc; None when it does not exist."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            stat = f.read()
    except OSError:
        return None
    fields = stat.rsplit(")", 1)[1].split()
    if fields[0] in ("Z", "X"):  # killed, not yet reaped by its parent: dead all the same
        return None
    return fields[19]


def owner_stamp() -> dict[str, Any]:
    """Who runs this: host, boot id, pid and the pid's start time (tells a reused pid apart)."""
    pid = os.getpid()
    return {"host": socket.gethostname(), "boot": _boot_id(), "pid": pid, "start": _start_ticks(pid)}


def owner_alive(stamp: dict[str, Any] | None) -> bool | None:
    """True/False when ``stamp``'s process is alive/dead; None when it cannot be told (another host, no
    stamp, no /proc)."""
    if not stamp or stamp.get("host") != socket.gethostname():
        return None
    if stamp.get("boot") and _boot_id() and stamp["boot"] != _boot_id():
        return False  # the machine rebooted since
    pid = stamp.get("pid")
    if not isinstance(pid, int):
        return None
    if not os.path.isdir("/proc"):
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return False
        except PermissionError:
            return True
        return True
    start = _start_ticks(pid)
    if start is None:
        return False
    return stamp.get("start") in (None, start)


if __name__ == "__main__":
    main(sys.argv[1:])
