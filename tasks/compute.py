"""Prefect tasks of the scale-out units (stockflow.compute): each is one task run, on the flow's own
process or on a Dask worker. Inputs are frames and small typed values, never database handles."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from prefect import task
from prefect.cache_policies import NO_CACHE

from stockflow.compute.backtest import run_strategy
from stockflow.compute.walkforward import UnitRunner, run_final_unit, run_unit
from stockflow.ml.retrain_data import final_here, serial_runner

if TYPE_CHECKING:
    from stockflow.compute.executor import Executor

#: One (model kind, fold) of the walk-forward: fit, predict the fold's test rows (a plain function).
walk_forward_unit = task(
    name="walk-forward-unit",
    task_run_name="walk-forward {spec} fold {fold.index}",
    cache_policy=NO_CACHE,
)(run_unit)

#: The final fit of one recipe group (a kind, or an ensemble with its members) on the latest window.
final_fit_unit = task(name="final-fit-unit", task_run_name="final fit {unit}", cache_policy=NO_CACHE)(
    run_final_unit
)

#: One strategy's backtests, costs on and off.
backtest_strategy = task(name="backtest-strategy", task_run_name="backtest {name}", cache_policy=NO_CACHE)(
    run_strategy
)


def fold_runner(executor: Executor) -> Any:
    """The walk-forward runner of an executor: today's serial loop in process, one task per (kind, fold)
    on a cluster."""
    return UnitRunner(executor, walk_forward_unit) if executor.distributed else serial_runner


def final_runner(executor: Executor) -> Any:
    """The final-fit runner of an executor: here in process, one task per kind on a cluster."""
    return (
        UnitRunner(executor, walk_forward_unit, final_fit_unit).final if executor.distributed else final_here
    )
