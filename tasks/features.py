"""Prefect task of the features stage: one coarse task over all symbols."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from typing import TYPE_CHECKING

from prefect import task

from stockflow.features.run import FeatureRun, compute_and_store
from stockflow.logs import get_logger

if TYPE_CHECKING:
    from sqlalchemy import Engine

    from stockflow.config import Settings


@task(name="compute-features", task_run_name="compute-features")
def compute_features(
    settings: Settings,
    engine: Engine,
    symbols: Sequence[str] | None = None,
    start: dt.date | None = None,
    end: dt.date | None = None,
) -> FeatureRun:
    """Load bars, build features for every symbol, store the parquet; skipped symbols are logged, not fatal.

    Returns the :class:`FeatureRun` (path of the stored file, counts, skipped symbols with reasons);
    read the frame back with :func:`stockflow.features.load_features`.
    """
    log = get_logger()
    run, _ = compute_and_store(settings, engine, symbols, start, end)
    log.info(
        "features %s: %d symbols, %d rows (%d usable), %d skipped, %.1fs -> %s",
        run.feature_set_version,
        len(run.symbols),
        run.rows,
        run.usable_rows,
        len(run.skipped),
        run.seconds,
        run.path,
    )
    for sym, reason in run.skipped.items():
        log.warning("features: skipped %s: %s", sym, reason)
    return run
