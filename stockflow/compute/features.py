"""Feature building with the per-symbol TA-Lib work mapped as Dask futures, chunk by chunk, when a Dask
cluster is in reach (inside a task run of a flow whose ``compute.dask_address`` is set); otherwise the
in-process :func:`stockflow.features.build_features_report`, unchanged.

Each chunk is a contiguous block of whole symbols, so the per-symbol features are computed exactly as in
one process; the cross-sectional ranks need every symbol of a session and are added afterwards, here,
over the concatenated chunks. The frame is therefore identical to the in-process one (a test proves it).
Only bar arrays travel to the workers (numpy arrays, not frames); each worker holds one chunk's arrays at a
time, so the peak memory of a worker does not grow with the universe.

:func:`build_features_to_store` goes further: each worker writes its chunk's per-symbol features to the
chunked feature store (:class:`stockflow.features.parquet.ChunkStore`, under ``data_dir``) and returns only
the skipped symbols and a file name, so no feature frame travels back to the flow's own process at all.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
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
from stockflow.features.parquet import ChunkStore, write_chunk
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


@contextmanager
def cluster_client(client: Any = None) -> Iterator[Any]:
    """``client`` if given, else the Dask client in reach: prefect-dask's inside a task run, the default
    client of this process otherwise."""
    if client is not None:
        yield client
        return
    from prefect.context import TaskRunContext

    if TaskRunContext.get() is not None:
        from prefect_dask import get_dask_client

        with get_dask_client() as c:
            yield c
        return
    from distributed import get_client

    yield get_client()


def chunks_of(bars: pl.DataFrame, chunk_symbols: int) -> list[pl.DataFrame]:
    """``bars`` sorted by symbol and session, cut into blocks of ``chunk_symbols`` whole symbols."""
    bars, blocks = _partition(bars)
    out: list[pl.DataFrame] = []
    for i in range(0, len(blocks), chunk_symbols):
        part = blocks[i : i + chunk_symbols]
        a, b = part[0][1], part[-1][2]
        out.append(bars.slice(a, b - a))
    return out


#: Bar columns shipped to a worker as float64 arrays.
_PRICES = ("open", "high", "low", "close", "volume")
#: Columns a reader of the chunked store recomputes over whole sessions (not written per chunk).
_CROSS_SECTIONAL = ("fwd_excess", "fwd_rank", "y_out")


def to_arrays(bars: pl.DataFrame) -> dict[str, Any]:
    """A chunk of bars as plain arrays (cheap to pickle): symbols with their row counts, sessions as day
    numbers, prices and volume as float64."""
    counts = bars.group_by("symbol", maintain_order=True).len()
    out: dict[str, Any] = {
        "symbols": counts.get_column("symbol").to_list(),
        "counts": counts.get_column("len").to_numpy(),
        "session": bars.get_column("session").cast(pl.Date).to_physical().to_numpy(),
    }
    out.update({c: bars.get_column(c).cast(pl.Float64).to_numpy() for c in _PRICES})
    return out


def from_arrays(arrays: dict[str, Any]) -> pl.DataFrame:
    """The bar frame of :func:`to_arrays`' output (same rows, same order)."""
    symbols = np.repeat(np.asarray(arrays["symbols"], dtype=object), arrays["counts"])
    return pl.DataFrame(
        [
            pl.Series("symbol", symbols, dtype=pl.Utf8),
            pl.Series("session", arrays["session"], dtype=pl.Int32).cast(pl.Date),
            *(pl.Series(c, arrays[c], dtype=pl.Float64) for c in _PRICES),
        ]
    )


def chunk_features(bars: pl.DataFrame | dict[str, Any], settings: FeatureSettings) -> FeatureResult:
    """Per-symbol features and labels of one chunk (no cross-sectional ranks): what a worker runs."""
    frame = from_arrays(bars) if isinstance(bars, dict) else bars
    return _build(frame, settings, ranks=False)


@dataclass(frozen=True)
class ChunkWritten:
    """What a worker reports for one chunk written to the store: small values only."""

    file: str | None  # None: every symbol of the chunk was skipped
    skipped: dict[str, str]
    symbols: list[str]
    rows: int


def chunk_to_store(
    bars: dict[str, Any], settings: FeatureSettings, directory: str, index: int
) -> ChunkWritten:
    """Features of one chunk written as ``part-<index>.parquet`` under ``directory`` (per-symbol columns;
    the cross-sectional ones are added by the reader over whole sessions)."""
    res = chunk_features(bars, settings)
    if res.frame.is_empty():
        return ChunkWritten(None, dict(res.skipped), [], 0)
    frame = res.frame.drop(_CROSS_SECTIONAL)
    path = write_chunk(directory, index, frame)
    return ChunkWritten(path.name, dict(res.skipped), res.symbols, frame.height)


@dataclass(frozen=True)
class StoredFeatures:
    """Features of a universe in the chunked store: the reference to the files, symbols, skipped ones."""

    store: ChunkStore
    symbols: list[str]
    skipped: dict[str, str]
    rows: int
    seconds: float


def build_features_to_store(
    bars: pl.DataFrame,
    settings: FeatureSettings,
    directory: str | Path,
    *,
    chunk_symbols: int | None = None,
    client: Any = None,
) -> StoredFeatures:
    """Features of ``bars`` written chunk by chunk to ``directory`` by the Dask workers (or, without a
    cluster, here, chunk after chunk): the caller holds the bars and small results only."""
    t0 = time.perf_counter()
    check_version(settings)
    parts = chunks_of(bars, chunk_symbols or 64) if not bars.is_empty() else []
    arrays = [to_arrays(p) for p in parts]
    del parts
    dest = str(directory)
    if client is None and dask_address() is None:
        written = [chunk_to_store(a, settings, dest, i) for i, a in enumerate(arrays)]
    else:
        with cluster_client(client) as c:
            futures = [
                c.submit(chunk_to_store, a, settings, dest, i, pure=False) for i, a in enumerate(arrays)
            ]
            del arrays
            written = list(c.gather(futures))
        get_logger().info("features: %d chunks of up to %d symbols written by Dask workers", len(written),
                          chunk_symbols or 64)  # fmt: skip
    skipped: dict[str, str] = {}
    for w in written:
        skipped.update(w.skipped)
    store = ChunkStore(dest, settings.feature_set_version, tuple(w.file for w in written if w.file))
    return StoredFeatures(
        store,
        [s for w in written for s in w.symbols],
        skipped,
        sum(w.rows for w in written),
        time.perf_counter() - t0,
    )


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
    with cluster_client(client) as c:
        results = _map(c, parts, settings)
    get_logger().info("features: %d chunks of up to %d symbols on Dask", len(parts), chunk)
    return combine(results, settings, t0)


def _map(client: Any, parts: list[pl.DataFrame], settings: FeatureSettings) -> list[FeatureResult]:
    futures = client.map(chunk_features, [to_arrays(p) for p in parts], settings=settings, pure=False)
    return list(client.gather(futures))
