"""Fixtures of the models tests: small synthetic panels and settings sized for seconds, not minutes."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import polars as pl
import pytest
from sqlalchemy import Engine

from stockflow.config import Settings, load_settings
from stockflow.db import transaction
from stockflow.features import FEATURE_COLUMNS, FEATURE_SET_VERSION, build_features
from stockflow.store.bars import store_bars
from tests.models.synth import synthetic_bars

#: Ten symbols: enough of a cross-section for a top-3 portfolio and per-session rank ICs (no DDD/EEE:
#: tests ask for those as symbols without bars).
SYMBOLS = ("AAA", "BBB", "CCC", "FFF", "GGG", "HHH", "III", "JJJ", "KKK", "LLL")
#: The top-k book of the promotion gate, sized for ten symbols.
SMALL_PORTFOLIO: dict[str, Any] = {"top_k": 3, "hold_buffer": 1, "max_changes": 2}

#: Walk-forward sized for ~900 synthetic sessions: 2 folds of 60 test sessions, 50 validation sessions.
SMALL_MODELS: dict[str, Any] = {
    "train_window_days": 250,
    "test_window_days": 60,
    "n_folds": 2,
    "val_days": 50,
    "purge_days": 5,
    "kinds": ["lightgbm", "momentum"],
    "ensemble_members": ["lightgbm", "momentum"],
    "lstm_epochs": 1,
    "lstm_window": 5,
    "lstm_units": 4,
}


def small_settings(tmp_path: Path, **overrides: Any) -> Settings:
    """Settings with data and reports under ``tmp_path`` and the small walk-forward."""
    models = {**SMALL_MODELS, **overrides.pop("models", {})}
    return load_settings(
        data_dir=tmp_path / "data",
        reports_dir=tmp_path / "reports",
        data={"symbols": list(SYMBOLS)},
        models=models,
        portfolio={**SMALL_PORTFOLIO, **overrides.pop("portfolio", {})},
        # The synthetic panels plant a one-session reversal: a one-session label sees it best.
        features={"label_horizon": 1, **overrides.pop("features", {})},
        drift={"reference_days": 50, "current_days": 20, **overrides.pop("drift", {})},
        **overrides,
    )


@pytest.fixture
def ml_settings(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Settings:
    """Small settings in a temp dir (the working directory too)."""
    monkeypatch.chdir(tmp_path)
    return small_settings(tmp_path)


def store(engine: Engine, bars: pl.DataFrame) -> None:
    """Write bars into the state store."""
    with transaction(engine) as s:
        store_bars(s, bars, source="test", ingest_run_id=None)


@pytest.fixture(scope="session")
def reversal_bars() -> pl.DataFrame:
    """A panel with a learnable one-day reversal (models can beat the baselines on it)."""
    return synthetic_bars(SYMBOLS, 900, reversal=0.3, seed=0)


@pytest.fixture(scope="session")
def random_walk_bars() -> pl.DataFrame:
    """A panel of pure random walks: nothing to learn, no model may be promoted on it."""
    return synthetic_bars(SYMBOLS, 900, reversal=0.0, seed=1)


@pytest.fixture(scope="session")
def feature_arrays(reversal_bars: pl.DataFrame) -> dict[str, Any]:
    """Train / validation / test arrays of the reversal panel (usable rows, ordered by symbol, session)."""
    from stockflow.config.sections import FeatureSettings

    frame = build_features(reversal_bars, FeatureSettings(label_horizon=1))
    rows = frame.filter(~pl.col("warmup") & pl.col("y_up").is_not_null()).sort(["symbol", "session"])
    days = rows.get_column("session").unique().sort()
    cut1, cut2 = days[int(days.len() * 0.6)], days[int(days.len() * 0.8)]
    parts = {
        "train": rows.filter(pl.col("session") < cut1),
        "val": rows.filter((pl.col("session") >= cut1) & (pl.col("session") < cut2)),
        "test": rows.filter(pl.col("session") >= cut2),
    }
    out: dict[str, Any] = {"names": list(FEATURE_COLUMNS), "version": FEATURE_SET_VERSION}
    for k, df in parts.items():
        out[f"X_{k}"] = df.select(FEATURE_COLUMNS).to_numpy().astype(np.float64)
        out[f"y_{k}"] = df.get_column("y_up").cast(pl.Int64).to_numpy()
        out[f"g_{k}"] = df.get_column("symbol").to_numpy()
    return out
