"""The result of a backtest: equity curve, fills, round-trip trades and metrics, exportable to files."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import numpy as np
import polars as pl

from stockflow.backtest.config import BacktestConfig
from stockflow.backtest.metrics import compute_metrics, drawdown
from stockflow.backtest.panel import Panel

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

    def to_parquet(self, directory: Path) -> dict[str, Path]:
        """Equity, fills and trades as parquet files in ``directory``."""
        return self.export(directory, "parquet")


def _trades(fills: pl.DataFrame) -> pl.DataFrame:
    """Pair each buy with the next sell of the same symbol (positions are opened and closed whole)."""
    f = fills.with_row_index("_seq").sort(["symbol", "_seq"])
    nxt = f.select(pl.all().shift(-1).name.suffix("_x"))
    both = pl.concat([f, nxt], how="horizontal").filter(pl.col("side") == "buy")
    closed = (pl.col("symbol_x") == pl.col("symbol")) & (pl.col("side_x") == "sell")
    both = both.with_columns(
        [pl.when(closed).then(pl.col(c)).otherwise(None).alias(c) for c in both.columns if c.endswith("_x")]
    )
    entry_cost = pl.col("qty") * pl.col("price") + pl.col("commission")
    pnl = (
        pl.col("qty") * (pl.col("price_x") - pl.col("price")) - pl.col("commission") - pl.col("commission_x")
    )
    return both.select(
        pl.col("symbol"),
        pl.col("session").alias("entry_session"),
        pl.col("session_x").alias("exit_session"),
        pl.col("qty"),
        pl.col("price").alias("entry_price"),
        pl.col("price_x").alias("exit_price"),
        (pl.col("commission") + pl.col("commission_x")).alias("commission"),
        (pl.col("slippage_cost") + pl.col("slippage_cost_x")).alias("slippage_cost"),
        pnl.alias("pnl"),
        (pnl / entry_cost).alias("return_pct"),
        (pl.col("_t_x") - pl.col("_t")).alias("bars_held"),
        pl.col("reason_x").alias("exit_reason"),
    ).sort(["entry_session", "symbol"])


def fills_frame(panel: Panel, raw: dict[str, np.ndarray]) -> pl.DataFrame:
    """The fill columns of :func:`~.engine.simulate` as a frame with dates, symbols and reasons."""
    sessions = panel.sessions
    symbols = np.asarray(panel.symbols, dtype=object)
    side = raw["side"]
    qty, price, ref = raw["qty"], raw["price"], raw["ref"]
    return pl.DataFrame(
        {
            "_t": raw["t"],
            "session": sessions[raw["t"]],
            "symbol": symbols[raw["sym"]].astype(str) if len(raw["sym"]) else np.array([], dtype=str),
            "side": np.where(side > 0, "buy", "sell"),
            "qty": qty,
            "price": price,
            "reference_price": ref,
            "commission": raw["commission"],
            "slippage_cost": qty * np.abs(price - ref),
            "reason": np.asarray(EXIT_REASONS, dtype=object)[raw["reason"]].astype(str)
            if len(raw["reason"])
            else np.array([], dtype=str),
        },
        schema_overrides={"session": pl.Date, "symbol": pl.Utf8, "side": pl.Utf8, "reason": pl.Utf8},
    )


def build_result(
    strategy: str,
    panel: Panel,
    config: BacktestConfig,
    raw: dict[str, np.ndarray],
    *,
    seconds: float = 0.0,
    benchmarks: bool = True,
) -> BacktestResult:
    """Assemble frames and metrics from the engine's raw arrays (and the benchmarks when asked)."""
    fills = fills_frame(panel, raw)
    trades = _trades(fills)
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
        traded_notional=float((fills.get_column("qty") * fills.get_column("price")).sum()),
        positions_value=raw["positions_value"],
        n_orders=fills.height,
        costs_paid=float(raw["commission"].sum()) + float(fills.get_column("slippage_cost").to_numpy().sum()),
    )
    bench: dict[str, BacktestResult] = {}
    if benchmarks:
        from stockflow.backtest.benchmarks import benchmark_results

        bench = benchmark_results(panel, config)
    return BacktestResult(
        strategy=strategy,
        config=config,
        equity=equity,
        fills=fills.drop("_t"),
        trades=trades,
        metrics=metrics,
        benchmarks=bench,
        invalid_bars=panel.invalid_bars,
        seconds=seconds,
    )
