"""Parity with the live loop: replaying the daily ``trade`` flow day by day (auto mode, paper broker, real
Prefect API) gives the same fills and equity as the backtest of the same model and settings: both trade
the top-k target book of ``stockflow.portfolio`` (entries, exits by rank, protective stops)."""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Iterator
from typing import Any

import polars as pl
import pytest
from sqlalchemy import Engine

from stockflow.backtest.config import BacktestConfig
from stockflow.backtest.engine import run_backtest
from stockflow.backtest.parity import compare_with_live, paper_fills
from stockflow.backtest.strategies import MLStrategy

SYMBOLS = ["AAPL", "MSFT", "IBM"]
TRAIN_END = dt.date(2011, 12, 30)
WINDOW_START = dt.date(2012, 3, 1)
N_SESSIONS = 6

# ~25 s of flow runs (one per session) on top of the shared Prefect test server.
pytestmark = [pytest.mark.usefixtures("prefect_api"), pytest.mark.slow]


@pytest.fixture(scope="module")
def replay(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    """Sample bars, a LightGBM champion trained before the window, thresholds that make it trade, and
    the trade flow replayed once per session of the window."""
    from flows.trade import trade_flow
    from models.factory import make_model
    from stockflow.brokers.paper import PaperBroker
    from stockflow.config import load_settings
    from stockflow.db import get_engine, transaction, upgrade
    from stockflow.features import FEATURE_COLUMNS, build_features
    from stockflow.ingest import run_ingest
    from stockflow.ml.registry import artifact_dir, promote, register
    from stockflow.store.bars import load_bars

    base = tmp_path_factory.mktemp("parity")
    url = f"sqlite:///{base / 'data' / 'stockflow.db'}"
    mp = pytest.MonkeyPatch()
    for k, v in {
        "STOCKFLOW_DATA_DIR": str(base / "data"),
        "STOCKFLOW_REPORTS_DIR": str(base / "reports"),
        "STOCKFLOW_DATABASE_URL": url,
        "STOCKFLOW_DATA__SOURCE": "sample",
        "STOCKFLOW_DATA__SYMBOLS": '["AAPL","MSFT","IBM"]',
        "STOCKFLOW_RISK__DAILY_LOSS_LIMIT": "0.5",
        "STOCKFLOW_RISK__MAX_POSITION_WEIGHT": "0.3",
        "STOCKFLOW_RISK__MAX_TOTAL_EXPOSURE": "0.9",
        "STOCKFLOW_RISK__STOP_LOSS": "0.01",
        "STOCKFLOW_RISK__TRAILING_ACTIVATION": "0.01",
        "STOCKFLOW_RISK__TRAILING_STOP": "0.01",
        "STOCKFLOW_BROKER__SLIPPAGE_BPS": "7",
        "STOCKFLOW_BROKER__COMMISSION_PER_ORDER": "1.0",
        "STOCKFLOW_BROKER__COMMISSION_PER_SHARE": "0.005",
        "STOCKFLOW_BROKER__COMMISSION_PCT": "0.0002",
        # The scenario (a model on next-day direction with signal exits) was built for a 1-session label.
        "STOCKFLOW_FEATURES__LABEL_HORIZON": "1",
    }.items():
        mp.setenv(k, v)
    settings = load_settings()
    engine = get_engine(url)
    upgrade(engine)
    run_ingest(settings, engine, source="sample", symbols=SYMBOLS)
    bars = load_bars(engine, SYMBOLS, end=dt.date(2012, 6, 29))
    feats = build_features(bars, settings.features)
    train = feats.filter(~pl.col("warmup") & pl.col("y_up").is_not_null() & (pl.col("session") <= TRAIN_END))
    model = make_model(
        "lightgbm", FEATURE_COLUMNS, feature_set_version=settings.features.feature_set_version,
        params={"num_boost_round": 40, "min_data_in_leaf": 50, "num_threads": 1, "seed": 1},
    )  # fmt: skip
    model.fit(train.select(FEATURE_COLUMNS).to_numpy(), train.get_column("y_up").to_numpy())
    version = "parity-lightgbm"
    path = artifact_dir(settings, version)
    model.save(path)
    with transaction(engine) as s:
        register(
            s, version=version, kind="lightgbm", params=model.params, artifact_path=path, symbols=SYMBOLS,
            feature_set_version=settings.features.feature_set_version, train_end=TRAIN_END,
        )  # fmt: skip
    promote(engine, version, reason="parity test", force=True)

    window = sorted(d for d in set(bars.get_column("session").to_list()) if d >= WINDOW_START)[:N_SESSIONS]
    probs = MLStrategy(model=model, entry_threshold=0.5, feature_settings=settings.features).probabilities(
        bars
    )
    p = probs.filter(pl.col("session").is_in(window)).get_column("probability").to_numpy()
    # A top-2 book of 3 symbols without a hold buffer: the ranks move, so names enter and leave.
    mp.setenv("STOCKFLOW_PORTFOLIO__TOP_K", "2")
    mp.setenv("STOCKFLOW_PORTFOLIO__HOLD_BUFFER", "0")
    mp.setenv("STOCKFLOW_PORTFOLIO__MAX_CHANGES", "1")

    equity: dict[dt.date, float] = {}
    for day in window:
        state = trade_flow(mode="auto", as_of=day, return_state=True)
        assert state.is_completed(), state.message
        equity[day] = float(PaperBroker(engine).account().equity)
    yield {"engine": engine, "window": window, "equity": equity, "bars": bars, "probs": p}
    mp.undo()


def test_backtest_matches_the_replayed_live_loop(replay: dict[str, Any]) -> None:
    from stockflow.config import load_settings
    from stockflow.ml.registry import load_champion

    engine: Engine = replay["engine"]
    window: list[dt.date] = replay["window"]
    settings = load_settings()
    _, model = load_champion(settings, engine)
    strategy = MLStrategy.topk_from_settings(settings, model=model)
    config = dataclasses.replace(BacktestConfig.from_settings(settings), close_at_end=False)
    bars = replay["bars"].filter(pl.col("session") <= window[-1])
    result = run_backtest(
        bars,
        strategy.signals(bars),
        config,
        start=window[0],
        end=window[-1],
        benchmarks=False,
        book=strategy.book_spec(bars),
    )
    live = paper_fills(engine)
    report = compare_with_live(result, live, replay["equity"])
    assert live.height >= 2, f"the replay did not trade; probabilities {replay['probs']}"
    # Prices differ only by the paper broker's rounding to 1/10000; equity by that times the shares.
    assert report.ok(price_tol=1e-3, equity_rel_tol=1e-5), (
        f"{report.describe()}\nlive:\n{live}\nbacktest:\n{result.fills}"
    )
    assert report.equity_sessions == len(window)
    # The window exercises entries, exits by rank (the book's), protective stops and every kind of cost.
    reasons = set(result.fills.get_column("reason").to_list())
    assert {"entry", "signal", "stop"} <= reasons, reasons
    assert (live.get_column("commission") > 0).all()
