"""Build the feature frame of a bar panel: per-symbol TA-Lib, warm-up mask, cross-sectional ranks, labels.

The contract (docs/design.md): ``build_features(bars, settings)`` returns ``symbol, session``, the
columns of :data:`FEATURE_COLUMNS`, ``warmup`` and the labels ``fwd_ret`` and ``y_up``. Symbols that
cannot be featurized (too little history, constant or invalid prices, an all-NaN feature) are left out
and reported by :func:`build_features_report`, never crash the run.
"""

from __future__ import annotations

import logging
import sys
import time
from dataclasses import dataclass, field

import numpy as np
import polars as pl

from stockflow.config.sections import FeatureSettings
from stockflow.domain.market import BAR_COLUMNS, BAR_SCHEMA
from stockflow.errors import DataError
from stockflow.features.indicators import forward_return, past_return
from stockflow.features.sets import FeatureSet, feature_set
from stockflow.features.spec import FEATURE_COLUMNS, FEATURE_SET_VERSION, LABEL_COLUMNS, RANK_PREFIX
from stockflow.logs import get_logger

#: Columns of the frame :func:`build_features` returns for the default set ``ta-v1``, in order.
OUTPUT_COLUMNS: tuple[str, ...] = ("symbol", "session", *FEATURE_COLUMNS, "warmup", *LABEL_COLUMNS)


def output_columns(version: str = FEATURE_SET_VERSION) -> tuple[str, ...]:
    """Columns of :func:`build_features`' frame for feature set ``version``, in order."""
    fs = feature_set(version)
    return ("symbol", "session", *fs.columns, *fs.signals, "warmup", *LABEL_COLUMNS)


@dataclass(frozen=True)
class FeatureResult:
    """The feature frame plus what happened: skipped symbols with reasons, timing, version."""

    frame: pl.DataFrame
    skipped: dict[str, str] = field(default_factory=dict)
    feature_set_version: str = FEATURE_SET_VERSION
    label_horizon: int = 1
    seconds: float = 0.0

    @property
    def symbols(self) -> list[str]:
        """Symbols present in the frame."""
        return self.frame.get_column("symbol").unique(maintain_order=True).to_list()

    @property
    def usable_rows(self) -> int:
        """Rows outside the warm-up (usable for prediction; training also needs a label)."""
        return int((~self.frame.get_column("warmup")).sum())


def empty_features(version: str = FEATURE_SET_VERSION) -> pl.DataFrame:
    """An empty frame with the output schema of :func:`build_features`."""
    schema: dict[str, pl.DataType] = {"symbol": pl.Utf8(), "session": pl.Date()}
    fs = feature_set(version)
    schema.update({c: pl.Float64() for c in (*fs.columns, *fs.signals)})
    schema["warmup"] = pl.Boolean()
    schema.update({c: pl.Int8() if c.startswith("y_") else pl.Float64() for c in LABEL_COLUMNS})
    return pl.DataFrame(schema=schema)


def check_version(settings: FeatureSettings) -> FeatureSet:
    """The feature set the settings choose; :class:`ConfigError` for a version this code does not compute."""
    return feature_set(settings.feature_set_version)


def build_features(bars: pl.DataFrame, settings: FeatureSettings) -> pl.DataFrame:
    """Features and labels of ``bars`` (canonical bar frame, any number of symbols).

    Rows keep their symbol and session. ``warmup`` is true where the row has fewer than the feature
    set's warm-up (``min_history``) bars of history or any feature is undefined; such rows carry null
    features
    (never zeros) and must not be used for training or prediction. ``fwd_ret`` is
    close[t+h]/close[t]-1 with h = ``settings.label_horizon`` (null on the last h rows of a symbol),
    ``y_up`` is 1 where fwd_ret > 0, 0 where fwd_ret <= 0, null where fwd_ret is null.
    Skipped symbols are logged; use :func:`build_features_report` to get them.
    """
    return build_features_report(bars, settings).frame


def _partition(bars: pl.DataFrame) -> tuple[pl.DataFrame, list[tuple[str, int, int]]]:
    """Sort (if needed) and return the frame with (symbol, start, stop) of each contiguous block."""
    missing = [c for c in BAR_COLUMNS if c not in bars.columns]
    if missing:
        raise DataError(f"bar frame lacks columns {missing}", rule="schema")
    casts = [pl.col(c).cast(t) for c, t in BAR_SCHEMA.items() if bars.schema[c] != t]
    if casts:
        bars = bars.with_columns(casts)
    bars = bars.select(BAR_COLUMNS)
    # Sorting 2.7M rows costs more than all indicators of a symbol; skip it when already sorted.
    keys = bars.select(
        (
            (pl.col("symbol") > pl.col("symbol").shift(1))
            | (
                (pl.col("symbol") == pl.col("symbol").shift(1))
                & (pl.col("session") >= pl.col("session").shift(1))
            )
        )
        .fill_null(True)
        .all()
    ).item()
    if not keys:
        bars = bars.sort(["symbol", "session"], maintain_order=True)
    counts = bars.group_by("symbol", maintain_order=True).len()
    blocks: list[tuple[str, int, int]] = []
    start = 0
    for sym, n in counts.iter_rows():
        blocks.append((str(sym), start, start + int(n)))
        start += int(n)
    return bars, blocks


def _skip_reason(
    sessions: np.ndarray, prices: dict[str, np.ndarray], v: np.ndarray, min_history: int
) -> str | None:
    """Why a symbol's bars cannot be featurized, or None."""
    c = prices["close"]
    n = c.shape[0]
    if n < min_history:
        return f"too little history: {n} bars, need at least {min_history} (the feature set's warm-up)"
    if n > 1 and (np.diff(sessions) <= 0).any():
        i = int(np.argmax(np.diff(sessions) <= 0)) + 1
        return f"duplicate session {sessions[i]} (row {i} of the symbol)"
    for name, arr in prices.items():
        bad = ~np.isfinite(arr) | (arr <= 0)
        if bad.any():
            i = int(np.argmax(bad))
            return f"invalid {name} {arr[i]!r} at session {sessions[i]} (row {i}); quarantine it upstream"
    bad_v = ~np.isfinite(v) | (v < 0)
    if bad_v.any():
        i = int(np.argmax(bad_v))
        return f"invalid volume {v[i]!r} at session {sessions[i]} (row {i})"
    if np.all(c == c[0]):
        return f"constant close price {c[0]} over all {n} bars"
    return None


def build_features_report(bars: pl.DataFrame, settings: FeatureSettings) -> FeatureResult:
    """:func:`build_features` plus the skipped symbols with their reasons (see :class:`FeatureResult`)."""
    return _build(bars, settings, ranks=True)


def _build(bars: pl.DataFrame, settings: FeatureSettings, *, ranks: bool) -> FeatureResult:
    # ranks=False exists for the benchmark, to time the per-symbol part alone; its frame lacks the ranks.
    t0 = time.perf_counter()
    fs = check_version(settings)
    version, base, min_history = fs.version, fs.base, fs.min_history
    horizon = settings.label_horizon
    if bars.is_empty():
        return FeatureResult(empty_features(version), {}, version, horizon, time.perf_counter() - t0)
    bars, blocks = _partition(bars)

    def col(name: str) -> np.ndarray:
        return np.ascontiguousarray(bars.get_column(name).to_numpy(), dtype=np.float64)

    o, h, lo, c, v = (col(x) for x in ("open", "high", "low", "close", "volume"))
    sessions = bars.get_column("session").to_numpy()
    skipped: dict[str, str] = {}
    kept: list[tuple[str, int, int]] = []
    for sym, a, b in blocks:
        prices = {"open": o[a:b], "high": h[a:b], "low": lo[a:b], "close": c[a:b]}
        reason = _skip_reason(sessions[a:b], prices, v[a:b], min_history)
        if reason is None:
            kept.append((sym, a, b))
        else:
            skipped[sym] = reason

    # Output arrays hold only the kept symbols, one contiguous row per feature, so each becomes a
    # polars column without another copy.
    n_out = sum(b - a for _, a, b in kept)
    feats = np.empty((len(base), n_out))
    signals = np.empty((len(fs.signals), n_out))
    fwd = np.empty(n_out)
    fwd1 = np.empty(n_out)
    ok = np.empty(n_out, dtype=bool)
    dead_rows: list[tuple[int, int]] = []
    pos = 0
    for sym, a, b in kept:
        end = pos + (b - a)
        block = fs.compute(o[a:b], h[a:b], lo[a:b], c[a:b], v[a:b], out=feats[:, pos:end])
        row_ok = ok[pos:end]
        np.isfinite(block).all(axis=0, out=row_ok)
        row_ok[: min_history - 1] = False
        if not row_ok[min_history - 1 :].any():
            tail = np.isfinite(block[:, min_history - 1 :]).any(axis=1)
            dead = [base[j] for j in np.flatnonzero(~tail)]
            skipped[sym] = (
                f"all-NaN feature column(s) {dead} after the warm-up"
                if dead
                else "no row with every feature defined after the warm-up"
            )
            dead_rows.append((pos, end))
        else:
            # Warm-up and undefined rows carry nulls, never zeros or half-converged values.
            block[:, : min_history - 1] = np.nan
            bad = np.flatnonzero(~row_ok[min_history - 1 :])
            if bad.size:
                block[:, bad + (min_history - 1)] = np.nan
        forward_return(c[a:b], horizon, out=fwd[pos:end])
        forward_return(c[a:b], 1, out=fwd1[pos:end])
        for j, name in enumerate(fs.signals):
            sig = past_return(c[a:b], int(name.removeprefix("ret_")), out=signals[j, pos:end])
            sig[~row_ok] = np.nan  # like the features: null on warm-up and unusable rows
        pos = end

    if skipped:
        # Prefect's run logger only exists inside a run, which needs prefect imported; importing it here
        # just to find out costs seconds.
        log = get_logger() if "prefect" in sys.modules else logging.getLogger("stockflow.features")
        for sym, reason in skipped.items():
            log.warning("features: skipped %s: %s", sym, reason)
    if len(dead_rows) == len(kept):
        return FeatureResult(empty_features(version), skipped, version, horizon, time.perf_counter() - t0)

    keys = bars.select("symbol", "session")
    if len(kept) < len(blocks):
        keys = pl.concat([keys.slice(a, b - a) for _, a, b in kept], rechunk=True)
    frame = keys.with_columns(
        *(pl.Series(name, feats[j], nan_to_null=True) for j, name in enumerate(base)),
        *(pl.Series(name, signals[j], nan_to_null=True) for j, name in enumerate(fs.signals)),
        pl.Series("warmup", ~ok),
        pl.Series("fwd_ret", fwd, nan_to_null=True),
        pl.Series("fwd_ret_1", fwd1, nan_to_null=True),
    )
    if dead_rows:
        alive = np.ones(n_out, dtype=bool)
        for a, b in dead_rows:
            alive[a:b] = False
        frame = frame.filter(pl.Series(alive))
    y_up = (
        pl.when(pl.col("fwd_ret").is_null())
        .then(None)
        .otherwise((pl.col("fwd_ret") > 0).cast(pl.Int8))
        .alias("y_up")
    )
    frame = with_cross_sectional_labels(frame.with_columns(y_up))
    if not ranks:
        return FeatureResult(frame, skipped, version, horizon, time.perf_counter() - t0)
    frame = _with_ranks(frame, fs.ranked)
    return FeatureResult(
        frame.select(output_columns(version)), skipped, version, horizon, time.perf_counter() - t0
    )


def with_cross_sectional_labels(frame: pl.DataFrame) -> pl.DataFrame:
    """Add the cross-sectional labels of each row against its universe (the usable rows of the session
    that have a forward return): ``fwd_excess`` = fwd_ret minus the universe's mean fwd_ret (the excess
    over an equal-weight book of the universe), ``fwd_rank`` = its mid-rank percentile in (0, 1), and
    ``y_out`` = 1 where the stock outperforms the universe (fwd_excess > 0), else 0. Null outside the
    universe (warm-up rows, the last h rows of a symbol). Labels look ahead by design; they are never
    features."""
    day = pl.col("session").to_physical()
    member = pl.col("fwd_ret").is_not_null() & ~pl.col("warmup")
    r = pl.when(member).then(pl.col("fwd_ret"))
    excess = (r - r.mean().over(day)).alias("fwd_excess")
    frame = frame.with_columns(excess)
    n = member.sum().over(day)
    return frame.with_columns(
        ((pl.col("fwd_excess").rank("average").over(day) - 0.5) / n).alias("fwd_rank"),
        pl.when(pl.col("fwd_excess").is_null())
        .then(None)
        .otherwise((pl.col("fwd_excess") > 0).cast(pl.Int8))
        .alias("y_out"),
    )


def _with_ranks(frame: pl.DataFrame, ranked: tuple[str, ...]) -> pl.DataFrame:
    """Add the mid-rank percentile of each ranked feature among the usable rows of the same session.

    (rank - 0.5) / n lies in (0, 1), ties get the average rank and a lone symbol gets 0.5. Only values of
    the same session enter, so no rank can see the future; warm-up rows (null) neither get nor affect a
    rank. Grouping on the session's integer day number is cheaper than on the date.
    """
    day = pl.col("session").to_physical()
    n = (~pl.col("warmup")).sum().over(day)
    return frame.with_columns(
        ((pl.col(f).rank("average").over(day) - 0.5) / n).alias(f"{RANK_PREFIX}{f}") for f in ranked
    )


def required_history(settings: FeatureSettings) -> int:
    """Bars per symbol a live run must load so that its last row is usable."""
    return max(settings.min_history, feature_set(settings.feature_set_version).min_history)
