"""Predictions (idempotent, skips, no champion) and Evidently drift reports, on both backends."""

from __future__ import annotations

import datetime as dt
import logging
import math
import re
from pathlib import Path
from typing import Any

import polars as pl
import pytest
from sqlalchemy import Engine, func, select

from stockflow.config import Settings
from stockflow.db import transaction
from stockflow.db.models_ml import DriftReportRow, PredictionRow, PredictionSkip
from stockflow.errors import ModelError
from stockflow.features import FEATURE_SET_VERSION, build_features
from stockflow.ml import registry
from stockflow.ml.drift import STAGES, run_drift
from stockflow.ml.predict import predict_latest, run_predict
from stockflow.ml.registry import NoChampionError
from stockflow.ml.retrain import REFERENCE_FILE, train_config
from stockflow.ml.training import Recipe, final_window, fit_recipes, reference_frame
from stockflow.ops.reports import report_url
from tests.models.conftest import SYMBOLS, small_settings, store
from tests.models.synth import synthetic_bars

pytestmark = pytest.mark.slow  # a whole module of real servers, subprocesses or clusters


@pytest.fixture(scope="module")
def champion_dir(tmp_path_factory: pytest.TempPathFactory, reversal_bars: pl.DataFrame) -> Path:
    """A LightGBM model trained on the reversal panel, saved with its drift reference (once per module)."""
    tmp = tmp_path_factory.mktemp("champion")
    settings = small_settings(tmp)
    cfg = train_config(settings)
    frame = build_features(reversal_bars, settings.features)
    fitted = fit_recipes(
        final_window(frame, 250, 1), {"lightgbm": Recipe("lightgbm", {"num_boost_round": 60})}, cfg
    )
    out = tmp / "model"
    fitted.models["lightgbm"].save(out)
    reference_frame(fitted, "lightgbm", frame, cfg).write_parquet(out / REFERENCE_FILE)
    return out


def _make_champion(
    engine: Engine, path: Path, version: str = "v-test", fsv: str = FEATURE_SET_VERSION
) -> None:
    with transaction(engine) as s:
        registry.register(
            s, version=version, kind="lightgbm", params={}, feature_set_version=fsv, artifact_path=str(path),
            symbols=["AAA", "BBB", "CCC"],
        )  # fmt: skip
        registry.promote_in(s, version, reason="test")


def _short_symbol(bars: pl.DataFrame, symbol: str, n: int, drop_last: int = 0) -> pl.DataFrame:
    src = bars.filter(pl.col("symbol") == "AAA").tail(n + drop_last).head(n)
    return src.with_columns(pl.lit(symbol).alias("symbol"))


def test_predictions_are_stored_once_and_problems_are_skips(
    ml_settings: Settings, engine: Engine, reversal_bars: pl.DataFrame, champion_dir: Path
) -> None:
    bars = pl.concat([
        reversal_bars,
        _short_symbol(reversal_bars, "DDD", 100),  # too little history for stable features
        _short_symbol(reversal_bars, "EEE", 400, drop_last=3),  # no bar on the latest session
    ])  # fmt: skip
    store(engine, bars)
    _make_champion(engine, champion_dir)
    symbols = ["AAA", "BBB", "CCC", "DDD", "EEE"]
    first = run_predict(ml_settings, engine, symbols)
    last_session = reversal_bars.get_column("session").max()
    assert first.session == last_session and first.stored == 3
    assert sorted(p.symbol for p in first.predictions) == ["AAA", "BBB", "CCC"]
    assert "too little history" in first.skipped["DDD"]
    assert first.skipped["EEE"].startswith(f"no bar for session {last_session}")
    for p in first.predictions:
        assert 0 <= p.probability <= 1 and p.confidence == pytest.approx(p.prob_outperform)
        assert p.model_version == "v-test"
        # Cross-sectional outputs, stored with the row: the score ranks like the probability.
        assert p.prob_outperform == p.probability
        assert p.score == pytest.approx(math.log(p.probability / (1 - p.probability)), abs=1e-6)
        assert math.isfinite(p.expected_excess)
    again = predict_latest(ml_settings, engine, symbols)
    assert again == first.predictions
    with transaction(engine) as s:
        assert s.scalar(select(func.count()).select_from(PredictionRow)) == 3
        assert s.scalar(select(func.count()).select_from(PredictionSkip)) == 2

    earlier = run_predict(
        ml_settings, engine, ["AAA", "BBB", "CCC"], as_of=last_session - dt.timedelta(days=7)
    )
    assert earlier.session < last_session and len(earlier.predictions) == 3


def test_no_champion_and_mismatched_champion_are_clear_errors(
    ml_settings: Settings, sqlite_engine: Engine, reversal_bars: pl.DataFrame, champion_dir: Path
) -> None:
    store(sqlite_engine, reversal_bars)
    with pytest.raises(NoChampionError, match="no champion model: run `stockflow retrain`"):
        predict_latest(ml_settings, sqlite_engine)
    _make_champion(sqlite_engine, champion_dir, fsv="ta-v0")
    with pytest.raises(ModelError, match="trained on feature set 'ta-v0'"):
        predict_latest(ml_settings, sqlite_engine)
    with transaction(sqlite_engine) as s:
        assert s.scalar(select(func.count()).select_from(PredictionRow)) == 0


def test_drift_report_is_written_and_stored(
    ml_settings: Settings, engine: Engine, reversal_bars: pl.DataFrame, champion_dir: Path
) -> None:
    store(engine, reversal_bars)
    _make_champion(engine, champion_dir)
    calls: list[str] = []
    res = run_drift(ml_settings, engine, request_retrain=lambda: calls.append("x") or "started run 123")
    html = Path(res.report_path)
    assert html.is_file() and html.parent == (Path(ml_settings.reports_dir) / "drift").resolve()
    assert "<html" in html.read_text()[:2000].lower()
    assert res.url == f"http://127.0.0.1:8765/drift/{html.name}" == report_url(ml_settings, html)
    assert set(res.column_scores) >= {"ret_1", "rsi_14", "prediction"}
    assert res.n_current == len(SYMBOLS) * 20 and res.n_reference == len(SYMBOLS) * 50
    with transaction(engine) as s:
        row = s.scalars(select(DriftReportRow)).one()
        assert row.drift_share == pytest.approx(res.drift_share) and row.model_version == "v-test"
        assert row.column_scores["rsi_14"]["method"] and row.report_path == res.report_path
        assert row.dataset_drift == (res.drift_share > ml_settings.drift.drift_share_threshold)
    assert res.retrain_requested == res.dataset_drift and bool(calls) == res.dataset_drift


def test_drift_above_threshold_requests_retrain(
    tmp_path: Path, sqlite_engine: Engine, champion_dir: Path
) -> None:
    # A volatility regime shift in the last sessions: the current window looks nothing like the reference.
    calm = synthetic_bars(("AAA", "BBB", "CCC"), 900, reversal=0.3, vol=0.01, seed=0)
    wild = synthetic_bars(("AAA", "BBB", "CCC"), 900, reversal=0.3, vol=0.05, seed=0)
    cut = calm.get_column("session").unique().sort()[-30]
    store(
        sqlite_engine,
        pl.concat([calm.filter(pl.col("session") < cut), wild.filter(pl.col("session") >= cut)]),
    )
    _make_champion(sqlite_engine, champion_dir)
    settings = small_settings(tmp_path, drift={"drift_share_threshold": 0.2})
    calls: list[Any] = []
    res = run_drift(
        settings, sqlite_engine, request_retrain=lambda: calls.append(1) or "retrain run 42 started"
    )
    assert res.drift_share > 0.2 and res.dataset_drift and res.retrain_requested
    assert calls and res.retrain_request == "retrain run 42 started"
    assert {"vol_20", "atr_pct"} <= {c for c, v in res.column_scores.items() if v["drifted"]}


def test_drift_check_says_each_stage_with_its_time(
    ml_settings: Settings,
    sqlite_engine: Engine,
    reversal_bars: pl.DataFrame,
    champion_dir: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A person waiting on the monitor run reads which stage it is in and how long each took (issue 11)."""
    store(sqlite_engine, reversal_bars)
    _make_champion(sqlite_engine, champion_dir)
    with caplog.at_level(logging.INFO, logger="stockflow"):
        res = run_drift(ml_settings, sqlite_engine)
    lines = [r.getMessage() for r in caplog.records if r.name == "stockflow"]
    starts = [ln for ln in lines if re.match(r"^monitor \d/5: ", ln)]
    assert [ln.split(": ", 1)[1].split(" (")[0].split(";")[0] for ln in starts] == [
        s.split(" (")[0] for s in STAGES
    ]
    assert all(re.search(r"; \d+\.\ds so far$", ln) for ln in starts), starts
    assert "model v-test, last 20 sessions" in starts[1]
    assert f"{res.n_reference} reference and {res.n_current} current rows" in starts[2]
    assert res.report_path.endswith(starts[3].rsplit("(", 1)[1].split(")")[0].rsplit("/", 1)[1])
    dones = [ln for ln in lines if re.match(r"^monitor \d/5 done in \d+\.\ds$", ln)]
    assert len(dones) == 5, lines
    assert re.match(r"^monitor: done in \d+\.\ds$", lines[-1]), lines[-1]
    # The prediction drift is said on its own line, before the report is written.
    (pred,) = [ln for ln in lines if "prediction drift" in ln]
    assert lines.index(pred) < lines.index(starts[3]) and "(threshold 0." in pred
