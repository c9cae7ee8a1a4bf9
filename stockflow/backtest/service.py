"""A backtest run end to end as plain functions: resolve the request, load bars from the state store,
compare strategies, write reports and record the run in ``backtest_runs``.

The ``backtest`` flow wraps these in tasks; ``stockflow backtest`` calls them directly.
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import polars as pl
from sqlalchemy import Engine, select

from stockflow.backtest.config import BacktestConfig, Costs
from stockflow.backtest.runner import Comparison, history_sessions, history_start, resolve_strategies
from stockflow.dates import parse_date
from stockflow.db.base import utcnow
from stockflow.db.engine import transaction
from stockflow.db.models_backtest import BacktestRun
from stockflow.domain.market import normalize_symbol
from stockflow.errors import ConfigError
from stockflow.jsonable import jsonable

if TYPE_CHECKING:
    from stockflow.backtest.tearsheet import ReportFiles
    from stockflow.config import Settings

#: Window used when neither the request nor ``settings.backtest`` gives a start: years before ``end``.
DEFAULT_YEARS = 3


@dataclass(frozen=True)
class BacktestRequest:
    """A validated request: canonical strategy names, symbols (None = the configured universe), window."""

    strategies: tuple[str, ...]
    symbols: tuple[str, ...] | None
    start: dt.date | None
    end: dt.date | None
    costs: Costs


def make_request(
    settings: Settings,
    *,
    strategies: Sequence[str] | str | None = None,
    symbols: Sequence[str] | str | None = None,
    start: dt.date | str | None = None,
    end: dt.date | str | None = None,
    costs: Costs | dict[str, float] | None = None,
) -> BacktestRequest:
    """Validate and normalise a request; errors name the parameter."""
    names = resolve_strategies(strategies)
    syms: tuple[str, ...] | None = None
    if symbols is not None:
        raw = symbols.split(",") if isinstance(symbols, str) else list(symbols)
        syms = tuple(dict.fromkeys(normalize_symbol(s) for s in raw if s and s.strip()))
        if not syms:
            raise ConfigError("symbols: the universe is empty; give at least one symbol or leave it unset")
    s = parse_date(start, "start") or parse_date(settings.backtest.start, "backtest.start")
    e = parse_date(end, "end") or parse_date(settings.backtest.end, "backtest.end")
    if s is not None and e is not None and s > e:
        raise ConfigError(f"start ({s}) is after end ({e})")
    if costs is None:
        c = Costs.from_settings(settings)
    elif isinstance(costs, Costs):
        c = costs
    else:
        unknown = sorted(set(costs) - set(Costs.__dataclass_fields__))
        if unknown:
            raise ConfigError(
                f"costs: unknown field(s) {unknown}; known: {sorted(Costs.__dataclass_fields__)}"
            )
        c = Costs(**{**Costs.from_settings(settings).__dict__, **costs})
    return BacktestRequest(tuple(names), syms, s, e, c)


def load_universe(
    settings: Settings, engine: Engine, request: BacktestRequest
) -> tuple[pl.DataFrame, dt.date, dt.date]:
    """Bars of the request's universe (with the history its strategies need before ``start``) and the
    resolved window. Errors name the parameter: an empty universe, symbols without bars, no data in the
    window."""
    from stockflow.store.bars import latest_sessions, load_bars

    symbols = list(request.symbols) if request.symbols is not None else list(settings.data.symbols)
    known = latest_sessions(engine, symbols or None)
    if not known:
        where = f" for {', '.join(symbols)}" if symbols else ""
        raise ConfigError(f"symbols: no stored bars{where}; run the ingest flow first (stockflow ingest)")
    missing = [s for s in symbols if s not in known]
    end = request.end or max(known.values())
    start = request.start or end.replace(year=end.year - DEFAULT_YEARS)
    if start > end:
        raise ConfigError(f"start ({start}) is after end ({end})")
    need = history_sessions(request.strategies, settings)
    bars = load_bars(engine, sorted(known), history_start(start, need), end)
    in_window = bars.filter((pl.col("session") >= start) & (pl.col("session") <= end))
    if in_window.is_empty():
        raise ConfigError(f"start/end: no bars between {start} and {end} for the {len(known)} symbols")
    if missing:
        from stockflow.logs import get_logger

        get_logger().warning("backtest: no stored bars for %s; left out", ", ".join(missing))
    return bars, start, end


def new_run_key(now: dt.datetime | None = None) -> str:
    """A sortable, unique run key used as the report folder name (``YYYYmmddTHHMMSSZ-xxxxxx``)."""
    now = now or utcnow()
    return f"{now:%Y%m%dT%H%M%SZ}-{uuid.uuid4().hex[:6]}"


def start_run(
    engine: Engine, request: BacktestRequest, *, run_key: str, flow_run_id: str | None = None
) -> int:
    """Insert the ``running`` row; returns its id."""
    with transaction(engine) as s:
        row = BacktestRun(
            run_key=run_key,
            flow_run_id=flow_run_id,
            status="running",
            strategies=list(request.strategies),
            symbols=list(request.symbols or []),
            start=request.start,
            end=request.end,
            params={"costs": dict(request.costs.__dict__)},
            metrics={},
            created_at=utcnow(),
        )
        s.add(row)
        s.flush()
        return int(row.id)


def finish_run(
    engine: Engine,
    run_key: str,
    comparison: Comparison,
    *,
    start: dt.date,
    end: dt.date,
    symbols: Sequence[str],
    files: ReportFiles | None,
    config: BacktestConfig | None = None,
) -> None:
    """Record metrics, the resolved window and universe, and the report paths; status ``succeeded``."""
    with transaction(engine) as s:
        row = s.scalars(select(BacktestRun).where(BacktestRun.run_key == run_key)).one()
        row.status = "succeeded"
        row.start, row.end = start, end
        row.symbols = list(symbols)
        params: dict[str, Any] = dict(row.params or {})
        params["strategies"] = jsonable(comparison.params)
        if config is not None:
            params["engine"] = jsonable({k: v for k, v in config.__dict__.items() if k != "costs"})
        row.params = params
        row.metrics = comparison.metrics_json()
        if files is not None:
            row.report_dir = str(files.directory)
            row.tearsheet_path = str(files.tearsheet)
            row.comparison_csv = str(files.comparison_csv)
        row.finished_at = utcnow()


def fail_run(engine: Engine, run_key: str, error: BaseException) -> None:
    """Mark the run ``failed`` with the error (the run's row says why)."""
    with transaction(engine) as s:
        row = s.scalars(select(BacktestRun).where(BacktestRun.run_key == run_key)).one_or_none()
        if row is None:
            return
        row.status = "failed"
        row.error = f"{type(error).__name__}: {error}"
        row.finished_at = utcnow()


def list_runs(engine: Engine, limit: int = 20) -> list[BacktestRun]:
    """The latest runs, newest first."""
    with transaction(engine) as s:
        return list(s.scalars(select(BacktestRun).order_by(BacktestRun.id.desc()).limit(limit)).all())


def report_dir(settings: Settings, run_key: str) -> Path:
    """``reports_dir/backtests/<run_key>``."""
    return Path(settings.reports_dir) / "backtests" / run_key
