"""Settings, migrations and the bar store on both backends."""

from __future__ import annotations

import datetime as dt

import polars as pl
import pytest
from sqlalchemy import inspect

from stockflow.config import load_settings
from stockflow.db import transaction
from stockflow.errors import ConfigError
from stockflow.store.bars import latest_sessions, load_bars, mark_quarantined, store_bars


def _bars(symbol: str, days: list[dt.date], base: float = 100.0) -> pl.DataFrame:
    n = len(days)
    return pl.DataFrame(
        {
            "symbol": [symbol] * n,
            "session": days,
            "open": [base + i for i in range(n)],
            "high": [base + i + 1 for i in range(n)],
            "low": [base + i - 1 for i in range(n)],
            "close": [base + i + 0.5 for i in range(n)],
            "volume": [1000.0] * n,
        }
    )


def test_unknown_setting_is_named(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("STOCKFLOW_RISK__STOP_LOS", "0.1")
    with pytest.raises(ConfigError, match=r"unknown key 'risk\.stop_los'"):
        load_settings()


def test_secrets_are_redacted() -> None:
    s = load_settings(
        broker={"alpaca_api_key": "AKXXXXSECRETKEY", "alpaca_secret_key": "supersecretvalue123"},
        database_url="postgresql://u:hunter2@db.example/prod",
    )
    shown = str(s.redacted())
    assert "supersecretvalue123" not in shown and "AKXXXXSECRETKEY" not in shown and "hunter2" not in shown
    assert s.db_url.startswith("postgresql+psycopg://")


def test_contradicting_thresholds_rejected() -> None:
    with pytest.raises(ConfigError, match="approval_threshold"):
        load_settings(trading={"approval_threshold": 0.9, "auto_threshold": 0.8})


def test_live_trading_needs_second_confirmation() -> None:
    with pytest.raises(ConfigError, match="live_trading_confirmed"):
        load_settings(broker={"kind": "alpaca", "alpaca_paper": False})


def test_schema_created_by_migrations(engine) -> None:
    names = set(inspect(engine).get_table_names())
    assert {"alembic_version", "bars", "ingest_runs", "validation_results", "quarantine"} <= names


def test_store_bars_idempotent_and_readable(engine) -> None:
    days = [dt.date(2024, 1, d) for d in (2, 3, 4, 5)]
    with transaction(engine) as s:
        assert store_bars(s, _bars("AAPL", days), source="test", ingest_run_id=None) == 4
    with transaction(engine) as s:
        assert store_bars(s, _bars("AAPL", days), source="test", ingest_run_id=None) == 0
    out = load_bars(engine, ["AAPL"])
    assert out.height == 4 and out["session"].to_list() == days
    assert latest_sessions(engine) == {"AAPL": dt.date(2024, 1, 5)}
    with transaction(engine) as s:
        mark_quarantined(s, [("AAPL", dt.date(2024, 1, 3))])
    assert load_bars(engine).height == 3
    assert load_bars(engine, include_quarantined=True).height == 4


def test_failed_transaction_leaves_nothing(engine) -> None:
    days = [dt.date(2024, 1, 2)]
    with pytest.raises(RuntimeError), transaction(engine) as s:
        store_bars(s, _bars("MSFT", days), source="test", ingest_run_id=None)
        raise RuntimeError("crash mid-write")
    assert load_bars(engine).is_empty()
