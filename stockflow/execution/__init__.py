"""Idempotent execution, fill application, reconciliation, the run lock, halts and protective stops."""

from stockflow.execution.batch import execute_orders
from stockflow.execution.cycle import StartOfRun, start_of_run
from stockflow.execution.fills import apply_fills, sync_fills
from stockflow.execution.halt import HaltReport, cancel_open_orders, enforce_halt
from stockflow.execution.lock import RunLock, TradingLockedError, run_lock
from stockflow.execution.poll import await_orders
from stockflow.execution.reconcile import ReconcileReport, reconcile
from stockflow.execution.stops import BarRange, StopAction, bar_ranges, manage_stops
from stockflow.execution.submit import ExecutionResult, cancel_order, submit_order

__all__ = [
    "BarRange",
    "ExecutionResult",
    "HaltReport",
    "ReconcileReport",
    "RunLock",
    "StartOfRun",
    "StopAction",
    "TradingLockedError",
    "apply_fills",
    "await_orders",
    "bar_ranges",
    "cancel_open_orders",
    "cancel_order",
    "enforce_halt",
    "execute_orders",
    "manage_stops",
    "reconcile",
    "run_lock",
    "start_of_run",
    "submit_order",
    "sync_fills",
]
