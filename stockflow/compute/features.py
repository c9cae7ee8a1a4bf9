"""Feature building with the per-symbol TA-Lib work mapped as Dask futures, chunk by chunk, when a Dask
cluster is in reach (inside a task run of a flow whose ``compute.dask_address`` is set); otherwise the
in-process :func:`stockflow.features.build_features_report`, unchanged.

Each chunk is a contiguous block of whole symbols, so the per-symbol features are computed exactly as in
one process; the cross-sectional ranks need every symbol of a session and are added afterwards, here,
over the concatenated chunks. The frame is therefore identical to the in-process one (a test proves it).
Only bar arrays travel to the workers; each worker holds one chunk's arrays at a time, so the peak memory
of a worker does not grow with the universe.
"""

from __future__ import annotations

import time
from typing import Any

import polars as pl

from stockflow.config.sections import FeatureSettings
from stockflow.features.build import (
    FeatureResult,
    _build,
    _partition,
    _with_ranks,
    check_version,
    output_columns,
    with_cross_sectional_labels,
)
from stockflow.features.build import build_features_report as build_in_process
from stockflow.logs import get_logger


def dask_address() -> str | None:
    """The scheduler address of the Dask client this process or task works with, or None."""
    try:
        from distributed import get_client
    except ImportError:  # pragma: no cover - dask is a dependency
        return None
    try:
        return str(get_client().scheduler.address)  # type: ignore[union-attr]
    except ValueError:
        return None


def chunks_of(bars: pl.DataFrame, chunk_symbols: int) -> list[pl.DataFrame]:
    """``bars`` sorted by symbol and session, cut into blocks of ``chunk_symbols`` whole symbols."""
    bars, blocks = _partition(bars)
    out: list[pl.DataFrame] = []
    for i in range(0, len(blocks), chunk_symbols):
        part = blocks[i : i + chunk_symbols]
        a, b = part[0][1], part[-1][2]
        out.append(bars.slice(a, b - a))
    return out


def chunk_features(bars: pl.DataFrame, settings: FeatureSettings) -> FeatureResult:
    """Per-symbol features and labels of one chunk (no cross-sectional ranks): what a worker runs."""
    return _build(bars, settings, ranks=False)


def combine(parts: list[FeatureResult], settings: FeatureSettings, started: float) -> FeatureResult:
    """Chunks' results as the in-process result: concatenated in symbol order, then ranked per session."""
    skipped: dict[str, str] = {}
    for p in parts:
        skipped.update(p.skipped)
    frames = [p.frame for p in parts if not p.frame.is_empty()]
    if not frames:
        from stockflow.features.build import empty_features

        return FeatureResult(
            empty_features(settings.feature_set_version),
            skipped,
            settings.feature_set_version,
            settings.label_horizon,
        )
    fs = check_version(settings)
    # The cross-sectional labels and ranks need every symbol of a session: computed over all chunks.
    frame = with_cross_sectional_labels(pl.concat(frames, how="vertical_relaxed"))
    frame = _with_ranks(frame, fs.ranked).select(output_columns(fs.version))
    return FeatureResult(
        frame, skipped, parts[0].feature_set_version, settings.label_horizon, time.perf_counter() - started
    )


def build_features_report(
    bars: pl.DataFrame, settings: FeatureSettings, *, chunk_symbols: int | None = None, client: Any = None
) -> FeatureResult:
    """Features of ``bars``: on the Dask cluster in reach (chunks of ``chunk_symbols`` symbols, default 64)
    or, without one, in this process. Same frame either way."""
    chunk = chunk_symbols or 64
    if client is None and (bars.is_empty() or dask_address() is None):
        return build_in_process(bars, settings)
    t0 = time.perf_counter()
    check_version(settings)
    parts = chunks_of(bars, chunk)
    if len(parts) <= 1:
        return build_in_process(bars, settings)
    if client is not None:
        return combine(_map(client, parts, settings), settings, t0)
    from prefect.context import TaskRunContext

    if TaskRunContext.get() is not None:
        from prefect_dask import get_dask_client

        with get_dask_client() as c:
            results = _map(c, parts, settings)
    else:
        from distributed import get_client

        results = _map(get_client(), parts, settings)
    get_logger().info("features: %d chunks of up to %d symbols on Dask", len(parts), chunk)
    return combine(results, settings, t0)


def _map(client: Any, parts: list[pl.DataFrame], settings: FeatureSettings) -> list[FeatureResult]:
    futures = client.map(chunk_features, parts, settings=settings, pure=False)
    return list(client.gather(futures))
