"""The standing view of the book: collected from the state store, served by the reports server as a page
and as JSON (same auth rules), printed by `stockflow status`, and rendered in headless Chromium, where it
follows a run as it works (the page polls ``book.json``).
"""

from __future__ import annotations

import datetime as dt
import json
import time
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine

from stockflow.config import load_settings
from stockflow.db.engine import transaction
from stockflow.db.models_data import BarRow
from stockflow.db.models_pipeline import ApprovalRequest, PortfolioSnapshot, TradeRun
from stockflow.db.models_trading import LedgerPosition, OrderRow, TradingStateRow
from stockflow.ops.book import collect_book, format_book, show_time
from stockflow.ops.local import http_get
from stockflow.ops.reports import ReportsServer

UI = "http://127.0.0.1:4200"
T0 = dt.datetime(2026, 12, 1, 21, 30, tzinfo=dt.UTC)


def _snapshot(s: Any, i: int, equity: float, run_id: int | None = None) -> None:
    s.add(
        PortfolioSnapshot(
            broker="paper",
            session=dt.date(2012, 3, 28) + dt.timedelta(days=i),
            taken_at=T0 + dt.timedelta(hours=i),
            trade_run_id=run_id,
            flow_run_id=None,
            equity=equity,
            cash=equity - 1500.0,
            positions_value=1500.0,
            exposure=1500.0 / equity,
            daily_pnl=equity - 10_000.0,
            daily_return=equity / 10_000.0 - 1,
            n_positions=1,
            positions=[],
            total_return=equity / 10_000.0 - 1,
            max_drawdown=0.0,
        )
    )


def seed(engine: Engine) -> None:
    """A book with one position and its stop at the broker, one approval waiting, three equity points,
    and a latest run refused for stale data (which took no snapshot)."""
    with transaction(engine) as s:
        s.add(TradingStateRow(id=1, state="ACTIVE", reason="", set_by=""))
        s.add(LedgerPosition(broker="paper", symbol="AAPL", qty=Decimal(10), cost_basis=Decimal("1500")))
        # The bar after the book's session (2012-03-30) must not value the position (a replay).
        for day, close in (
            (dt.date(2012, 3, 29), 155.0),
            (dt.date(2012, 3, 30), 160.0),
            (dt.date(2012, 4, 2), 999.0),
        ):
            s.add(
                BarRow(
                    symbol="AAPL", session=day, open=close, high=close, low=close, close=close, volume=1,
                    source="test",
                )
            )  # fmt: skip
        s.add(
            OrderRow(
                client_order_id="sf-stop-AAPL", broker="paper", symbol="AAPL", side="sell", qty=Decimal(10),
                type="stop", stop_price=Decimal("145.5"), status="new", intent="exit",
            )
        )  # fmt: skip
        s.add(
            OrderRow(
                client_order_id="sf-old", broker="paper", symbol="IBM", side="buy", qty=Decimal(1),
                type="market", status="filled",
            )
        )  # fmt: skip
        done = TradeRun(flow_run_id="fr-done", mode="hybrid", status="completed", message="1 order(s) sent")
        paused = TradeRun(flow_run_id="fr-paused", mode="hybrid", status="awaiting_approval", message="")
        stale = TradeRun(
            flow_run_id="fr-stale", mode="auto", status="refused", message="stale data: refusing to trade"
        )
        s.add_all([done, paused, stale])
        s.flush()
        for i, eq in enumerate((10_000.0, 10_050.0, 10_120.0)):
            _snapshot(s, i, eq, done.id)
        s.add(
            ApprovalRequest(
                trade_run_id=paused.id,
                flow_run_id="fr-paused",
                plan_hash="abc",
                plan=[{"symbol": "MSFT", "side": "buy", "qty": 3}],
                description="",
                status="pending",
                deadline=dt.datetime(2026, 12, 2, 22, 0, tzinfo=dt.UTC),
            )
        )


def test_collect_book_reads_the_whole_book(sqlite_engine: Engine) -> None:
    seed(sqlite_engine)
    book = collect_book(load_settings(), sqlite_engine, ui_url=UI)
    assert book["trading_state"]["state"] == "ACTIVE"
    (pos,) = book["positions"]
    assert (pos["symbol"], pos["qty"], pos["avg_price"], pos["last_close"]) == ("AAPL", 10.0, 150.0, 160.0)
    assert pos["unrealized_pnl"] == 100.0 and pos["last_session"] == "2012-03-30"
    (order,) = book["open_orders"]  # the filled IBM order is not open
    assert (order["type"], order["stop_price"], order["intent"]) == ("stop", 145.5, "exit")
    (waiting,) = book["approvals"]
    assert waiting["link"] == f"{UI}/runs/flow-run/fr-paused" and waiting["orders"] == ["BUY 3 MSFT"]
    assert waiting["deadline"] == "2026-12-02T22:00:00+00:00"
    assert [p["equity"] for p in book["equity_curve"]] == [10_000.0, 10_050.0, 10_120.0]
    # The latest run was refused for stale data: the equity figures stay those of the latest snapshot.
    assert book["runs"][0]["status"] == "refused"
    assert book["equity"]["equity"] == 10_120.0
    assert book["running"] and book["demo_settings"] == []
    json.dumps(book)  # JSON-ready


def test_format_book_shows_times_with_their_zone_and_demo_settings(sqlite_engine: Engine) -> None:
    seed(sqlite_engine)
    settings = load_settings(trading={"signal_source": "best_challenger"})
    text = format_book(collect_book(settings, sqlite_engine, ui_url=UI))
    assert "DEMO SETTING trading.signal_source=best_challenger" in text
    assert "Equity       $10,120.00" in text and "P&L $+100.00 (+6.67%)" in text
    assert "AAPL   SELL 10 stop stop 145.50 new (exit, paper)" in text
    assert f"deadline 2026-12-02 17:00 EST -> {UI}/runs/flow-run/fr-paused" in text
    assert show_time("2026-07-01T20:30:00+00:00") == "2026-07-01 16:30 EDT"


def test_empty_book_says_so(sqlite_engine: Engine) -> None:
    text = format_book(collect_book(load_settings(), sqlite_engine))
    assert "no snapshot yet" in text and "Positions    0" in text


def test_reports_server_serves_the_book_not_a_bare_listing(sqlite_engine: Engine, tmp_path: Path) -> None:
    seed(sqlite_engine)
    (tmp_path / "equity").mkdir()
    (tmp_path / "equity" / "index.html").write_text("<h1>equity</h1>")
    book = lambda: collect_book(load_settings(), sqlite_engine, ui_url=UI)  # noqa: E731
    with ReportsServer(tmp_path, book=book) as srv:
        status, body = http_get(srv.url + "/")
        assert status == 200 and b"stockflow: the book" in body and b"Directory listing" not in body
        status, body = http_get(srv.url + "/book.json")
        assert status == 200 and json.loads(body)["positions"][0]["symbol"] == "AAPL"
        status, body = http_get(srv.url + "/files/")
        assert status == 200 and b"equity/" in body
        assert http_get(srv.url + "/equity/index.html") == (200, b"<h1>equity</h1>")
    with ReportsServer(tmp_path) as srv:  # no state store known: the JSON says so
        assert http_get(srv.url + "/book.json")[0] == 404


def test_book_needs_the_same_password_as_the_reports(sqlite_engine: Engine, tmp_path: Path) -> None:
    book = lambda: collect_book(load_settings(), sqlite_engine)  # noqa: E731
    with ReportsServer(tmp_path, "127.0.0.1", 0, auth="admin:long-password-123", book=book) as srv:
        for path in ("/", "/book.json", "/files/"):
            assert http_get(srv.url + path)[0] == 401, path
        assert http_get(srv.url + "/book.json", auth="admin:long-password-123")[0] == 200


# -- headless Chromium -------------------------------------------------------------------------------


@pytest.fixture
def chromium_page() -> Iterator[Any]:
    from tests.ops.test_e2e_browser import CHROMIUM, CHROMIUM_ARGS

    if not CHROMIUM.exists():
        pytest.skip(f"{CHROMIUM} missing: install Debian's chromium (`make browser-deps`)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        ctx = b.new_context(viewport={"width": 1300, "height": 1000}, timezone_id="Europe/Paris")
        page = ctx.new_page()
        page.set_default_timeout(30_000)
        try:
            yield page
        finally:
            b.close()


@pytest.mark.browser
def test_book_page_in_chromium_follows_a_working_run(
    sqlite_engine: Engine, tmp_path: Path, chromium_page: Any
) -> None:
    seed(sqlite_engine)
    settings = load_settings(trading={"signal_source": "best_challenger"})
    book = lambda: collect_book(settings, sqlite_engine, ui_url=UI)  # noqa: E731
    page = chromium_page
    with ReportsServer(tmp_path, book=book) as srv:
        page.goto(srv.url + "/")
        page.locator("#trading-state").wait_for()
        assert page.locator("#trading-state").inner_text() == "ACTIVE"
        assert "DEMO SETTING ACTIVE" in page.locator("#demo").inner_text()
        positions = page.locator("#positions").inner_text()
        assert "AAPL" in positions and "+$100.00 (6.67%)" in positions
        assert "stop 145.50" in page.locator("#orders").inner_text()
        link = page.locator("a.approve-link")
        assert link.get_attribute("href") == f"{UI}/runs/flow-run/fr-paused"
        # Times in the exchange's zone with the zone named, whatever the browser's own zone is.
        assert "2026-12-02 17:00 EST" in page.locator("#approvals").inner_text()
        assert page.locator("#curve circle.pt").count() == 3
        assert "refreshing every 2 s" in page.locator("#live").inner_text()  # a run is working
        # The run takes its snapshot: the page shows the new equity point without a reload.
        with transaction(sqlite_engine) as s:
            _snapshot(s, 3, 10_200.0)
        t = time.monotonic()
        page.locator("#curve circle.pt").nth(3).wait_for(state="attached", timeout=15_000)
        assert time.monotonic() - t < 15
        assert "$10,200.00" in page.locator("#equity").inner_text()
        page.screenshot(path=str(tmp_path / "book.png"), full_page=True)


def test_a_run_refused_for_stale_data_keeps_the_latest_equity_in_its_summary(sqlite_engine: Engine) -> None:
    """Issue 11: the refused run's `trade-summary` replaced the latest one with "equity $-"."""
    from stockflow.pipeline.report import _last_snapshot, summary_markdown

    seed(sqlite_engine)
    summary = {"outcome": "Stale", "message": "stale data: refusing to trade", "equity": None}
    md = summary_markdown({**summary, "last_snapshot": _last_snapshot(sqlite_engine)})
    assert "| equity | $10,120.00 (latest snapshot, session 2012-03-30; this run took none) |" in md
    assert "$-" not in md.split("| cash |")[0]


def test_cli_finds_the_running_operation_by_itself(tmp_path: Path) -> None:
    """Issue 11: `stockflow approve --list` said nothing waits unless PREFECT_API_URL was exported."""
    import os

    from stockflow.cli import use_running_operation

    state = tmp_path / "stockflow-up.json"
    env: dict[str, str] = {"PREFECT_HOME": str(tmp_path)}
    assert use_running_operation(env) is None and "PREFECT_API_URL" not in env  # nothing runs
    state.write_text(json.dumps({"pid": os.getpid(), "api_url": "http://127.0.0.1:4321/api"}))
    assert use_running_operation(env) == "http://127.0.0.1:4321/api"
    assert env["PREFECT_API_URL"] == "http://127.0.0.1:4321/api"
    explicit = {**env, "PREFECT_API_URL": "http://elsewhere/api"}
    assert use_running_operation(explicit) is None and explicit["PREFECT_API_URL"] == "http://elsewhere/api"
    state.write_text(json.dumps({"pid": 2**22 + 12345, "api_url": "http://127.0.0.1:1/api"}))  # dead pid
    env.pop("PREFECT_API_URL")
    assert use_running_operation(env) is None


def test_an_unfilled_order_is_not_labelled_executed() -> None:
    """Issue 11: the summary said "executed" for an order the broker had only accepted."""
    from stockflow.cli.pipeline import _status_label

    assert _status_label("executed") == "sent to the broker"
    assert _status_label("rejected") == "rejected"
