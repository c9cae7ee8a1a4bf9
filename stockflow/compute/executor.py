"""Executors of a flow run's parallel work: in this process (the default) or on a Dask cluster through
``prefect_dask.DaskTaskRunner``. Both run Prefect tasks, so every unit is a task run in the UI."""

from __future__ import annotations

import os
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

from stockflow.logs import get_logger

if TYPE_CHECKING:
    from stockflow.config import Settings
    from stockflow.config.sections import ComputeSettings


class Result(Protocol):
    """What :meth:`Executor.submit` returns: something with ``result()``."""

    def result(self) -> Any:
        """The unit's value (raises its error)."""
        ...


class Executor(Protocol):
    """Runs units of work: a Prefect task (or plain function) with keyword parameters."""

    distributed: bool

    def submit(self, fn: Any, parameters: Mapping[str, Any]) -> Result:
        """Start ``fn(**parameters)``; returns a handle whose ``result()`` waits for it."""
        ...

    def scatter(self, value: Any, *, broadcast: bool = False) -> Any:
        """Place a large input once where the units run (a reference to pass as a parameter);
        ``broadcast``: on every worker (an input most units read)."""
        ...


@dataclass(frozen=True)
class Done:
    """An already computed value."""

    value: Any

    def result(self) -> Any:
        """The value."""
        return self.value


class InlineExecutor:
    """Today's path: every unit runs here, one after the other, when submitted."""

    distributed = False

    def submit(self, fn: Any, parameters: Mapping[str, Any]) -> Result:
        """Run ``fn`` now (a Prefect task called inside a flow is still a task run); handles of earlier
        units among the parameters (alone or in a list) are their values, as on a cluster."""
        return Done(fn(**{k: _value(v) for k, v in parameters.items()}))

    def scatter(self, value: Any, *, broadcast: bool = False) -> Any:
        """Nothing to move."""
        return value


class DaskExecutor:
    """Units as Prefect task runs on a Dask cluster (``DaskTaskRunner.submit``); big inputs scattered once."""

    distributed = True

    def __init__(self, runner: Any = None, *, client: Any = None) -> None:
        self.runner = runner
        self._client = client

    @property
    def client(self) -> Any:
        """The ``distributed.Client`` of the cluster."""
        return self._client if self._client is not None else self.runner.client

    def submit(self, fn: Any, parameters: Mapping[str, Any]) -> Result:
        """Submit a Prefect task to the cluster; plain functions go through the Dask client directly.

        Prefect is imported only with a task runner (a plain client, e.g. the benchmark's, does not
        pay its import: tens of seconds on a loaded machine)."""
        if self.runner is not None and _is_task(fn):
            from prefect.context import TaskRunContext

            # Submitted from inside a coarse task (e.g. evaluate-challengers), the unit would carry that
            # task's context to the worker, parameters included (an Engine does not pickle, nor should
            # it travel): the unit runs as a task run of the flow run instead.
            token = TaskRunContext.__var__.set(None)  # type: ignore[arg-type]
            try:
                return self.runner.submit(fn, dict(parameters))  # type: ignore[no-any-return]
            finally:
                TaskRunContext.__var__.reset(token)
        return self.client.submit(fn, pure=False, **parameters)  # type: ignore[no-any-return]

    def scatter(self, value: Any, *, broadcast: bool = False) -> Any:
        """The value as a Dask task's result, computed once on one worker and fetched by the others, or
        with ``broadcast`` copied to every worker at once.

        Not ``client.scatter``: scattered data has no lineage, so a worker lost while holding it cancels
        every unit that needs it. A task's result is recomputed from its spec on another worker.
        ``broadcast`` matters for an input every unit reads: Dask runs a task where its largest input
        lies, so with that input on one worker every unit would queue there (measured: the backtest's
        strategies all ran on one of two workers, the other idle).
        """
        import warnings

        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message=".*[Ll]arge graph.*")
            ref = self.client.submit(_identity, value, pure=False)
        if broadcast:
            self.client.replicate([ref])
        return ref


def _is_task(fn: Any) -> bool:
    from prefect import Task

    return isinstance(fn, Task)


def _value(v: Any) -> Any:
    if isinstance(v, Done):
        return v.value
    if isinstance(v, list):
        return [_value(x) for x in v]
    return v


def _identity(value: Any) -> Any:
    return value


def local_cluster_kwargs(cs: ComputeSettings) -> dict[str, Any]:
    """Arguments of the ``LocalCluster`` for ``dask_address: local``: one single-threaded worker process
    per core (TA-Lib, LightGBM with one thread and numpy release the GIL little; processes scale)."""
    workers = cs.local_workers or max(os.cpu_count() or 1, 1)
    return {
        "n_workers": workers,
        "threads_per_worker": 1,
        "processes": True,
        "memory_limit": cs.local_memory_limit,
        "dashboard_address": cs.dashboard_address,
    }


def task_runner(cs: ComputeSettings) -> Any:
    """The ``DaskTaskRunner`` for the settings (None when ``dask_address`` is unset)."""
    if cs.dask_address is None:
        return None
    from distributed import LocalCluster
    from prefect_dask import DaskTaskRunner

    if cs.dask_address == "local":
        return DaskTaskRunner(cluster_class=LocalCluster, cluster_kwargs=local_cluster_kwargs(cs))
    return DaskTaskRunner(address=cs.dask_address)


@contextmanager
def open_executor(settings: Settings) -> Iterator[Executor]:
    """The executor of ``settings.compute`` for the duration of a flow run (a local cluster is started here
    and stopped on exit; an existing cluster is only connected to)."""
    runner = task_runner(settings.compute)
    if runner is None:
        yield InlineExecutor()
        return
    from stockflow.errors import ConfigError

    try:
        runner.__enter__()
        client = runner.client
    except OSError as err:
        runner.__exit__(None, None, None)
        raise ConfigError(
            f"compute.dask_address {settings.compute.dask_address!r}: no Dask scheduler answers ({err}); "
            "start one with `dask scheduler` and `dask worker <address>`, or unset the setting"
        ) from None
    try:
        link = client.dashboard_link
        get_logger().info(
            "compute: Dask cluster %s, %d workers; dashboard %s",
            client.scheduler.address, len(client.scheduler_info().get("workers", {})), link,
        )  # fmt: skip
        yield DaskExecutor(runner)
    finally:
        runner.__exit__(None, None, None)
