"""Reports of a comparison: a self-contained HTML tearsheet (plotly, works offline), PNGs (matplotlib)
for the README, and the comparison table as CSV.

The HTML embeds plotly.js once (``include_plotlyjs=True`` on the first figure), so the file opens
without network. Plots: equity vs the benchmarks, drawdown, monthly returns heatmaps, rolling Sharpe,
and the distribution of trade returns; all with costs on. The comparison table has costs on and off.
"""

from __future__ import annotations

import html
import math
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import polars as pl

from stockflow.backtest.metrics import METRIC_DOCS, PERIODS_PER_YEAR

if TYPE_CHECKING:
    from stockflow.backtest.result import BacktestResult
    from stockflow.backtest.runner import Comparison

ROLLING_WINDOW = 63
_PERCENT = {"total_return", "annual_return", "volatility", "max_drawdown", "win_rate", "exposure"}
_MONTHS = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"]


@dataclass(frozen=True)
class ReportFiles:
    """Paths of one run's report files."""

    directory: Path
    tearsheet: Path
    comparison_csv: Path
    pngs: dict[str, Path]


def monthly_returns(result: BacktestResult) -> pl.DataFrame:
    """year, month, return: month-end equity over the previous month-end (initial cash for the first)."""
    eq = result.equity.select("session", "equity").with_columns(
        pl.col("session").dt.year().alias("year"), pl.col("session").dt.month().alias("month")
    )
    ends = eq.group_by("year", "month", maintain_order=True).agg(pl.col("equity").last())
    prev = ends.get_column("equity").shift(1).fill_null(result.config.initial_cash)
    return ends.with_columns((pl.col("equity") / prev - 1.0).alias("return")).select(
        "year", "month", "return"
    )


def rolling_sharpe(result: BacktestResult, window: int = ROLLING_WINDOW) -> np.ndarray:
    """Annualised Sharpe of the trailing ``window`` daily returns (NaN until the window is full)."""
    r = result.equity.get_column("returns")
    mean = r.rolling_mean(window)
    std = r.rolling_std(window)
    out = (mean / std * math.sqrt(PERIODS_PER_YEAR)).to_numpy()
    return np.where(np.isfinite(out), out, np.nan)  # type: ignore[no-any-return]


def _fmt(name: str, v: Any) -> str:
    if v is None or (isinstance(v, float) and not math.isfinite(v)):
        return "—" if v is None or math.isnan(v) else ("∞" if v > 0 else "-∞")
    if name in _PERCENT:
        return f"{v:.2%}"
    if name in ("n_trades", "n_orders", "max_drawdown_duration"):
        return f"{int(v):,}"
    if name in ("costs_paid", "final_equity", "avg_win", "avg_loss"):
        return f"{v:,.2f}"
    return f"{v:.3f}"


def format_table(table: pl.DataFrame) -> list[dict[str, str]]:
    """The comparison table as rows of display strings (for the HTML, the CLI and artifacts)."""
    return [
        {k: (v if k in ("strategy", "kind", "costs") else _fmt(k, v)) for k, v in row.items()}
        for row in table.to_dicts()
    ]


def _html_table(table: pl.DataFrame) -> str:
    cols = ["strategy", "kind", "costs", *METRIC_DOCS]
    head = "".join(f'<th title="{html.escape(METRIC_DOCS.get(c, c))}">{html.escape(c)}</th>' for c in cols)
    body = "".join(
        "<tr>" + "".join(f"<td>{html.escape(str(r[c]))}</td>" for c in cols) + "</tr>"
        for r in format_table(table)
    )
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def _figures(comp: Comparison) -> list[tuple[str, Any]]:
    """(section title, plotly figure) pairs."""
    import plotly.graph_objects as go

    on = {n: r["on"] for n, r in comp.results.items()}
    bench = {n: r["on"] for n, r in comp.benchmarks.items()}
    figs: list[tuple[str, Any]] = []

    eq = go.Figure()
    for name, res in {**on, **bench}.items():
        dash = "dot" if name in bench else None
        eq.add_trace(
            go.Scatter(
                x=res.equity.get_column("session").to_list(),
                y=res.equity.get_column("equity").to_list(),
                name=name,
                mode="lines",
                line={"dash": dash},
            )
        )
    eq.update_layout(title="Equity (costs on) vs benchmarks", yaxis_title="equity", height=450)
    figs.append(("Equity vs benchmark", eq))

    dd = go.Figure()
    for name, res in {**on, **bench}.items():
        dd.add_trace(
            go.Scatter(
                x=res.equity.get_column("session").to_list(),
                y=res.equity.get_column("drawdown").to_list(),
                name=name,
                mode="lines",
                fill="tozeroy" if name not in bench else None,
            )
        )
    dd.update_layout(title="Drawdown (costs on)", yaxis_tickformat=".0%", height=350)
    figs.append(("Drawdown", dd))

    for name, res in on.items():
        mr = monthly_returns(res)
        years = sorted(set(mr.get_column("year").to_list()))
        grid = np.full((len(years), 12), np.nan)
        for y, m, r in mr.iter_rows():
            grid[years.index(y), m - 1] = r
        hm = go.Figure(
            go.Heatmap(
                z=[[None if math.isnan(v) else v for v in row] for row in grid],
                x=_MONTHS,
                y=[str(y) for y in years],
                colorscale="RdYlGn",
                zmid=0,
                colorbar={"tickformat": ".1%"},
                text=[[("" if math.isnan(v) else f"{v:.1%}") for v in row] for row in grid],
                texttemplate="%{text}",
                hovertemplate="%{y} %{x}: %{text}<extra></extra>",
            )
        )
        hm.update_layout(
            title=f"Monthly returns: {name} (costs on)",
            height=max(280, 120 + 28 * len(years)),
            xaxis={"type": "category"},
            yaxis={"type": "category", "autorange": "reversed"},
        )
        figs.append((f"Monthly returns: {name}", hm))

    rs = go.Figure()
    for name, res in {**on, **bench}.items():
        rs.add_trace(
            go.Scatter(
                x=res.equity.get_column("session").to_list(),
                y=rolling_sharpe(res).tolist(),
                name=name,
                mode="lines",
            )
        )
    rs.update_layout(title=f"Rolling Sharpe ({ROLLING_WINDOW} sessions, costs on)", height=350)
    figs.append(("Rolling Sharpe", rs))

    td = go.Figure()
    for name, res in on.items():
        r = res.trades.get_column("return_pct").drop_nulls().to_list()
        if r:
            td.add_trace(go.Histogram(x=r, name=name, opacity=0.6, nbinsx=60))
    td.update_layout(
        title="Trade returns (net of costs)", barmode="overlay", xaxis_tickformat=".0%", height=350
    )
    figs.append(("Trade distribution", td))
    return figs


def write_html(comp: Comparison, path: Path, *, title: str, subtitle: str = "") -> Path:
    """The self-contained tearsheet at ``path``."""
    parts: list[str] = []
    for i, (section, fig) in enumerate(_figures(comp)):
        div = fig.to_html(full_html=False, include_plotlyjs=i == 0, config={"displaylogo": False})
        parts.append(f"<section><h2>{html.escape(section)}</h2>{div}</section>")
    style = (
        "body{font-family:system-ui,sans-serif;margin:24px;color:#222}"
        "table{border-collapse:collapse;font-size:12px}td,th{border:1px solid #ccc;padding:3px 6px;"
        "text-align:right}th{background:#f3f3f3}td:first-child,td:nth-child(2),td:nth-child(3){text-align:left}"
    )
    doc = (
        f"<!DOCTYPE html><html><head><meta charset='utf-8'><title>{html.escape(title)}</title>"
        f"<style>{style}</style></head><body><h1>{html.escape(title)}</h1><p>{html.escape(subtitle)}</p>"
        f"<section><h2>Comparison (costs on and off)</h2>{_html_table(comp.table())}</section>"
        + "".join(parts)
        + "</body></html>"
    )
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(doc, encoding="utf-8")
    return path


def write_pngs(comp: Comparison, directory: Path) -> dict[str, Path]:
    """Static images of the main plots (matplotlib, no display needed)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    directory.mkdir(parents=True, exist_ok=True)
    on = {n: r["on"] for n, r in comp.results.items()}
    bench = {n: r["on"] for n, r in comp.benchmarks.items()}
    out: dict[str, Path] = {}

    def save(fig: Any, name: str) -> None:
        p = directory / f"{name}.png"
        fig.tight_layout()
        fig.savefig(p, dpi=110)
        plt.close(fig)
        out[name] = p

    for key, col, label in (("equity", "equity", "equity"), ("drawdown", "drawdown", "drawdown")):
        fig, ax = plt.subplots(figsize=(10, 4.5 if key == "equity" else 3.5))
        for name, res in {**on, **bench}.items():
            ax.plot(
                res.equity.get_column("session").to_list(),
                res.equity.get_column(col).to_numpy(),
                label=name,
                linestyle=":" if name in bench else "-",
                linewidth=1.2,
            )
        ax.set_title(f"{label.capitalize()} (costs on)")
        ax.legend(fontsize=8, ncol=3)
        ax.grid(alpha=0.3)
        save(fig, key)

    best = max(on, key=lambda n: _finite(on[n].metrics["sharpe"]))
    mr = monthly_returns(on[best])
    years = sorted(set(mr.get_column("year").to_list()))
    grid = np.full((len(years), 12), np.nan)
    for y, m, r in mr.iter_rows():
        grid[years.index(y), m - 1] = r
    fig, ax = plt.subplots(figsize=(10, 1 + 0.35 * len(years)))
    lim = float(np.nanmax(np.abs(grid))) if np.isfinite(grid).any() else 0.01
    im = ax.imshow(grid, cmap="RdYlGn", vmin=-lim, vmax=lim, aspect="auto")
    ax.set_xticks(range(12), _MONTHS)
    ax.set_yticks(range(len(years)), [str(y) for y in years])
    ax.set_title(f"Monthly returns: {best} (costs on)")
    fig.colorbar(im, ax=ax, format=matplotlib.ticker.PercentFormatter(1.0))
    save(fig, "monthly_returns")

    fig, ax = plt.subplots(figsize=(10, 3.5))
    for name, res in {**on, **bench}.items():
        ax.plot(res.equity.get_column("session").to_list(), rolling_sharpe(res), label=name, linewidth=1)
    ax.axhline(0, color="#888", linewidth=0.8)
    ax.set_title(f"Rolling Sharpe ({ROLLING_WINDOW} sessions)")
    ax.legend(fontsize=8, ncol=3)
    save(fig, "rolling_sharpe")

    fig, ax = plt.subplots(figsize=(10, 3.5))
    for name, res in on.items():
        r = res.trades.get_column("return_pct").drop_nulls().to_numpy()
        if r.size:
            ax.hist(r, bins=60, alpha=0.5, label=name)
    ax.set_title("Trade returns (net of costs)")
    ax.legend(fontsize=8)
    save(fig, "trade_returns")
    return out


def _finite(v: float) -> float:
    return v if math.isfinite(v) else -math.inf


def write_reports(comp: Comparison, directory: Path, *, title: str, subtitle: str = "") -> ReportFiles:
    """Tearsheet HTML, PNGs, the comparison CSV and every strategy's trades/equity CSVs in ``directory``."""
    directory.mkdir(parents=True, exist_ok=True)
    csv = directory / "comparison.csv"
    comp.table().write_csv(csv)
    for res in (r["on"] for r in comp.results.values()):
        res.to_csv(directory / "results")
    tearsheet = write_html(comp, directory / "tearsheet.html", title=title, subtitle=subtitle)
    pngs = write_pngs(comp, directory)
    return ReportFiles(directory=directory, tearsheet=tearsheet, comparison_csv=csv, pngs=pngs)
