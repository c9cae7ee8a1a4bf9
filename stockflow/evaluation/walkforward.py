"""Walk-forward folds over sessions, with a purge gap so no training label reaches into the test period.

A label of session t uses closes up to t+h (h = label horizon). With ``purge_days`` sessions left out
between the last training session and the first test session, a training label ends at most
``purge_days - h`` sessions before the test starts; ``purge_days >= h`` is enforced. :func:`split`
additionally drops any training row whose own label (per symbol, so gaps in a symbol's bars count)
would end inside the test period.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from dataclasses import dataclass

import polars as pl

from stockflow.errors import ConfigError, DataError


@dataclass(frozen=True)
class Fold:
    """One walk-forward step: train on ``train_sessions``, test on ``test_sessions`` (disjoint, later)."""

    index: int
    train_sessions: tuple[dt.date, ...]
    test_sessions: tuple[dt.date, ...]
    purge_sessions: tuple[dt.date, ...] = ()

    @property
    def train_start(self) -> dt.date:
        """First training session."""
        return self.train_sessions[0]

    @property
    def train_end(self) -> dt.date:
        """Last training session."""
        return self.train_sessions[-1]

    @property
    def test_start(self) -> dt.date:
        """First test session."""
        return self.test_sessions[0]

    @property
    def test_end(self) -> dt.date:
        """Last test session."""
        return self.test_sessions[-1]

    def describe(self) -> dict[str, object]:
        """Plain data for reports and the registry."""
        return {
            "fold": self.index,
            "train_start": self.train_start.isoformat(),
            "train_end": self.train_end.isoformat(),
            "train_sessions": len(self.train_sessions),
            "purge_sessions": len(self.purge_sessions),
            "test_start": self.test_start.isoformat(),
            "test_end": self.test_end.isoformat(),
            "test_sessions": len(self.test_sessions),
        }


def folds(  # noqa: PLR0917 - positional signature is the documented contract
    sessions: Iterable[dt.date],
    train_days: int,
    test_days: int,
    purge_days: int,
    n_folds: int,
    expanding: bool = True,
    *,
    label_horizon: int = 1,
) -> list[Fold]:
    """The last ``n_folds`` consecutive test windows of ``test_days`` sessions, ending at the last session.

    Each is preceded by ``purge_days`` unused sessions and a training window: ``train_days`` sessions
    (rolling), or everything from the first fold's training start (expanding, so every fold has at
    least ``train_days``). When the sessions cannot hold ``n_folds`` folds, as many as fit are returned
    (the oldest are dropped); none fitting is a :class:`DataError`. ``purge_days < label_horizon`` is a
    :class:`ConfigError`: a training label would then overlap the test period.
    """
    days = sorted(set(sessions))
    if min(train_days, test_days, n_folds) < 1:
        raise ConfigError(
            f"train_days, test_days and n_folds must be >= 1 (got {train_days}, {test_days}, {n_folds})"
        )
    if purge_days < label_horizon:
        raise ConfigError(
            f"purge_days ({purge_days}) must be at least the label horizon ({label_horizon}): "
            "otherwise the labels of the last training rows use prices from the test period"
        )
    fit = (len(days) - train_days - purge_days) // test_days
    if fit < 1:
        raise DataError(
            f"{len(days)} sessions cannot hold one walk-forward fold "
            f"(train {train_days} + purge {purge_days} + test {test_days})",
            rule="walk_forward",
        )
    n = min(n_folds, fit)
    first_test = len(days) - n * test_days
    first_train = first_test - purge_days - train_days
    out = []
    for k in range(n):
        t0 = first_test + k * test_days
        train_stop = t0 - purge_days
        train_start = first_train if expanding else train_stop - train_days
        out.append(
            Fold(
                index=k,
                train_sessions=tuple(days[train_start:train_stop]),
                test_sessions=tuple(days[t0 : t0 + test_days]),
                purge_sessions=tuple(days[train_stop:t0]),
            )
        )
        assert out[-1].train_end < out[-1].test_start and len(out[-1].purge_sessions) == purge_days
    return out


def split(frame: pl.DataFrame, fold: Fold, label_horizon: int) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Train and test rows of a feature frame for ``fold``.

    Training rows: sessions of the training window, outside the warm-up, with a label, and whose label
    ends (``label_horizon`` bars later for that symbol) before the test period starts. Test rows:
    sessions of the test window outside the warm-up (labels may be null at the very end).
    """
    # The label's end is the session h bars later in the symbol's own rows, taken before any filtering.
    # Row masks over ``frame`` itself: no intermediate copy of the usable rows (the largest frame of a
    # fold on a worker), the same rows in the same order.
    label_end = pl.col("session").shift(-label_horizon).over("symbol", order_by="session")
    usable = ~pl.col("warmup") if "warmup" in frame.columns else pl.lit(True)
    masks = frame.select(
        (
            usable
            & pl.col("session").is_in(list(fold.train_sessions))
            & pl.col("y_up").is_not_null()
            & (label_end < fold.test_start)
        ).alias("train"),
        (usable & pl.col("session").is_in(list(fold.test_sessions))).alias("test"),
    )
    return frame.filter(masks.get_column("train")), frame.filter(masks.get_column("test"))
