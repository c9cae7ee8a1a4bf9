"""Ensemble voting over strategies: k-of-n consensus, performance weights, conflict handling.

Each member votes per (symbol, session) with its signal (1 long, -1 bearish, 0 or no row = abstain).
With weights ``w_i`` (summing to 1) the long support is ``L = sum(w_i for long votes)`` and the short
support ``S`` likewise. The ensemble is long when ``L >= k / n`` (with equal weights: at least ``k``
of the ``n`` members vote long), bearish when ``S >= k / n``, else flat. A long consensus that meets
dissent (``S > 0``) is a conflict: ``conflict="skip"`` stays flat, ``conflict="reduce"`` keeps the
signal with ``size = 1 - S / L`` (the engine scales the position by it).

``weighting="performance"`` weights members by their recent out-of-sample performance: the summed
daily return of each member's long book (equal weight over the symbols it is long) over the last
``lookback`` sessions, counting only returns already realised at the session's close (a signal at t
earns close[t+1]/close[t]-1, known at t+1). Negative performance gets weight 0; when no member has
positive performance the weights are equal.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar, Literal

import numpy as np
import polars as pl

from stockflow.backtest.panel import NO_OPINION, Panel, align_signals, build_panel, long_frame
from stockflow.backtest.strategies.base import Strategy, empty_signals, require, require_int

Weighting = Literal["equal", "performance"]
Conflict = Literal["reduce", "skip"]


def member_weights(
    panel: Panel, targets: Sequence[np.ndarray], weighting: Weighting, lookback: int
) -> np.ndarray:
    """Weights (T, n_members) per session; rows sum to 1. No look-ahead (see module docstring)."""
    T = panel.shape[0]
    n = len(targets)
    if weighting == "equal" or T < 2:
        return np.full((T, n), 1.0 / n)
    close = panel.close
    with np.errstate(invalid="ignore", divide="ignore"):
        fwd = np.full_like(close, np.nan)
        fwd[:-1] = close[1:] / close[:-1] - 1.0  # return earned by a position held from close t to t+1
    fwd = np.nan_to_num(fwd, nan=0.0)
    perf = np.zeros((T, n))
    for j, tgt in enumerate(targets):
        long_ = tgt == 1
        count = long_.sum(axis=1)
        # daily[t]: the member's long book return from close t to close t+1 (realised at t+1).
        daily = np.where(count > 0, (fwd * long_).sum(axis=1) / np.maximum(count, 1), 0.0)
        realised = np.zeros(T)
        realised[1:] = daily[:-1]  # known at the close of t: returns of signals up to t-1
        csum = np.cumsum(realised)
        past = np.concatenate([np.zeros(lookback), csum[:-lookback]]) if lookback < T else np.zeros(T)
        perf[:, j] = csum - past
    pos = np.maximum(perf, 0.0)
    total = pos.sum(axis=1, keepdims=True)
    return np.where(total > 0, pos / np.where(total > 0, total, 1.0), 1.0 / n)  # type: ignore[no-any-return]


def vote(
    targets: Sequence[np.ndarray],
    weights: np.ndarray,
    k: int,
    conflict: Conflict,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Ensemble signal, strength, size and "has an opinion" mask from member target panels."""
    n = len(targets)
    shape = targets[0].shape
    long_w = np.zeros(shape)
    short_w = np.zeros(shape)
    any_opinion = np.zeros(shape, dtype=bool)
    for j, tgt in enumerate(targets):
        w = weights[:, j][:, None]
        long_w += np.where(tgt == 1, w, 0.0)
        short_w += np.where(tgt == -1, w, 0.0)
        any_opinion |= tgt != NO_OPINION
    need = k / n - 1e-12
    is_long = long_w >= need
    is_short = (short_w >= need) & ~is_long
    signal = np.where(is_long, 1, np.where(is_short, -1, 0)).astype(np.int8)
    size = np.ones(shape)
    with np.errstate(invalid="ignore", divide="ignore"):
        if conflict == "skip":
            signal[is_long & (short_w > 0)] = 0
            signal[is_short & (long_w > 0)] = 0
        else:
            size = np.where(is_long, 1.0 - short_w / long_w, np.where(is_short, 1.0 - long_w / short_w, 1.0))
    strength = np.clip(np.abs(long_w - short_w), 0.0, 1.0)
    return signal, strength, np.clip(np.nan_to_num(size, nan=1.0), 0.0, 1.0), any_opinion


@dataclass(frozen=True)
class Ensemble:
    """A strategy that votes over ``members`` (see the module docstring)."""

    name: ClassVar[str] = "ensemble"
    members: tuple[Strategy, ...] = field(default=())
    k: int | None = None
    weighting: Weighting = "equal"
    lookback: int = 63
    conflict: Conflict = "reduce"

    def __post_init__(self) -> None:
        require(
            len(self.members) >= 2, f"ensemble.members needs at least 2 strategies, got {len(self.members)}"
        )
        names = [m.name for m in self.members]
        require(len(set(names)) == len(names), f"ensemble.members must have distinct names, got {names}")
        if self.k is not None:
            require_int("ensemble", "k", self.k, 1)
            require(
                self.k <= len(self.members),
                f"ensemble.k ({self.k}) must not exceed the number of members ({len(self.members)})",
            )
        require(
            self.weighting in ("equal", "performance"),
            f"ensemble.weighting must be 'equal' or 'performance', got {self.weighting!r}",
        )
        require(
            self.conflict in ("reduce", "skip"),
            f"ensemble.conflict must be 'reduce' or 'skip', got {self.conflict!r}",
        )
        require_int("ensemble", "lookback", self.lookback, 1)

    @property
    def quorum(self) -> int:
        """k: members that must agree (default: a majority)."""
        return self.k if self.k is not None else len(self.members) // 2 + 1

    def params(self) -> dict[str, Any]:
        """Members, k, weighting, lookback and conflict rule."""
        return {
            "members": [m.name for m in self.members],
            "k": self.quorum,
            "weighting": self.weighting,
            "lookback": self.lookback,
            "conflict": self.conflict,
        }

    def signals(self, bars: pl.DataFrame) -> pl.DataFrame:
        """Compute every member's signals on ``bars``, then vote."""
        return self.combine(bars, {m.name: m.signals(bars) for m in self.members})

    def combine(self, bars: pl.DataFrame | Panel, member_signals: Mapping[str, pl.DataFrame]) -> pl.DataFrame:
        """Vote over already computed member signals (keyed by member name)."""
        missing = [m.name for m in self.members if m.name not in member_signals]
        require(not missing, f"ensemble: no signals given for member(s) {missing}")
        panel = bars if isinstance(bars, Panel) else build_panel(bars)
        return self.vote_targets(
            panel, [align_signals(member_signals[m.name], panel).target for m in self.members]
        )

    def vote_targets(self, panel: Panel, targets: Sequence[np.ndarray]) -> pl.DataFrame:
        """Vote over the members' target panels (``align_signals(...).target`` on ``panel``, in members'
        order): what :meth:`combine` does after aligning; a cluster sends these int8 panels, not frames."""
        weights = member_weights(panel, targets, self.weighting, self.lookback)
        signal, strength, size, has = vote(targets, weights, self.quorum, self.conflict)
        # Symbol-major order (symbols are sorted) gives a frame sorted by symbol and session for free.
        si, ti = np.nonzero(has.T)
        if ti.size == 0:
            return empty_signals().with_columns(pl.lit(None, dtype=pl.Float64).alias("size"))
        return long_frame(panel, ti, si).with_columns(
            pl.Series("signal", signal[ti, si], dtype=pl.Int8),
            pl.Series("strength", strength[ti, si], dtype=pl.Float64),
            pl.Series("size", size[ti, si], dtype=pl.Float64),
        )
