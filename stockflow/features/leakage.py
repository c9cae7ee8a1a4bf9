"""Leakage guards: reusable checks that a feature builder uses no future data and no unstable warm-up.

- :func:`check_truncation_invariance` (the idea of freqtrade's lookahead-analysis): features computed on
  the bars up to a cut point equal the full-data features up to that point. Any use of a later bar
  (a shift the wrong way, a centred window, a statistic of the whole series, a rank that looks at other
  sessions) breaks it.
- :func:`check_warmup_stability` (the idea of freqtrade's recursive-analysis): the features of an
  anchor row are defined and agree, within a tolerance, whatever the length of the history loaded
  before it. It sets how much history a live run must load (:func:`min_stable_history`), and a feature
  that needs the future is undefined on the last row whatever the history, so it fails here too.

A builder is any ``Callable[[pl.DataFrame], pl.DataFrame]`` from canonical bars to a frame with
``symbol`` and ``session``; label columns are never compared (they look ahead by design).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

import numpy as np
import polars as pl

from stockflow.features.indicators import symbol_features
from stockflow.features.spec import BASE_FEATURES, LABEL_COLUMNS, STABILITY_ATOL

Builder = Callable[[pl.DataFrame], pl.DataFrame]
_KEYS = ("symbol", "session")


@dataclass(frozen=True)
class Violation:
    """One disagreement found by a leakage check."""

    check: str  # "truncation" or "warmup_stability"
    symbol: str
    session: dt.date
    column: str
    expected: float | None
    got: float | None
    detail: str

    def __str__(self) -> str:
        return (
            f"{self.check}: {self.symbol} {self.session} {self.column}: expected {self.expected}, "
            f"got {self.got} ({self.detail})"
        )


def _compared(frame: pl.DataFrame, columns: Sequence[str] | None) -> list[str]:
    if columns is not None:
        return list(columns)
    return [c for c in frame.columns if c not in _KEYS and c not in LABEL_COLUMNS]


def _to_float(frame: pl.DataFrame, cols: Sequence[str]) -> pl.DataFrame:
    return frame.with_columns(pl.col(c).cast(pl.Float64) for c in cols)


def _diff(
    check: str,
    *,
    reference: pl.DataFrame,
    candidate: pl.DataFrame,
    cols: Sequence[str],
    atol: float,
    rtol: float,
    detail: str,
    limit: int,
) -> list[Violation]:
    """Rows of ``candidate`` whose columns disagree with ``reference`` (joined on symbol, session)."""
    ref = _to_float(reference.select(*_KEYS, *cols), cols)
    cand = _to_float(candidate.select(*_KEYS, *cols), cols)
    joined = ref.join(cand, on=list(_KEYS), how="full", suffix="__got", coalesce=True)
    if "warmup" in cols:
        # A row one side left out (a symbol skipped for too little history) is as unusable as a warm-up
        # row with null features: count it as one, so only usable rows can disagree.
        joined = joined.with_columns(pl.col("warmup", "warmup__got").fill_null(1.0))
    out: list[Violation] = []
    for c in cols:
        e, g = pl.col(c), pl.col(f"{c}__got")
        bad = (e.is_null() != g.is_null()) | (
            e.is_not_null() & g.is_not_null() & ((e - g).abs() > atol + rtol * e.abs())
        )
        rows = joined.filter(bad).select(*_KEYS, e.alias("e"), g.alias("g")).head(limit)
        for sym, session, exp, got in rows.iter_rows():
            out.append(Violation(check, sym, session, c, exp, got, detail))
    return out


def _sessions(bars: pl.DataFrame) -> list[dt.date]:
    return bars.get_column("session").unique().sort().to_list()


def check_truncation_invariance(
    builder: Builder,
    bars: pl.DataFrame,
    cut_points: Iterable[dt.date | int],
    *,
    columns: Sequence[str] | None = None,
    atol: float = 1e-9,
    rtol: float = 1e-9,
    limit: int = 20,
) -> list[Violation]:
    """Features of ``bars`` cut after each cut point must equal the full-data features up to that point.

    A cut point is a session (date) or an index into the sorted distinct sessions. Every row up to the
    cut is compared, in every column but symbol, session and the labels (or ``columns``); a value that
    is null in one frame and not in the other is a violation. At most ``limit`` violations per column
    and cut are listed.
    """
    full = builder(bars)
    cols = _compared(full, columns)
    sessions = _sessions(bars)
    out: list[Violation] = []
    for cut in cut_points:
        day = sessions[cut] if isinstance(cut, int) else cut
        truncated = builder(bars.filter(pl.col("session") <= day))
        reference = full.filter(pl.col("session") <= day)
        out += _diff(
            "truncation",
            reference=reference,
            candidate=truncated,
            cols=cols,
            atol=atol,
            rtol=rtol,
            detail=f"bars cut after {day}",
            limit=limit,
        )
    return out


def _window(bars: pl.DataFrame, anchor: dt.date, length: int) -> pl.DataFrame:
    """The last ``length`` bars of each symbol up to and including ``anchor``."""
    upto = bars.filter(pl.col("session") <= anchor).sort(list(_KEYS))
    # Signed arithmetic: pl.len() is unsigned and a symbol may have fewer than ``length`` bars.
    n = pl.len().over("symbol").cast(pl.Int64)
    return upto.filter(pl.int_range(pl.len(), dtype=pl.Int64).over("symbol") >= n - length)


def check_warmup_stability(
    builder: Builder,
    bars: pl.DataFrame,
    lengths: Iterable[int],
    *,
    anchors: Sequence[dt.date] | None = None,
    columns: Sequence[str] | None = None,
    atol: float = STABILITY_ATOL,
    limit: int = 20,
) -> list[Violation]:
    """The anchor row's features from each history length must be defined and agree with the longest history.

    For each anchor session (default: the last one) and each length L, the builder runs on the last L
    bars of every symbol up to the anchor; the anchor row must exist, must not be flagged ``warmup``
    (when the builder has that column), must have every compared column defined, and must equal the
    features computed from all bars up to the anchor within ``atol``.
    """
    anchors = list(anchors) if anchors is not None else [_sessions(bars)[-1]]
    out: list[Violation] = []
    for anchor in anchors:
        reference = builder(bars.filter(pl.col("session") <= anchor))
        ref_row = reference.filter(pl.col("session") == anchor)
        cols = _compared(reference, columns)
        value_cols = [c for c in cols if c != "warmup"]
        for length in lengths:
            got = builder(_window(bars, anchor, length)).filter(pl.col("session") == anchor)
            detail = f"history of {length} bars up to {anchor}"
            missing = ref_row.join(got, on=list(_KEYS), how="anti")
            for sym, session in missing.select(_KEYS).iter_rows():
                out.append(
                    Violation("warmup_stability", sym, session, "<row>", None, None, f"row missing, {detail}")
                )
            if "warmup" in got.columns:
                for sym, session in got.filter(pl.col("warmup")).select(_KEYS).iter_rows():
                    out.append(
                        Violation(
                            "warmup_stability", sym, session, "warmup", 0.0, 1.0, f"still warm-up, {detail}"
                        )
                    )
            for c in value_cols:
                for sym, session in got.filter(pl.col(c).is_null()).select(_KEYS).head(limit).iter_rows():
                    out.append(
                        Violation(
                            "warmup_stability", sym, session, c, None, None, f"undefined at the row, {detail}"
                        )
                    )
            out += _diff(
                "warmup_stability",
                reference=ref_row,
                candidate=got,
                cols=value_cols,
                atol=atol,
                rtol=0.0,
                detail=detail,
                limit=limit,
            )
    return out


def min_stable_history(
    builder: Builder,
    bars: pl.DataFrame,
    candidates: Iterable[int],
    *,
    anchors: Sequence[dt.date] | None = None,
    columns: Sequence[str] | None = None,
    atol: float = STABILITY_ATOL,
) -> int | None:
    """The smallest candidate length from which every longer one passes :func:`check_warmup_stability`."""
    best: int | None = None
    for length in sorted(candidates, reverse=True):
        if check_warmup_stability(
            builder, bars, [length], anchors=anchors, columns=columns, atol=atol, limit=1
        ):
            break
        best = length
    return best


def unmasked_features(bars: pl.DataFrame) -> pl.DataFrame:
    """Per-symbol TA-Lib features with no warm-up mask (NaN inside each lookback turned to null).

    This is what :func:`min_stable_history` measures to derive ``MIN_HISTORY``: the masked builder
    would only echo the constant back.
    """
    bars = bars.sort(list(_KEYS))
    parts = []
    for _, g in bars.group_by("symbol", maintain_order=True):
        arrays = [
            g.get_column(c).to_numpy().astype(np.float64) for c in ("open", "high", "low", "close", "volume")
        ]
        block = symbol_features(*arrays)
        parts.append(
            g.select(_KEYS).with_columns(
                pl.Series(name, block[j], nan_to_null=True) for j, name in enumerate(BASE_FEATURES)
            )
        )
    return pl.concat(parts)
