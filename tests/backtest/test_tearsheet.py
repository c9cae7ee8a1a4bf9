"""The tearsheet: self-contained (opens offline in a real browser without script errors), its plots, PNGs,
and the helpers behind them."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import numpy as np
import polars as pl
import pytest

from stockflow.backtest.runner import Comparison, run_comparison
from stockflow.backtest.tearsheet import format_table, monthly_returns, rolling_sharpe, write_reports
from stockflow.config import load_settings
from tests.backtest.conftest import random_bars

CHROMIUM = Path("/usr/bin/chromium")


@pytest.fixture(scope="module")
def comparison() -> Comparison:
    bars = random_bars(("AAA", "BBB", "CCC"), 420, seed=2)
    return run_comparison(
        bars, load_settings(), strategies="sma,rsi", start=dt.date(2015, 6, 1), end=dt.date(2016, 8, 31)
    )


def test_monthly_returns_and_rolling_sharpe(comparison: Comparison) -> None:
    res = comparison.results["sma_crossover"]["on"]
    mr = monthly_returns(res)
    compounded = float(np.prod(1 + mr.get_column("return").to_numpy()))
    assert compounded == pytest.approx(res.metrics["final_equity"] / res.config.initial_cash)
    rs = rolling_sharpe(res)
    assert np.isnan(rs[:62]).all() and len(rs) == res.equity.height
    rows = format_table(comparison.table())
    assert rows[0]["strategy"] == "sma_crossover" and rows[0]["total_return"].endswith("%")


@pytest.mark.slow
@pytest.mark.browser
@pytest.mark.skipif(not CHROMIUM.exists(), reason=f"{CHROMIUM} missing: install Debian's chromium")
def test_tearsheet_renders_offline(comparison: Comparison, tmp_path: Path) -> None:
    from playwright.sync_api import sync_playwright

    files = write_reports(comparison, tmp_path / "run", title="offline check")
    assert set(files.pngs) == {"equity", "drawdown", "monthly_returns", "rolling_sharpe", "trade_returns"}
    assert pl.read_csv(files.comparison_csv).height == (2 + 2) * 2
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=["--no-sandbox", "--disable-gpu"])
        try:
            page = browser.new_context(offline=True).new_page()
            errors: list[str] = []
            page.on("pageerror", lambda e: errors.append(str(e)))
            page.goto(files.tearsheet.as_uri())
            page.wait_for_selector(".js-plotly-plot .main-svg", timeout=20_000)
            # equity, drawdown, one monthly heatmap per strategy, rolling Sharpe, trade distribution
            assert page.locator(".js-plotly-plot").count() == 6
            assert errors == []
        finally:
            browser.close()
