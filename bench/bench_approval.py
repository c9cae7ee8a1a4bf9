"""Time from a person's approval to the order acknowledged by the broker.

A manual-mode trade run (sample data replayed as of 2012-03-30, a small LightGBM, the alpaca adapter
against our wire-level fake Alpaca server on loopback) pauses for approval; another thread answers it
with ``resume_flow_run`` (what the Prefect UI form and ``stockflow approve`` do) and notes the time. The
figure is the time until our order row records the broker's acknowledgement of the approved order
(``orders.acknowledged_at``). It covers the paused run noticing the resume (``trading.approval_poll_s``
= 1 s poll), reconciliation with the broker after the resume, re-validation (prices, limits, trading
state, market session) and the idempotent submit. Target: under 2 s.

Each repetition uses a fresh fake broker and a clean trading state; bars and the model are made once.
"""

from __future__ import annotations

import contextvars
import datetime as dt
import os
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
AS_OF = dt.date(2012, 3, 30)
SYMBOLS = ["AAPL", "MSFT", "IBM"]
REPEATS = int(os.environ.get("BENCH_APPROVAL_REPEATS", "5"))


def _env(base: Path) -> dict[str, str]:
    return {
        "STOCKFLOW_CONFIG": "",  # no config file
        "STOCKFLOW_DATA_DIR": str(base / "data"),
        "STOCKFLOW_REPORTS_DIR": str(base / "reports"),
        "STOCKFLOW_DATABASE_URL": f"sqlite:///{base / 'data' / 'stockflow.db'}",
        "STOCKFLOW_DATA__SYMBOLS": '["AAPL","MSFT","IBM"]',
        "STOCKFLOW_MODELS__KINDS": '["lightgbm"]',
        "STOCKFLOW_MODELS__N_FOLDS": "2",
        "STOCKFLOW_MODELS__LGBM_NUM_BOOST_ROUND": "50",
        "STOCKFLOW_TRADING__SIGNAL_SOURCE": "best_challenger",
        "STOCKFLOW_TRADING__AUTO_THRESHOLD": "0.5",
        "STOCKFLOW_TRADING__APPROVAL_THRESHOLD": "0.5",
        "STOCKFLOW_TRADING__APPROVAL_TIMEOUT_S": "120",
        "STOCKFLOW_BROKER__KIND": "alpaca",
        "STOCKFLOW_BROKER__FILL_POLL_S": "2",
        "PREFECT_LOGGING_LEVEL": "WARNING",
    }


def _clean_trading_state(engine: Any) -> None:
    from sqlalchemy import delete

    from stockflow.db import Base, models_pipeline, models_trading

    names = {
        obj.__table__.name
        for mod in (models_pipeline, models_trading)
        for obj in vars(mod).values()
        if isinstance(obj, type) and hasattr(obj, "__table__") and obj.__module__ == mod.__name__
    }
    with engine.begin() as conn:
        for t in reversed(Base.metadata.sorted_tables):
            if t.name in names:
                conn.execute(delete(t))


def _one(engine: Any, fake_prices: dict[str, float]) -> dict[str, Any]:
    from sqlalchemy import select

    from flows.trade import trade_flow
    from stockflow.db.engine import transaction
    from stockflow.db.models_trading import OrderRow
    from stockflow.pipeline.approve import list_paused_runs, send_approval
    from tests.fakes.alpaca_trading import API_KEY, SECRET_KEY, FakeAlpacaTrading

    _clean_trading_state(engine)
    with FakeAlpacaTrading(prices=fake_prices) as fake:
        os.environ["STOCKFLOW_BROKER__ALPACA_URL_OVERRIDE"] = fake.url
        os.environ["STOCKFLOW_BROKER__ALPACA_API_KEY"] = API_KEY
        os.environ["STOCKFLOW_BROKER__ALPACA_SECRET_KEY"] = SECRET_KEY
        mark: dict[str, Any] = {}

        def approver() -> None:
            deadline = time.monotonic() + 120
            while time.monotonic() < deadline:
                runs = list_paused_runs()
                if runs:
                    run = runs[0]
                    mark["symbol"] = run.symbols[0]
                    mark["t0"] = dt.datetime.now(dt.UTC)
                    send_approval(run.flow_run_id, approve=run.symbols[0], note="bench")
                    return
                time.sleep(0.1)

        th = threading.Thread(target=contextvars.copy_context().run, args=(approver,), daemon=True)
        th.start()
        t_run = time.perf_counter()
        state = trade_flow(mode="manual", as_of=AS_OF, return_state=True)
        run_s = time.perf_counter() - t_run
        th.join(10)
        if "t0" not in mark:
            raise RuntimeError(f"the run never paused for approval: {state.name}: {state.message}")
        with transaction(engine) as s:
            row = s.scalars(select(OrderRow).where(OrderRow.symbol == mark["symbol"])).one()
            ack = row.acknowledged_at
            status = row.status
        if ack is None:
            raise RuntimeError(f"the approved order was not acknowledged (status {status}): {state.message}")
        return {"latency_s": (ack - mark["t0"]).total_seconds(), "run_s": run_s, "status": status}


def run() -> dict[str, Any]:
    """Figures: median and max seconds from resume-with-approval to broker acknowledgement."""
    base = Path(tempfile.mkdtemp(prefix="bench-approval-"))
    os.environ.update(_env(base))
    os.environ.setdefault("PREFECT_HOME", str(base / "prefect"))
    if str(ROOT) not in sys.path:
        sys.path.insert(0, str(ROOT))
    from prefect.testing.utilities import prefect_test_harness

    from stockflow.config import load_settings
    from stockflow.db import get_engine, upgrade
    from stockflow.ingest import run_ingest
    from stockflow.ml.retrain import run_retrain
    from stockflow.store.bars import load_bars

    settings = load_settings()
    engine = get_engine(settings.db_url)
    upgrade(engine)
    t = time.perf_counter()
    run_ingest(settings, engine, source="sample", symbols=SYMBOLS)
    run_retrain(settings, engine, symbols=SYMBOLS, end=AS_OF)
    setup_s = time.perf_counter() - t
    bars = load_bars(engine, SYMBOLS, start=AS_OF, end=AS_OF)
    prices = {r["symbol"]: float(r["close"]) for r in bars.iter_rows(named=True)}
    results = []
    with prefect_test_harness(server_startup_timeout=180):
        for _ in range(REPEATS):
            results.append(_one(engine, prices))
    lat = [r["latency_s"] for r in results]
    return {
        "broker": "alpaca adapter -> fake Alpaca server (loopback)",
        "repeats": len(lat),
        "approval_to_ack_median_s": round(statistics.median(lat), 3),
        "approval_to_ack_max_s": round(max(lat), 3),
        "approval_to_ack_min_s": round(min(lat), 3),
        "target_s": 2.0,
        "under_target": max(lat) < 2.0,
        "whole_run_median_s": round(statistics.median(r["run_s"] for r in results), 2),
        "order_status": sorted({r["status"] for r in results}),
        "setup_s": round(setup_s, 1),
    }
