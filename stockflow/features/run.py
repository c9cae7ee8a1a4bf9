"""The features stage as one plain function: load bars -> build features -> store parquet."""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import polars as pl

from stockflow.features.build import FeatureResult
from stockflow.features.parquet import save_features
from stockflow.features.spec import MIN_HISTORY

if TYPE_CHECKING:
    from sqlalchemy import Engine

    from stockflow.config import Settings


@dataclass(frozen=True)
class FeatureRun:
    """What the features stage did."""

    path: Path | None
    feature_set_version: str
    label_horizon: int
    symbols: list[str]
    rows: int
    usable_rows: int
    skipped: dict[str, str] = field(default_factory=dict)
    first_session: dt.date | None = None
    last_session: dt.date | None = None
    seconds: float = 0.0

    def summary(self) -> dict[str, Any]:
        """Plain data for logs, artifacts and the CLI."""
        return {
            "path": str(self.path) if self.path else None,
            "feature_set_version": self.feature_set_version,
            "label_horizon": self.label_horizon,
            "symbols": len(self.symbols),
            "rows": self.rows,
            "usable_rows": self.usable_rows,
            "skipped": self.skipped,
            "first_session": self.first_session.isoformat() if self.first_session else None,
            "last_session": self.last_session.isoformat() if self.last_session else None,
            "seconds": round(self.seconds, 2),
        }


def history_start(start: dt.date, bars: int = MIN_HISTORY) -> dt.date:
    """A calendar date far enough before ``start`` to hold ``bars`` sessions (weekends and holidays)."""
    return start - dt.timedelta(days=int(bars * 1.5) + 14)


def compute_and_store(
    settings: Settings,
    engine: Engine,
    symbols: Sequence[str] | None = None,
    start: dt.date | None = None,
    end: dt.date | None = None,
) -> tuple[FeatureRun, FeatureResult]:
    """Build features for ``symbols`` (default: the configured universe; empty = all stored) over
    [start, end] and store them under ``data_dir/features/<version>/``.

    Bars from before ``start`` are loaded so that rows from ``start`` on are past the warm-up; only rows
    from ``start`` on are kept. Labels stop at ``end`` (the last h rows have none), so nothing after
    ``end`` is ever used. An empty result is not stored.
    """
    from stockflow.store.bars import load_bars

    t0 = time.perf_counter()
    universe = list(symbols) if symbols is not None else list(settings.data.symbols)
    bars = load_bars(engine, universe or None, history_start(start) if start else None, end)
    # On a Dask cluster when the flow set one up (compute.dask_address), else in this process.
    from stockflow.compute.features import build_features_report as build_maybe_distributed

    result = build_maybe_distributed(
        bars, settings.features, chunk_symbols=settings.compute.feature_chunk_symbols
    )
    if start is not None and not result.frame.is_empty():
        result = FeatureResult(
            result.frame.filter(pl.col("session") >= start),
            result.skipped,
            result.feature_set_version,
            result.label_horizon,
            result.seconds,
        )
    missing = sorted(set(universe) - set(bars.get_column("symbol").unique().to_list()))
    skipped = {**result.skipped, **{s: "no stored bars in the requested window" for s in missing}}
    result = FeatureResult(
        result.frame, skipped, result.feature_set_version, result.label_horizon, result.seconds
    )
    frame = result.frame
    path = save_features(result, settings) if not frame.is_empty() else None
    run = FeatureRun(
        path=path,
        feature_set_version=result.feature_set_version,
        label_horizon=result.label_horizon,
        symbols=result.symbols,
        rows=frame.height,
        usable_rows=result.usable_rows if frame.height else 0,
        skipped=skipped,
        first_session=frame["session"].min() if frame.height else None,  # type: ignore[arg-type]
        last_session=frame["session"].max() if frame.height else None,  # type: ignore[arg-type]
        seconds=time.perf_counter() - t0,
    )
    return run, result
