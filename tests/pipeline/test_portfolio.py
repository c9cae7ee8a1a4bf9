"""Portfolio snapshots and performance metrics."""

from __future__ import annotations

import datetime as dt
import itertools
from decimal import Decimal
from pathlib import Path

import pytest
from sqlalchemy import Engine, select

from stockflow.db.engine import transaction
from stockflow.db.models_pipeline import PortfolioSnapshot
from stockflow.domain.orders import Account, Fill, Position, Side
from stockflow.pipeline.portfolio import (
    build_snapshot,
    equity_history,
    performance,
    plot_equity_curve,
    round_trip_pnl,
    save_snapshot,
)

T0 = dt.datetime(2017, 1, 3, 15, tzinfo=dt.UTC)
_ids = itertools.count()


def _fill(sym: str, side: str, qty: int, price: float, day: int, *, commission: float = 0.0) -> Fill:
    return Fill(
        execution_id=f"x{next(_ids)}",
        broker_order_id="o",
        symbol=sym,
        side=Side(side),
        qty=qty,
        price=price,
        timestamp=T0 + dt.timedelta(days=day),
        commission=commission,
    )


def test_round_trips_close_when_flat_and_count_commissions() -> None:
    fills = [
        _fill("A", "buy", 10, 100, 0, commission=1),
        _fill("A", "buy", 10, 110, 1),
        _fill("A", "sell", 20, 120, 2, commission=1),  # +300 - 2 = 298
        _fill("B", "buy", 5, 50, 0),
        _fill("B", "sell", 5, 40, 3),  # -50
        _fill("C", "buy", 5, 10, 0),  # still open: not a round trip
    ]
    assert sorted(round_trip_pnl(fills)) == pytest.approx([-50.0, 298.0])
    perf = performance([(dt.date(2017, 1, 3), 10_000.0)], 10_000.0, fills)
    assert perf.win_rate == pytest.approx(0.5) and perf.n_round_trips == 2
    assert perf.realized_pnl == pytest.approx(248.0)


def test_performance_metrics_of_a_known_curve() -> None:
    days = [dt.date(2017, 1, d) for d in (3, 4, 5, 6)]
    curve = list(zip(days, [10_100.0, 9_595.0, 9_800.0, 10_290.0], strict=True))
    perf = performance(curve, 10_000.0, [])
    assert perf.total_return == pytest.approx(0.029)
    assert perf.max_drawdown == pytest.approx(9_595 / 10_100 - 1)  # negative fraction, as the backtester
    assert perf.sharpe is not None and perf.win_rate is None and perf.n_round_trips == 0
    # One point only: no Sharpe (undefined), not a made-up number.
    assert performance(curve[:1], 10_000.0, []).sharpe is None


def test_snapshot_daily_pnl_and_upsert(engine: Engine, tmp_path: Path) -> None:
    d1, d2 = dt.date(2017, 1, 3), dt.date(2017, 1, 4)
    pos = [Position(symbol="A", qty=10, avg_entry_price=100, current_price=110)]
    acct = Account(cash=Decimal(9_000), equity=Decimal(10_100), buying_power=Decimal(9_000))
    s1 = build_snapshot(
        broker="paper", session=d1, account=acct, positions=pos, history=[], initial_cash=10_000, fills=[]
    )
    assert s1.daily_pnl == pytest.approx(100) and s1.positions_value == pytest.approx(1_100)
    assert s1.exposure == pytest.approx(1_100 / 10_100) and s1.n_positions == 1
    save_snapshot(engine, s1, trade_run_id=None, flow_run_id="r1")
    acct2 = Account(cash=Decimal(9_000), equity=Decimal(10_000), buying_power=Decimal(9_000))
    s2 = build_snapshot(
        broker="paper",
        session=d2,
        account=acct2,
        positions=pos,
        history=equity_history(engine, "paper"),
        initial_cash=10_000,
        fills=[],
    )
    assert s2.daily_pnl == pytest.approx(-100) and s2.performance.max_drawdown < 0
    save_snapshot(engine, s2, trade_run_id=None, flow_run_id="r2")
    # A second run on the same session replaces that session's snapshot.
    save_snapshot(engine, s2, trade_run_id=None, flow_run_id="r3")
    with transaction(engine) as s:
        rows = s.scalars(select(PortfolioSnapshot).order_by(PortfolioSnapshot.session)).all()
        assert [(r.session, r.flow_run_id) for r in rows] == [(d1, "r1"), (d2, "r3")]
        assert rows[0].positions[0]["symbol"] == "A"
    page = plot_equity_curve(equity_history(engine, "paper"), tmp_path / "equity", initial_cash=10_000)
    assert page.name == "index.html" and (tmp_path / "equity" / "equity-curve.png").stat().st_size > 1000
    assert "10,000.00" in page.read_text()
