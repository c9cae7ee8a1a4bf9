"""Logging that goes through Prefect's run logger inside flows and tasks, and stdlib logging elsewhere.

The one place plain functions touch Prefect's runtime: a lookup that degrades to a standard logger
outside a run (so the functions run and are tested without Prefect), while inside a run their lines
land in the run's log in the UI. Artifacts, by contrast, are published in ``tasks/`` only."""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any


def get_logger(name: str = "stockflow") -> logging.Logger | logging.LoggerAdapter[Any]:
    """Prefect's run logger when called inside a flow or task run, else a standard logger."""
    try:
        from prefect.exceptions import MissingContextError
        from prefect.logging import get_run_logger

        try:
            return get_run_logger()
        except MissingContextError:
            pass
    except ImportError:  # pragma: no cover - prefect is a hard dependency
        pass
    return logging.getLogger(name)


class Progress:
    """Logs ``done / total`` and throughput at most every ``every_s`` seconds, plus a final line."""

    def __init__(self, what: str, total: int, unit: str = "rows", every_s: float = 2.0) -> None:
        self.what, self.total, self.unit, self.every_s = what, total, unit, every_s
        self.done = 0
        self.units = 0
        self.start = time.perf_counter()
        self._last = self.start
        self.log = get_logger()

    def advance(self, n: int = 1, units: int = 0) -> None:
        """Count ``n`` items (symbols) and ``units`` (rows) done; log when due."""
        self.done += n
        self.units += units
        now = time.perf_counter()
        if now - self._last >= self.every_s:
            self._last = now
            self.log.info(self.line())

    def line(self) -> str:
        """A one-line status: items done of total and units per second."""
        elapsed = max(time.perf_counter() - self.start, 1e-9)
        return (
            f"{self.what}: {self.done}/{self.total} done, {self.units:,} {self.unit} "
            f"({self.units / elapsed:,.0f} {self.unit}/s, {elapsed:.1f}s)"
        )

    def finish(self) -> str:
        """Log and return the final line."""
        msg = self.line()
        self.log.info(msg)
        return msg


class Stages:
    """Says, for a run a person waits on, which stage it is in and how long each took: one line when a
    stage starts (``monitor 2/5: building the current window (3.1s so far)``), one when it ends
    (``monitor 2/5 done in 8.0s``) and one at the end (``monitor: done in 14.2s``).

    Stages are of very different sizes (unlike the walk-forward's folds), so no estimate of the time
    left is given: the elapsed times are what a person can read.
    """

    def __init__(self, what: str, names: Sequence[str]) -> None:
        self.what, self.names = what, list(names)
        self.start = time.perf_counter()
        self.log = get_logger()
        self.took: dict[str, float] = {}

    @contextmanager
    def stage(self, name: str, detail: str = "") -> Iterator[None]:
        """Log the start of ``name`` (one of ``names``; ``detail`` is added to the line) and its end."""
        i = self.names.index(name) + 1
        n = len(self.names)
        self.log.info(
            f"{self.what} {i}/{n}: {name}{f' ({detail})' if detail else ''}; "
            f"{time.perf_counter() - self.start:.1f}s so far"
        )
        t0 = time.perf_counter()
        yield
        self.took[name] = time.perf_counter() - t0
        self.log.info(f"{self.what} {i}/{n} done in {self.took[name]:.1f}s")

    def finish(self) -> str:
        """Log and return the closing line with the total time."""
        msg = f"{self.what}: done in {time.perf_counter() - self.start:.1f}s"
        self.log.info(msg)
        return msg
