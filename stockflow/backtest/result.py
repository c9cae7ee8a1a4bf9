"""The result of a backtest: equity curve, fills, round-trip trades and metrics, exportable to files."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import numpy as np
import polars as pl

from stockflow.backtest.config import BacktestConfig
from stockflow.backtest.metrics import compute_metrics, drawdown
from stockflow.backtest.panel import Panel, long_frame

#: Reason codes of fills: 0 opens a position, the others close one.
EXIT_REASONS: tuple[str, ...] = ("entry", "signal", "stop", "trailing_stop", "end")


@dataclass(frozen=True)
class BacktestResult:
    """What a backtest produced. Frames are polars; ``metrics`` follows :data:`~.metrics.METRIC_DOCS`.

    - ``equity``: session, equity, cash, positions_value, n_positions, returns, drawdown
    - ``fills``: session, symbol, side (buy/sell), qty, price (after slippage), reference_price,
      commission, slippage_cost, reason
    - ``trades``: symbol, entry_session, exit_session, qty, entry_price, exit_price, commission,
      slippage_cost, pnl (net), return_pct, bars_held, exit_reason (exit columns null while open)
    """

    strategy: str
    config: BacktestConfig
    equity: pl.DataFrame
    fills: pl.DataFrame
    trades: pl.DataFrame
    metrics: dict[str, float]
    benchmarks: dict[str, BacktestResult] = field(default_factory=dict)
    invalid_bars: int = 0
    seconds: float = 0.0

    @property
    def start(self) -> object:
        """First session of the backtest."""
        return self.equity.get_column("session")[0]

    @property
    def end(self) -> object:
        """Last session of the backtest."""
        return self.equity.get_column("session")[-1]

    def export(self, directory: Path, fmt: Literal["csv", "parquet"] = "csv") -> dict[str, Path]:
        """Write equity, fills and trades as ``<strategy>_<part>.<fmt>`` files; returns their paths."""
        directory.mkdir(parents=True, exist_ok=True)
        out: dict[str, Path] = {}
        for part, frame in (("equity", self.equity), ("fills", self.fills), ("trades", self.trades)):
            path = directory / f"{self.strategy}_{part}.{fmt}"
            if fmt == "csv":
                frame.write_csv(path)
            elif fmt == "parquet":
                frame.write_parquet(path)
            else:
                raise ValueError(f"fmt must be 'csv' or 'parquet', got {fmt!r}")
            out[part] = path
        return out

    def to_csv(self, directory: Path) -> dict[str, Path]:
        """Equity, fills and trades as CSV files in ``directory``."""
        return self.export(directory, "csv")


def _trades(panel: Panel, raw: dict[str, np.ndarray]) -> pl.DataFrame:
    """Pair each buy with the next sell of the same symbol (positions are opened and closed whole).

    Fills are in execution order, so a stable sort by symbol keeps each symbol's fills chronological.
    """
    sym, side = raw["sym"], raw["side"]
    order = np.argsort(sym, kind="stable")
    s_sym, s_side = sym[order], side[order]
    buy = np.flatnonzero(s_side > 0)
    nxt = buy + 1
    has_next = nxt < len(order)
    closed = np.zeros(len(buy), dtype=bool)
    closed[has_next] = (s_sym[nxt[has_next]] == s_sym[buy[has_next]]) & (s_side[nxt[has_next]] < 0)
    i_in = order[buy]
    i_out = order[np.where(closed, nxt, buy)]  # placeholder index where still open (masked below)
    t_in, t_out = raw["t"][i_in], raw["t"][i_out]
    qty = raw["qty"][i_in]
    p_in, p_out = raw["price"][i_in], np.where(closed, raw["price"][i_out], np.nan)
    c_in, c_out = raw["commission"][i_in], np.where(closed, raw["commission"][i_out], 0.0)
    slip_in = qty * np.abs(p_in - raw["ref"][i_in])
    slip_out = np.where(closed, qty * np.abs(raw["price"][i_out] - raw["ref"][i_out]), 0.0)
    pnl = np.where(closed, qty * (p_out - p_in) - c_in - c_out, np.nan)
    frame = long_frame(panel, t_in, sym[i_in]).rename({"session": "entry_session"})
    exit_session = pl.Series("exit_session", panel.sessions[t_out]).cast(pl.Date)
    reasons = pl.Series(list(EXIT_REASONS), dtype=pl.Utf8).gather(raw["reason"][i_out].astype(np.int64))
    out = frame.with_columns(
        exit_session.alias("exit_session"),
        pl.Series("qty", qty),
        pl.Series("entry_price", p_in),
        pl.Series("exit_price", p_out),
        pl.Series("commission", c_in + c_out),
        pl.Series("slippage_cost", slip_in + slip_out),
        pl.Series("pnl", pnl),
        pl.Series("return_pct", pnl / (qty * p_in + c_in)),
        pl.Series("bars_held", (t_out - t_in).astype(np.int64)),
        reasons.alias("exit_reason"),
    )
    open_ = pl.Series(~closed)
    out = out.with_columns(
        [
            pl.when(open_).then(None).otherwise(pl.col(c)).alias(c)
            for c in ("exit_session", "bars_held", "exit_reason")
        ]
    )
    nan_to_null = [pl.col(c).fill_nan(None) for c in ("exit_price", "pnl", "return_pct")]
    return out.with_columns(nan_to_null).sort(["entry_session", "symbol"])


def fills_frame(panel: Panel, raw: dict[str, np.ndarray]) -> pl.DataFrame:
    """The fill columns of :func:`~.engine.simulate` as a frame with dates, symbols and reasons."""
    qty, price, ref = raw["qty"], raw["price"], raw["ref"]
    return (
        long_frame(panel, raw["t"], raw["sym"])
        .select("session", "symbol")
        .with_columns(
            pl.Series("side", np.where(raw["side"] > 0, "buy", "sell"), dtype=pl.Utf8),
            pl.Series("qty", qty, dtype=pl.Float64),
            pl.Series("price", price, dtype=pl.Float64),
            pl.Series("reference_price", ref, dtype=pl.Float64),
            pl.Series("commission", raw["commission"], dtype=pl.Float64),
            pl.Series("slippage_cost", qty * np.abs(price - ref), dtype=pl.Float64),
            pl.Series(list(EXIT_REASONS), dtype=pl.Utf8)
            .gather(raw["reason"].astype(np.int64))
            .alias("reason"),
        )
    )


def build_result(
    strategy: str,
    panel: Panel,
    config: BacktestConfig,
    raw: dict[str, np.ndarray],
    *,
    seconds: float = 0.0,
) -> BacktestResult:
    """Assemble frames and metrics from the engine's raw arrays (the engine adds the benchmarks, see
    :mod:`stockflow.backtest.benchmarks`)."""
    fills = fills_frame(panel, raw)
    trades = _trades(panel, raw)
    eq = raw["equity"]
    initial = config.initial_cash
    equity = pl.DataFrame(
        {
            "session": panel.sessions,
            "equity": eq,
            "cash": raw["cash"],
            "positions_value": raw["positions_value"],
            "n_positions": raw["n_positions"],
            "returns": np.concatenate([[initial], eq])[1:] / np.concatenate([[initial], eq])[:-1] - 1.0,
            "drawdown": drawdown(eq, initial),
        },
        schema_overrides={"session": pl.Date},
    )
    closed = trades.filter(pl.col("exit_session").is_not_null())
    metrics = compute_metrics(
        eq,
        initial,
        trade_pnl=closed.get_column("pnl").to_numpy(),
        traded_notional=float((raw["qty"] * raw["price"]).sum()),
        positions_value=raw["positions_value"],
        n_orders=fills.height,
        costs_paid=float(raw["commission"].sum())
        + float((raw["qty"] * np.abs(raw["price"] - raw["ref"])).sum()),
    )
    return BacktestResult(
        strategy=strategy,
        config=config,
        equity=equity,
        fills=fills,
        trades=trades,
        metrics=metrics,
        invalid_bars=panel.invalid_bars,
        seconds=seconds,
    )
