"""The data side of a retrain: features of the universe (in memory, or on a cluster in the chunked
feature store under ``data_dir``, so the flow's own process holds none), the walk-forward folds over
them, the per-fold job and the default runners (folds one after the other; final fits here)."""

from __future__ import annotations

import datetime as dt
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import polars as pl
from sqlalchemy import Engine

from stockflow.compute.features import build_features_report, build_features_to_store
from stockflow.errors import DataError
from stockflow.evaluation import Fold, folds
from stockflow.features.parquet import ChunkStore, chunk_dir, discard_chunks
from stockflow.logs import get_logger
from stockflow.ml.training import (
    FinalFit,
    Recipe,
    TrainConfig,
    final_fit,
    final_window_start,
    fold_predictions,
    usable_rows,
    window_bounds,
)
from stockflow.store.bars import load_bars

if TYPE_CHECKING:
    from stockflow.config import Settings


#: Runs the per-fold function over the folds; the default is a plain loop. A Prefect ``.map`` or a
#: Dask client can be passed instead: folds are independent and seeded, so results do not change.
FoldRunner = Callable[[Callable[[Fold], pl.DataFrame], Sequence[Fold]], list[pl.DataFrame]]
#: Fits the final models of the recipes on the latest window of the features (a frame or the chunked
#: store) and their drift references; the default fits here, ``UnitRunner.final`` one unit per kind.
FinalRunner = Callable[[pl.DataFrame | ChunkStore, dict[str, Recipe], TrainConfig, int], FinalFit]


def final_here(
    source: pl.DataFrame | ChunkStore, recipes: dict[str, Recipe], cfg: TrainConfig, days: int
) -> FinalFit:
    """Final fits in this process (the whole frame, or the stored window read here)."""
    if isinstance(source, ChunkStore):
        start = final_window_start(source.labelled_sessions(), days)
        sessions = source.sessions()
        source = source.read(*window_bounds(sessions, start, sessions[-1]))
    return final_fit(source, recipes, cfg, days)


@dataclass(frozen=True)
class FoldJob:
    """The per-fold function of a walk-forward as data (frame, recipes, config, aliases), so a runner can
    score it whole (``job(fold)``) or split it per model kind (``stockflow.compute.walkforward``)."""

    frame: pl.DataFrame | None
    recipes: dict[str, Recipe]
    cfg: TrainConfig
    aliases: dict[str, str]
    store: ChunkStore | None = None  # the features in the chunked store instead of ``frame``

    def __call__(self, fold: Fold) -> pl.DataFrame:
        """Every recipe, the control and the baselines on one fold."""
        frame = self.frame
        if frame is None and self.store is not None:
            frame = self.store.read(*window_bounds(self.store.sessions(), fold.train_start, fold.test_end))
        assert frame is not None, "a FoldJob holds a frame or a store"
        return fold_predictions(frame, fold, self.recipes, self.cfg, aliases=self.aliases)


def serial_runner(fn: Callable[[Fold], pl.DataFrame], fs: Sequence[Fold]) -> list[pl.DataFrame]:
    """Score folds one after the other, saying after each which kinds it trained, the time it took and
    an estimate of the time left (the folds are about the same size)."""
    out: list[pl.DataFrame] = []
    kinds = ", ".join(fn.recipes) if isinstance(fn, FoldJob) else "all kinds"
    t0 = time.perf_counter()
    for i, fold in enumerate(fs, 1):
        out.append(fn(fold))
        spent = time.perf_counter() - t0
        get_logger().info(
            "walk-forward: fold %d/%d done (%s); %.0fs so far, about %.0fs left",
            i, len(fs), kinds, spent, spent / i * (len(fs) - i),
        )  # fmt: skip
    return out


@dataclass(frozen=True)
class PreparedData:
    """Features of the chosen universe and window, and the folds over them: the frame in memory, or (on a
    cluster) ``frame`` None and the features in the chunked store under ``data_dir``."""

    frame: pl.DataFrame | None
    symbols: list[str]
    skipped: dict[str, str]
    folds: list[Fold]
    store: ChunkStore | None = None

    @property
    def source(self) -> pl.DataFrame | ChunkStore:
        """The features: the frame, or the store."""
        if self.frame is not None:
            return self.frame
        assert self.store is not None, "PreparedData holds a frame or a store"
        return self.store

    @property
    def rows(self) -> int:
        """Feature rows."""
        return self.frame.height if self.frame is not None else self.store.height() if self.store else 0


def prepare_data(
    settings: Settings,
    engine: Engine,
    *,
    symbols: Sequence[str] | None = None,
    start: dt.date | None = None,
    end: dt.date | None = None,
    to_store: bool = False,
) -> PreparedData:
    """Load bars, build features and cut the walk-forward folds. ``to_store``: the features are written
    per chunk of symbols to the chunked feature store under ``data_dir`` (by the Dask workers when a
    cluster is in reach) and the result holds a reference to them, not the frame."""
    universe = list(symbols) if symbols else (list(settings.data.symbols) or None)
    bars = load_bars(engine, universe, start, end)
    if bars.is_empty():
        raise DataError(
            f"no bars stored for symbols {universe or 'all'} between {start or 'the start'} and "
            f"{end or 'the end'}; run `stockflow ingest` first",
            rule="retrain_data",
        )
    chunk = settings.compute.feature_chunk_symbols
    if to_store:
        # On a cluster: the workers write the features to the chunked store; this process keeps none.
        fs_version = settings.features.feature_set_version
        out = chunk_dir(settings, fs_version, uuid.uuid4().hex)
        stored = build_features_to_store(bars, settings.features, out, chunk_symbols=chunk)
        del bars
        if not stored.rows:
            discard_chunks(stored.store)
            raise DataError(f"no symbol could be featurized: {stored.skipped}", rule="retrain_data")
        return PreparedData(
            None,
            stored.symbols,
            stored.skipped,
            cut_folds(settings, stored.store.usable_sessions()),
            stored.store,
        )
    fres = build_features_report(bars, settings.features, chunk_symbols=chunk)
    frame = fres.frame
    if frame.is_empty():
        raise DataError(f"no symbol could be featurized: {fres.skipped}", rule="retrain_data")
    sessions = usable_rows(frame).get_column("session").unique().to_list()
    return PreparedData(frame, fres.symbols, dict(fres.skipped), cut_folds(settings, sessions))


def cut_folds(settings: Settings, sessions: Sequence[dt.date]) -> list[Fold]:
    """The walk-forward folds over the usable sessions."""
    ms = settings.models
    return folds(
        list(sessions),
        ms.train_window_days,
        ms.test_window_days,
        max(ms.purge_days, settings.features.label_horizon),
        ms.n_folds,
        label_horizon=settings.features.label_horizon,
    )
