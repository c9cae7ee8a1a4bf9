"""build_features: the contract other areas rely on, labels, warm-up, ranks, bad input."""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest

from stockflow.config.sections import FeatureSettings
from stockflow.errors import ConfigError, DataError
from stockflow.features import (
    FEATURE_COLUMNS,
    FEATURE_SET_VERSION,
    MIN_HISTORY,
    OUTPUT_COLUMNS,
    build_features,
    build_features_report,
    spec_fingerprint,
)

#: Fingerprint of the feature definitions per version: changing a feature without bumping
#: FEATURE_SET_VERSION makes this test fail (models would silently get different inputs).
PINNED = {"ta-v1": "0b6acc454031b432"}


def test_version_is_bumped_when_the_spec_changes() -> None:
    assert PINNED.get(FEATURE_SET_VERSION) == spec_fingerprint()


def test_contract_columns_and_types(panel: pl.DataFrame, fsettings: FeatureSettings) -> None:
    out = build_features(panel, fsettings)
    assert tuple(out.columns) == OUTPUT_COLUMNS
    assert out.schema["warmup"] == pl.Boolean
    assert out.schema["y_up"] == pl.Int8
    assert all(out.schema[c] == pl.Float64 for c in FEATURE_COLUMNS)
    assert out.height == panel.height
    assert out.select("symbol", "session").equals(panel.select("symbol", "session"))


def test_warmup_rows_are_null_not_zero_and_usable_rows_complete(
    panel: pl.DataFrame, fsettings: FeatureSettings
) -> None:
    out = build_features(panel, fsettings)
    idx = out.with_columns(pl.int_range(pl.len()).over("symbol").alias("i"))
    warm = idx.filter(pl.col("warmup"))
    assert (warm["i"] < MIN_HISTORY - 1).all()
    assert warm.height == 4 * (MIN_HISTORY - 1)
    assert warm.select(pl.all_horizontal(pl.col(FEATURE_COLUMNS).is_null()).all()).item()
    usable = out.filter(~pl.col("warmup"))
    assert usable.select(pl.col(FEATURE_COLUMNS).null_count().sum()).sum_horizontal().item() == 0
    assert np.isfinite(usable.select(FEATURE_COLUMNS).to_numpy()).all()


def test_features_are_scale_free(aapl: pl.DataFrame, fsettings: FeatureSettings) -> None:
    scaled = aapl.with_columns(pl.col("open", "high", "low", "close") * 37.5, pl.col("volume") * 3)
    a = build_features(aapl, fsettings).select(FEATURE_COLUMNS).drop("volume_z_20").to_numpy()
    b = build_features(scaled, fsettings).select(FEATURE_COLUMNS).drop("volume_z_20").to_numpy()
    np.testing.assert_allclose(a, b, rtol=1e-7, atol=1e-9)


@pytest.mark.parametrize("horizon", [1, 5])
def test_labels_come_from_the_next_bars_only(aapl: pl.DataFrame, horizon: int) -> None:
    out = build_features(aapl, FeatureSettings(label_horizon=horizon))
    close = aapl["close"].to_numpy()
    fwd = out["fwd_ret"].to_numpy()
    np.testing.assert_allclose(fwd[:-horizon], close[horizon:] / close[:-horizon] - 1.0)
    assert out["fwd_ret"].tail(horizon).is_null().all()
    assert out["y_up"].tail(horizon).is_null().all()
    y = out["y_up"].to_numpy()[:-horizon]
    assert ((fwd[:-horizon] > 0).astype(np.int8) == y).all()
    # Changing bar t's future changes the label of t but none of its features.
    bumped = aapl.with_columns(
        pl.when(pl.int_range(pl.len()) == 1000)
        .then(pl.col("close") * 1.5)
        .otherwise(pl.col("close"))
        .alias("close")
    )
    b = build_features(bumped, FeatureSettings(label_horizon=horizon))
    t = 1000 - horizon
    assert out.row(t, named=True)["fwd_ret"] != b.row(t, named=True)["fwd_ret"]
    assert out.select(FEATURE_COLUMNS).row(t) == b.select(FEATURE_COLUMNS).row(t)


def test_ranks_use_only_usable_rows_of_the_same_session(
    panel: pl.DataFrame, fsettings: FeatureSettings
) -> None:
    out = build_features(panel, fsettings).filter(~pl.col("warmup"))
    per = out.group_by("session").agg(pl.len().alias("n"), pl.col("cs_rank_ret_20"), pl.col("ret_20"))
    for _, n, ranks, rets in per.sample(50, seed=1).iter_rows():
        order = np.argsort(np.argsort(rets))
        np.testing.assert_allclose(sorted(ranks), [(k + 0.5) / n for k in range(n)])
        np.testing.assert_allclose(np.array(ranks), (order + 0.5) / n)


def test_single_symbol_rank_is_neutral(aapl: pl.DataFrame, fsettings: FeatureSettings) -> None:
    out = build_features(aapl, fsettings).filter(~pl.col("warmup"))
    assert (out["cs_rank_ret_5"] == 0.5).all()


def test_unsorted_input_gives_the_same_frame(panel: pl.DataFrame, fsettings: FeatureSettings) -> None:
    a = build_features(panel, fsettings)
    b = build_features(panel.sample(fraction=1.0, shuffle=True, seed=3), fsettings)
    assert a.equals(b)


def test_bad_symbols_are_skipped_with_reasons(aapl: pl.DataFrame, fsettings: FeatureSettings) -> None:
    n = aapl.height

    def renamed(sym: str, df: pl.DataFrame) -> pl.DataFrame:
        return df.with_columns(pl.lit(sym).alias("symbol"))

    flat = renamed("FLAT", aapl.with_columns(pl.lit(10.0).alias(c) for c in ("open", "high", "low", "close")))
    short = renamed("SHORT", aapl.head(MIN_HISTORY - 1))
    nan_row = renamed(
        "NANP",
        aapl.with_columns(
            pl.when(pl.int_range(pl.len()) == 500).then(None).otherwise(pl.col("close")).alias("close")
        ),
    )
    novol = renamed("NOVOL", aapl.with_columns(pl.lit(0.0).alias("volume")))
    dup = renamed("DUP", pl.concat([aapl, aapl.tail(1)]))
    bars = pl.concat([aapl, flat, short, nan_row, novol, dup])
    res = build_features_report(bars, fsettings)
    assert res.symbols == ["AAPL"]
    assert res.frame.height == n
    assert set(res.skipped) == {"FLAT", "SHORT", "NANP", "NOVOL", "DUP"}
    assert "constant close" in res.skipped["FLAT"]
    assert "too little history" in res.skipped["SHORT"]
    assert "invalid close" in res.skipped["NANP"] and "row 500" in res.skipped["NANP"]
    assert "all-NaN" in res.skipped["NOVOL"] and "volume_z_20" in res.skipped["NOVOL"]
    assert "duplicate session" in res.skipped["DUP"]
    # The good symbol is computed exactly as if it were alone.
    assert res.frame.drop("cs_rank_ret_5").equals(build_features(aapl, fsettings).drop("cs_rank_ret_5"))


def test_everything_skipped_or_empty_gives_an_empty_frame(
    aapl: pl.DataFrame, fsettings: FeatureSettings
) -> None:
    res = build_features_report(aapl.head(10), fsettings)
    assert res.frame.is_empty() and tuple(res.frame.columns) == OUTPUT_COLUMNS
    assert build_features(aapl.head(0), fsettings).is_empty()


def test_missing_columns_and_foreign_version_are_clear_errors(aapl: pl.DataFrame) -> None:
    with pytest.raises(DataError, match="volume"):
        build_features(aapl.drop("volume"), FeatureSettings())
    with pytest.raises(ConfigError, match="ta-v0"):
        build_features(aapl, FeatureSettings(feature_set_version="ta-v0"))
