"""The Alpha158-style feature set (a158-v1): Qlib's operators checked against pandas, and the same
leakage guards as ta-v1 (truncation invariance, warm-up stability, planted leaks that must fail)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable

import numpy as np
import pandas as pd
import polars as pl
import pytest

from stockflow.config.sections import FeatureSettings
from stockflow.errors import ConfigError
from stockflow.features import build_features, feature_set, output_columns, required_history
from stockflow.features.alpha158 import BASE, MIN_HISTORY, VERSION, alpha158_features
from stockflow.features.leakage import check_truncation_invariance, check_warmup_stability

A158 = FeatureSettings(feature_set_version=VERSION)


def a158(bars: pl.DataFrame) -> pl.DataFrame:
    return build_features(bars, A158)


def _anchors(bars: pl.DataFrame) -> list[dt.date]:
    sessions = bars["session"].unique().sort().to_list()
    return [sessions[i] for i in (900, 2600, len(sessions) - 1)]


def test_feature_set_registry_and_columns() -> None:
    fs = feature_set(VERSION)
    assert len(fs.columns) == 9 + 17 * 5 == len(BASE)
    assert fs.min_history == MIN_HISTORY == 61
    assert output_columns(VERSION)[-6:] == ("fwd_ret", "y_up", "fwd_ret_1", "fwd_excess", "fwd_rank", "y_out")
    assert required_history(A158) >= MIN_HISTORY
    with pytest.raises(ConfigError, match="a158-v1"):
        feature_set("a158-v0")


def test_operators_match_pandas_rolling(aapl: pl.DataFrame) -> None:
    g = aapl.sort("session").head(400)
    o, h, lo, c, v = (g[x].to_numpy().astype(np.float64) for x in ("open", "high", "low", "close", "volume"))
    out = alpha158_features(o, h, lo, c, v)
    col = {n: out[i] for i, n in enumerate(BASE)}
    s, hs, ls, vs = pd.Series(c), pd.Series(h), pd.Series(lo), pd.Series(v)
    d = 20
    ref = {
        "ROC20": s.shift(d) / s,
        "MA20": s.rolling(d).mean() / s,
        "STD20": s.rolling(d).std() / s,
        "MAX20": hs.rolling(d).max() / s,
        "MIN20": ls.rolling(d).min() / s,
        "QTLU20": s.rolling(d).quantile(0.8) / s,
        "QTLD20": s.rolling(d).quantile(0.2) / s,
        "RANK20": s.rolling(d).rank(pct=True),
        "CORR20": s.rolling(d).corr(np.log1p(vs)),
        "CNTP20": (s.diff() > 0).astype(float).where(s.diff().notna()).rolling(d).mean(),
        "VMA20": vs.rolling(d).mean() / vs,
        "KMID": (s - pd.Series(o)) / pd.Series(o),
    }
    t = np.arange(d, dtype=float)
    ref["BETA20"] = s.rolling(d).apply(lambda w: np.polyfit(t, w, 1)[0], raw=True) / s
    ref["RSQR20"] = s.rolling(d).apply(lambda w: np.corrcoef(t, w)[0, 1] ** 2, raw=True)
    ref["RESI20"] = s.rolling(d).apply(lambda w: w[-1] - np.polyval(np.polyfit(t, w, 1), t[-1]), raw=True) / s
    for name, expected in ref.items():
        got = col[name][MIN_HISTORY:]
        np.testing.assert_allclose(got, expected.to_numpy()[MIN_HISTORY:], rtol=1e-7, atol=1e-9, err_msg=name)


def test_a158_is_truncation_invariant(panel: pl.DataFrame) -> None:
    cuts = [40, MIN_HISTORY - 2, MIN_HISTORY - 1, 700, 1900, 3000]
    violations = check_truncation_invariance(a158, panel, cuts)
    assert violations == [], "\n".join(map(str, violations[:10]))


def test_a158_is_warmup_stable_from_its_min_history(panel: pl.DataFrame) -> None:
    violations = check_warmup_stability(a158, panel, [MIN_HISTORY, MIN_HISTORY + 13], anchors=_anchors(panel))
    assert violations == [], "\n".join(map(str, violations[:10]))
    # One bar short of the 60-session window over differences, the row is still warm-up.
    assert check_warmup_stability(a158, panel, [MIN_HISTORY - 1], anchors=_anchors(panel)[:1])


def _with(extra: pl.Expr) -> Callable[[pl.DataFrame], pl.DataFrame]:
    def builder(bars: pl.DataFrame) -> pl.DataFrame:
        return a158(bars).join(
            bars.with_columns(extra.alias("leak")).select("symbol", "session", "leak"),
            on=["symbol", "session"],
        )

    return builder


@pytest.mark.parametrize(
    "leak",
    [
        pl.col("close").shift(-1).over("symbol") / pl.col("close") - 1,
        pl.col("close") / pl.col("close").mean().over("symbol"),
    ],
    ids=["next_bar", "whole_series"],
)
def test_planted_leak_beside_a158_fails_both_checks(panel: pl.DataFrame, leak: pl.Expr) -> None:
    leaky = _with(leak)
    truncation = check_truncation_invariance(leaky, panel, [700, 1900])
    stability = check_warmup_stability(leaky, panel, [MIN_HISTORY, 300], anchors=_anchors(panel)[1:])
    assert {v.column for v in truncation} == {"leak"}
    assert {v.column for v in stability} == {"leak"}


def test_cross_sectional_labels(panel: pl.DataFrame) -> None:
    f = a158(panel).filter(~pl.col("warmup") & pl.col("fwd_ret").is_not_null())
    per_day = f.group_by("session").agg(
        pl.col("fwd_excess").mean().alias("m"),
        (pl.col("y_out") == (pl.col("fwd_excess") > 0).cast(pl.Int8)).all().alias("ok"),
        pl.col("fwd_rank").min().alias("lo"),
        pl.col("fwd_rank").max().alias("hi"),
    )
    assert per_day["m"].abs().max() < 1e-12  # excess over the universe's mean sums to zero
    assert per_day["ok"].all() and per_day["lo"].min() > 0 and per_day["hi"].max() < 1
