"""Ensemble voting: k-of-n consensus, conflicts, performance weights without look-ahead."""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest

from stockflow.backtest.ensemble import Ensemble, member_weights, vote
from stockflow.backtest.panel import NO_OPINION, build_panel
from stockflow.backtest.strategies import BollingerZScore, MacdTrend, RsiReversion, SmaCrossover
from stockflow.errors import ConfigError
from tests.backtest.conftest import bars_from_prices


def _targets(*cols: list[int]) -> list[np.ndarray]:
    return [np.array(c, dtype=np.int8).reshape(-1, 1) for c in cols]


def test_k_of_n_consensus_and_conflict_rules() -> None:
    # five sessions, three members: votes per session
    a = [1, 1, 1, -1, NO_OPINION]
    b = [1, 1, 0, -1, NO_OPINION]
    c = [1, -1, 0, 1, NO_OPINION]
    t = _targets(a, b, c)
    w = np.full((5, 3), 1 / 3)
    sig, strength, size, has = vote(t, w, k=2, conflict="reduce")
    assert sig[:, 0].tolist() == [1, 1, 0, -1, 0]
    assert size[:, 0].tolist() == pytest.approx([1.0, 0.5, 1.0, 0.5, 1.0])  # 1 - dissent / support
    assert has[:, 0].tolist() == [True, True, True, True, False]
    assert strength[0, 0] == pytest.approx(1.0) and strength[1, 0] == pytest.approx(1 / 3)
    skip, _, _, _ = vote(t, w, k=2, conflict="skip")
    assert skip[:, 0].tolist() == [1, 0, 0, 0, 0]  # any dissent skips
    unanimous, _, _, _ = vote(t, w, k=3, conflict="reduce")
    assert unanimous[:, 0].tolist() == [1, 0, 0, 0, 0]


def test_performance_weights_favour_the_member_that_earned_and_never_look_ahead() -> None:
    # Price rises 1% a day for 30 sessions then falls 1% a day: "long" earns first, "flat" never does.
    closes = [100 * 1.01**i for i in range(30)] + [100 * 1.01**29 * 0.99**i for i in range(1, 31)]
    bars = bars_from_prices("UP", [(c, c, c, c) for c in closes])
    panel = build_panel(bars)
    long_ = np.ones((60, 1), dtype=np.int8)
    flat = np.zeros((60, 1), dtype=np.int8)
    w = member_weights(panel, [long_, flat], "performance", lookback=10)
    assert w[0].tolist() == [0.5, 0.5]  # nothing realised yet
    assert w[20].tolist() == [1.0, 0.0]
    assert w[45].tolist() == [0.5, 0.5]  # long's recent performance is negative: no one positive
    # Weights at t use only returns realised by t's close: truncating the future changes nothing.
    short_panel = build_panel(bars.head(35))
    w2 = member_weights(short_panel, [long_[:35], flat[:35]], "performance", lookback=10)
    assert np.allclose(w2, w[:35])


def test_ensemble_of_strategies(bars: pl.DataFrame) -> None:
    members = (SmaCrossover(5, 20), RsiReversion(), MacdTrend(), BollingerZScore())
    ens = Ensemble(members=members, k=3, weighting="equal", conflict="skip")
    out = ens.signals(bars)
    assert {"symbol", "session", "signal", "strength", "size"} <= set(out.columns)
    sigs = {m.name: m.signals(bars) for m in members}
    joined = out.join(
        pl.concat(
            [s.select("symbol", "session", pl.col("signal").alias(n)) for n, s in sigs.items()], how="align"
        ),
        on=["symbol", "session"],
        how="left",
    ).fill_null(0)
    longs = sum((joined[m.name] == 1).cast(pl.Int32) for m in members)
    shorts = sum((joined[m.name] == -1).cast(pl.Int32) for m in members)
    want = np.where((longs >= 3) & (shorts == 0), 1, np.where((shorts >= 3) & (longs == 0), -1, 0))
    assert out["signal"].to_list() == want.tolist()
    perf = Ensemble(members=members, weighting="performance").signals(bars)
    assert perf.height == out.height and perf["size"].is_between(0, 1).all()


def test_ensemble_parameter_errors() -> None:
    with pytest.raises(ConfigError, match=r"ensemble\.members needs at least 2"):
        Ensemble(members=(SmaCrossover(),))
    with pytest.raises(ConfigError, match=r"ensemble.k \(3\) must not exceed"):
        Ensemble(members=(SmaCrossover(), RsiReversion()), k=3)
    with pytest.raises(ConfigError, match=r"ensemble\.conflict"):
        Ensemble(members=(SmaCrossover(), RsiReversion()), conflict="maybe")  # type: ignore[arg-type]
