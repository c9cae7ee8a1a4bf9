"""Commands of the backtest area: ``stockflow backtest`` compares strategies and prints the table.

With a report (the default) it runs the ``backtest`` flow, like the UI; ``--no-report`` computes the
table only (no run record, no files, no artifacts)."""

from __future__ import annotations

from typing import Any

import typer


def _compare(settings: Any, engine: Any, request: Any) -> tuple[list[str], Any, Any, list[dict[str, str]]]:
    """The comparison without a run record, reports or artifacts (``--no-report``): symbols, window and
    the table's display rows."""
    from stockflow.backtest.runner import run_comparison
    from stockflow.backtest.service import load_universe
    from stockflow.backtest.tearsheet import format_table
    from stockflow.compute.backtest import parallel_comparison
    from stockflow.compute.executor import open_executor

    bars, s, e = load_universe(settings, engine, request)
    with open_executor(settings) as ex:  # compute.dask_address: signals and backtests on Dask
        comp = (parallel_comparison(ex) if ex.distributed else run_comparison)(
            bars,
            settings,
            strategies=request.strategies,
            start=s,
            end=e,
            costs=request.costs,
            engine=engine,
        )
    return sorted(bars.get_column("symbol").unique().to_list()), s, e, format_table(comp.table())


def register(app: typer.Typer) -> None:
    """Add this area's commands to ``app``."""

    @app.command("backtest")
    def backtest_cmd(  # noqa: PLR0917 - typer maps parameters to options
        strategies: str = typer.Option(
            "sma_crossover,rsi_reversion,macd_trend,bollinger_zscore,ensemble",
            "--strategies",
            help="Comma-separated strategies: sma_crossover (sma), rsi_reversion (rsi), macd_trend (macd), "
            "bollinger_zscore (bollinger, zscore), ensemble, ml (walk-forward), ml_champion.",
        ),
        symbols: str | None = typer.Option(
            None, "--symbols", help="Comma-separated symbols; default: the configured universe."
        ),
        start: str | None = typer.Option(None, "--start", help="First session (YYYY-MM-DD)."),
        end: str | None = typer.Option(None, "--end", help="Last session (YYYY-MM-DD)."),
        slippage_bps: float | None = typer.Option(
            None, "--slippage-bps", help="Override broker.slippage_bps."
        ),
        commission_per_share: float | None = typer.Option(None, "--commission-per-share"),
        commission_per_order: float | None = typer.Option(None, "--commission-per-order"),
        commission_pct: float | None = typer.Option(
            None, "--commission-pct", help="Commission as a fraction of the notional (0.001 = 0.1%)."
        ),
        report: bool = typer.Option(
            True, "--report/--no-report", help="Write the tearsheet, PNGs and CSVs and record the run."
        ),
    ) -> None:
        """Backtest strategies on the stored bars (costs on and off) and print the comparison table.
        With --report (the default) it runs the Prefect flow ``backtest`` (records the run, writes the
        tearsheet and publishes the same artifacts as a run from the UI); --no-report only computes."""
        from rich.console import Console
        from rich.table import Table

        from stockflow.backtest.service import make_request
        from stockflow.config import load_settings
        from stockflow.db import make_engine, upgrade

        settings = load_settings()
        overrides = {
            k: v
            for k, v in {
                "slippage_bps": slippage_bps,
                "commission_per_share": commission_per_share,
                "commission_per_order": commission_per_order,
                "commission_pct": commission_pct,
            }.items()
            if v is not None
        }
        # Validated here first: a bad option is one clear line naming it (ConfigError), flow or not.
        request = make_request(
            settings, strategies=strategies, symbols=symbols, start=start, end=end, costs=overrides or None
        )
        engine = make_engine(settings.db_url)
        upgrade(engine)
        tearsheet = comparison_csv = None
        if report:
            from flows.backtest import CostsParam, backtest_flow

            out = backtest_flow(
                strategies=list(request.strategies),
                symbols=list(request.symbols) if request.symbols is not None else None,
                start=request.start,
                end=request.end,
                costs=CostsParam(**overrides) if overrides else None,
            )
            syms, s, e, rows = out["symbols"], out["start"], out["end"], out["table"]
            tearsheet, comparison_csv = out["tearsheet"], out["comparison_csv"]
        else:
            syms, s, e, rows = _compare(settings, engine, request)
        cols = [
            *("strategy", "costs", "total_return", "annual_return", "sharpe", "sortino", "max_drawdown"),
            *("win_rate", "profit_factor", "n_trades", "exposure", "costs_paid", "final_equity"),
        ]
        table = Table(title=f"{len(syms)} symbols, {s} .. {e} (signals act on the next bar)")
        for c in cols:
            table.add_column(c, justify="left" if c in ("strategy", "costs") else "right")
        for row in rows:
            table.add_row(*[row[c] for c in cols])
        Console(width=200).print(table)
        if tearsheet is not None:
            typer.echo(f"tearsheet: {tearsheet}")
            typer.echo(f"comparison: {comparison_csv}")
