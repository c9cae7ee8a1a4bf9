"""The local operation behind ``stockflow up``: Prefect server + UI, served deployments, reports server.

:class:`LocalOperation` starts, in order and each only once the previous one is usable:

1. ``prefect server start`` on ``host:prefect_port`` (UI and API; SQLite under ``PREFECT_HOME`` unless
   ``PREFECT_API_DATABASE_CONNECTION_URL`` points at PostgreSQL), waiting until ``/api/health`` answers
   and the UI's page loads;
2. the reports HTTP server for ``reports_dir`` (a thread of this process);
3. ``python -m deployments.serve``, which registers the deployments with their schedules (an upsert:
   starting again does not duplicate them) and runs their flow runs, waiting until the API lists each
   served deployment active and polled since this start (never by reading a log);
4. the notification automations, when settings ask for them (:mod:`stockflow.ops.notify`).

Children run in their own process groups; a Ctrl-C reaches only this process, which stops them in
reverse order (serve first, while the API is up) and kills what does not stop in time. Telemetry is off
in every child. Steps are reported as they happen (``on_step``) and timed in ``LocalOperation.timings``.
HTTP helpers live in :mod:`stockflow.ops.api`, the configuration in :mod:`stockflow.ops.opconfig`
(both re-exported here).
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

from stockflow.config import Settings
from stockflow.ops.api import (
    api_timestamp,
    free_port,
    http_get,
    http_post_json,
    port_is_free,
    read_deployments,
    settle_runs,
)
from stockflow.ops.opconfig import (
    READY_FILE,
    STATE_FILE,
    OperationConfig,
    OperationError,
    child_env,
    database_description,
    read_ready_file,
    read_state,
)
from stockflow.ops.procs import die_with_parent, group_alive, tail
from stockflow.ops.reports import ReportsServer
from stockflow.ops.security import CLIENT_AUTH_ENV, SERVER_AUTH_ENV, check_bind, is_loopback


@dataclass
class _Child:
    name: str
    proc: subprocess.Popen[bytes]
    log: Path


class LocalOperation:
    """Start and stop the local operation (see the module docstring). Use as a context manager."""

    def __init__(
        self,
        config: OperationConfig,
        settings: Settings | None = None,
        *,
        on_step: Callable[[str], None] | None = None,
    ) -> None:
        self.config = config
        self.settings = settings
        self.env = child_env(config, settings)
        self.auth = self.env.get(CLIENT_AUTH_ENV) or None
        self.timings: dict[str, float] = {}
        self.missing_deployments: list[str] = []
        self.reports: ReportsServer | None = None
        self._children: list[_Child] = []
        self._t0 = 0.0
        self._wall_t0 = 0.0
        self._ready_file = config.prefect_home / READY_FILE
        self._on_step = on_step

    def _step(self, message: str) -> None:
        """Report one start-up step as it happens (``stockflow up`` prints them)."""
        if self._on_step is not None:
            self._on_step(f"{message} ({self._elapsed():.1f}s)")

    # ----------------------------------------------------------------------------------------- start
    def start(self) -> LocalOperation:
        """Start everything and wait until it is usable; on failure stop what was started and raise."""
        self._t0 = time.perf_counter()
        self._wall_t0 = time.time()
        cfg = self.config
        check_bind(cfg.host, self.env)
        for what, port in (("Prefect server", cfg.prefect_port), ("reports server", cfg.reports_port)):
            if not port_is_free(cfg.host if cfg.host not in ("", "::") else "0.0.0.0", port):
                raise OperationError(
                    f"port {port} for the {what} is already in use on {cfg.host}: is `stockflow up` already "
                    "running (`stockflow status`)? Otherwise choose another port "
                    "(--prefect-port/--reports-port or server.* settings)"
                )
        cfg.log_dir.mkdir(parents=True, exist_ok=True)
        try:
            self._start_server()
            self._step(f"Prefect server starting on {cfg.host}:{cfg.prefect_port}")
            # The serve process imports Prefect and the flows (seconds) while the server boots; it waits
            # for the API itself before it registers anything.
            self._start_serve()
            self._step("serve process starting (imports the flows, then registers the deployments)")
            self._wait_api()
            self.timings["api_healthy_s"] = self._elapsed()
            self._step(f"Prefect API healthy at {cfg.api_url}")
            self._wait_ui()
            self.timings["ui_served_s"] = self._elapsed()
            self._step(f"Prefect UI served at {cfg.ui_url}")
            self.reports = ReportsServer(
                cfg.reports_dir,
                cfg.host,
                cfg.reports_port,
                auth=None if is_loopback(cfg.host) else self.env.get(SERVER_AUTH_ENV),
                book=self._book_source(),
            ).start()
            self._step(f"reports server and book page at {cfg.reports_url}/")
            self._wait_deployments()
            self.timings["deployments_ready_s"] = self._elapsed()
            served = len(self.wanted_names()) - len(self.missing_deployments)
            self._step(f"{served} deployment(s) registered and polled by the serve process")
            self._setup_notifications()
            self._write_state()
        except BaseException:
            self.stop()
            raise
        return self

    def _setup_notifications(self) -> None:
        """The notification automations from settings (none when notifications are off)."""
        if self.settings is None:
            return
        from stockflow.ops.notify import setup_notifications

        cfg = self.settings.notifications
        if not cfg.webhook_url and not cfg.block:
            self._step("notifications off (set notifications.webhook_url or notifications.block)")
            return
        book = f"http://{self.config.link_host}:{self.config.reports_port}/"
        names = setup_notifications(self.settings, api_url=self.config.api_url, book_url=book)
        self.timings["notifications_ready_s"] = self._elapsed()
        self._step(f"notifications: {len(names)} Prefect automation(s) set up ({', '.join(names)})")

    def _book_source(self) -> Any:
        """What the reports server's book page reads (None without settings: no state store known)."""
        if self.settings is None:
            return None
        from stockflow.db import get_engine
        from stockflow.ops.book import collect_book

        settings, ui_url = self.settings, f"http://{self.config.link_host}:{self.config.prefect_port}"
        return lambda: collect_book(settings, get_engine(settings.db_url), ui_url=ui_url)

    def _elapsed(self) -> float:
        return round(time.perf_counter() - self._t0, 2)

    def _spawn(self, name: str, argv: Sequence[str]) -> _Child:
        log = self.config.log_dir / f"{name}.log"
        out = log.open("ab")
        try:
            proc = subprocess.Popen(
                list(argv),
                cwd=self.config.project_root,
                env=self.env,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                # Own process group: a terminal Ctrl-C reaches only `stockflow up`, which stops the
                # children in order; stopping a child ends the processes it started as well.
                start_new_session=True,
                # The server stops quickly on SIGTERM; the serve process would try to pause its
                # deployments on an API that is going away and hang, so it gets SIGKILL (its runs are
                # cancelled by the next start, --cancel-unfinished).
                preexec_fn=partial(die_with_parent, signal.SIGKILL if name == "serve" else signal.SIGTERM),  # noqa: PLW1509
            )
        finally:
            out.close()
        child = _Child(name, proc, log)
        self._children.append(child)
        return child

    def _start_server(self) -> None:
        cfg = self.config
        self._spawn(
            "server",
            [
                sys.executable,
                "-m",
                "prefect",
                "server",
                "start",
                "--host",
                cfg.host,
                "--port",
                str(cfg.prefect_port),
                "--analytics-off",
            ],
        )

    def _start_serve(self) -> None:
        # Only this start's ready file counts when waiting for the registration.
        self._ready_file.unlink(missing_ok=True)
        argv = [
            sys.executable,
            "-m",
            "deployments.serve",
            "--wait-api",
            str(self.config.startup_timeout_s),
            # Runs left unfinished by an operation that did not stop cleanly cannot continue: say so.
            "--cancel-unfinished",
            "--ready-file",
            str(self._ready_file),
        ]
        if self.config.catalog:
            argv += ["--catalog", self.config.catalog]
        if self.config.serve_limit:
            argv += ["--limit", str(self.config.serve_limit)]
        self._spawn("serve", argv)

    def _check_alive(self) -> None:
        for child in self._children:
            code = child.proc.poll()
            if code is not None:
                raise OperationError(
                    f"the {child.name} process exited with status {code}; last lines of {child.log}:\n"
                    f"{tail(child.log)}"
                )

    def _wait(self, what: str, ready: Any, poll_s: float = 0.25) -> None:
        deadline = time.perf_counter() + self.config.startup_timeout_s
        while time.perf_counter() < deadline:
            self._check_alive()
            if ready():
                return
            time.sleep(poll_s)
        logs = "\n".join(f"--- {c.log}:\n{tail(c.log, 10)}" for c in self._children)
        raise OperationError(
            f"timed out after {self.config.startup_timeout_s:.0f}s waiting for {what}\n{logs}"
        )

    def _wait_api(self) -> None:
        self._wait(
            "the Prefect API to be healthy",
            lambda: http_get(f"{self.config.api_url}/health", auth=self.auth)[0] == 200,
        )

    def _wait_ui(self) -> None:
        def ui_ready() -> bool:
            status, body = http_get(self.config.ui_url + "/", auth=self.auth)
            return status == 200 and b"<html" in body.lower()

        self._wait("the Prefect UI", ui_ready)

    def _wait_deployments(self) -> None:
        """Wait until the serve process said what it serves (its ready file, written by this start) and
        the API lists each of those deployments active and polled by a runner since this start.

        Nothing here reads the serve log: its size in bytes and its decoded text differ as soon as a flow
        logged non-ASCII text (a signal driver's ``σ``), which once made every later start time out."""
        wanted = set(self.wanted_names())
        since = self._wall_t0 - 2.0  # the server's clock is this machine's; a little slack

        def registered() -> bool:
            ready = read_ready_file(self._ready_file)
            if ready is None:
                return False
            left_out = set(ready.get("left_out") or [])
            expected = {n for n in wanted if n.split("/")[-1] not in left_out}
            polled = {
                d["full_name"]
                for d in read_deployments(self.config.api_url, auth=self.auth)
                if not d.get("paused") and api_timestamp(d.get("last_polled")) >= since
            }
            self.missing_deployments = sorted(wanted - polled)
            return expected <= polled

        self._wait("the deployments to register", registered, poll_s=0.5)

    # ------------------------------------------------------------------------------------ running
    def alive(self) -> bool:
        """True while every child process runs."""
        return all(c.proc.poll() is None for c in self._children)

    def dead_children(self) -> list[str]:
        """Names and exit codes of children that stopped."""
        return [
            f"{c.name} (exit {c.proc.returncode}, log {c.log})"
            for c in self._children
            if c.proc.poll() is not None
        ]

    def run_forever(self) -> int:
        """Block until SIGINT/SIGTERM (0) or until a child dies (1); then stop everything."""
        stop_requested = False

        def _on_signal(signum: int, _frame: Any) -> None:
            nonlocal stop_requested
            stop_requested = True

        old = {s: signal.signal(s, _on_signal) for s in (signal.SIGINT, signal.SIGTERM)}
        try:
            while not stop_requested and self.alive():
                time.sleep(0.5)
        finally:
            for s, h in old.items():
                signal.signal(s, h)
        code = 0 if stop_requested else 1
        self.stop()
        return code

    # --------------------------------------------------------------------------------------- stop
    def stop(self) -> dict[str, int | None]:
        """Stop the serve process, then the reports server and the Prefect server; exit codes by name.

        Idempotent. Between the two, while the API is still up, the deployments are paused (which also
        deletes their future scheduled runs) and runs the serve process left unfinished (a run paused for
        approval, a running one) are marked Cancelled with the reason: nothing executes them any more, and
        an approval given later must not look as if it could still trade.
        """
        codes: dict[str, int | None] = {}
        serve = [c for c in self._children if c.name == "serve"]
        for child in serve:
            codes[child.name] = self._stop_child(child)
        server_alive = any(c.name == "server" and c.proc.poll() is None for c in self._children)
        if serve and server_alive:
            try:
                self._settle_runs("stopped by `stockflow down`/Ctrl-C: the process running this flow ended")
            except Exception as err:  # never let bookkeeping keep the server from stopping
                print(f"stockflow: could not pause deployments / cancel runs: {err}", file=sys.stderr)
        if self.reports is not None:
            self.reports.stop()
            self.reports = None
        for child in self._children:
            if child.name != "serve":
                codes[child.name] = self._stop_child(child)
        self._children = []
        self._remove_state()
        return codes

    def wanted_names(self) -> tuple[str, ...]:
        """``flow/deployment`` names of the catalog being served."""
        if self.config.deployment_names:
            return self.config.deployment_names
        from deployments.serve import load_catalog

        return tuple(spec.full_name for spec in load_catalog(self.config.catalog))

    def _settle_runs(self, reason: str, *, pause: bool = True) -> list[str]:
        return settle_runs(self.config.api_url, self.wanted_names(), reason, pause=pause, auth=self.auth)

    def _stop_child(self, child: _Child) -> int | None:
        proc = child.proc
        t = time.perf_counter()
        if proc.poll() is None:
            # Only the leader first: serve's SIGTERM handler stops its runner; SIGINT makes the server shut
            # uvicorn down cleanly. What they started themselves is dealt with below.
            with contextlib.suppress(ProcessLookupError):
                proc.send_signal(signal.SIGTERM if child.name == "serve" else signal.SIGINT)
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(timeout=self.config.stop_timeout_s)
        # Whatever is left in the child's group (flow runs of the serve process): SIGTERM, then SIGKILL.
        for sig, grace in ((signal.SIGTERM, 5.0), (signal.SIGKILL, 0.0)):
            if not group_alive(proc.pid):
                break
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(proc.pid, sig)
            deadline = time.perf_counter() + grace
            while time.perf_counter() < deadline and group_alive(proc.pid):
                time.sleep(0.1)
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(timeout=5)
        self.timings[f"stop_{child.name}_s"] = round(time.perf_counter() - t, 2)
        return proc.returncode

    def __enter__(self) -> LocalOperation:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -------------------------------------------------------------------------------------- state
    def _state_path(self) -> Path:
        return self.config.prefect_home / STATE_FILE

    def _write_state(self) -> None:
        state = {
            "pid": os.getpid(),
            "ui_url": self.config.ui_url,
            "api_url": self.config.api_url,
            "reports_url": self.config.reports_url,
            "reports_dir": str(self.config.reports_dir),
            "children": {c.name: c.proc.pid for c in self._children},
            "timings": self.timings,
            "started_at": time.time(),
        }
        self._state_path().write_text(json.dumps(state, indent=2))

    def _remove_state(self) -> None:
        try:
            path = self._state_path()
            state = json.loads(path.read_text())
            if state.get("pid") == os.getpid():
                path.unlink()
        except (OSError, ValueError):
            pass


__all__ = [
    "LocalOperation",
    "OperationConfig",
    "OperationError",
    "child_env",
    "database_description",
    "free_port",
    "http_get",
    "http_post_json",
    "port_is_free",
    "read_deployments",
    "read_state",
    "settle_runs",
]
