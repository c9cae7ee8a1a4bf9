"""Commands of the data area: ``stockflow ingest``."""

from __future__ import annotations

import os
import sys
from typing import Any

import typer

from stockflow.choices import SOURCE_NAMES
from stockflow.dates import parse_date
from stockflow.errors import ConfigError


def print_report(report: Any, settings: Any) -> None:
    """The run's summary as a small table (rich), plus failures and the Data Docs link."""
    from rich.console import Console
    from rich.table import Table

    from stockflow.ops.reports import report_url

    console = Console(soft_wrap=True)
    table = Table(title=f"ingest run {report.ingest_run_id} ({report.source})", show_header=True)
    for col in ("symbols ok", "failed", "fetched", "new", "stored", "quarantined", "share"):
        table.add_column(col, justify="right")
    table.add_row(
        str(len(report.symbols_ok)),
        str(len(report.symbols_failed)),
        f"{report.rows_fetched:,}",
        f"{report.rows_new:,}",
        f"{report.rows_stored:,}",
        f"{report.rows_quarantined:,}",
        f"{report.failed_share:.3%}",
    )
    console.print(table)
    if report.quarantined_by_rule:
        console.print(
            "quarantined by rule: "
            + ", ".join(f"{k}={v:,}" for k, v in sorted(report.quarantined_by_rule.items()))
        )
    if report.warnings_by_rule:
        console.print(
            "warnings (kept): " + ", ".join(f"{k}={v:,}" for k, v in sorted(report.warnings_by_rule.items()))
        )
    for line in report.repair_lines():  # a re-read window: restated, replaced, released
        console.print(line, highlight=False)
    for sym, err in list(report.symbols_failed.items())[:10]:
        console.print(f"[red]failed[/red] {sym}: {err}", markup=True, highlight=False)
    if len(report.symbols_failed) > 10:
        console.print(f"... and {len(report.symbols_failed) - 10} more failures")
    if report.data_docs_path:
        console.print(
            f"Data Docs: {report.data_docs_path}\n  served at {report_url(settings, report.data_docs_path)}",
            highlight=False,
        )
    if report.timings:
        console.print(
            "timings: " + ", ".join(f"{k}={v:.1f}s" for k, v in report.timings.items()), highlight=False
        )


def _check_files_path(source: str, path: str | None) -> None:
    """Refuse a missing --path before any Prefect machinery starts (a quick, clear answer)."""
    from pathlib import Path

    from stockflow.errors import SourceError

    if source != "files":
        return
    if not path:
        raise ConfigError("the files source needs a path: --path PATH or settings data.path")
    if not Path(path).expanduser().exists():
        raise SourceError(f"files source: {path} does not exist (--path / data.path)")


def register(app: typer.Typer) -> None:
    """Add this area's commands to app."""

    @app.command("ingest")
    def ingest(  # noqa: PLR0917 (typer options)
        source: str = typer.Option(
            None, "--source", help=f"One of {', '.join(SOURCE_NAMES)} (default: settings)."
        ),
        path: str = typer.Option(None, "--path", help="File or directory for --source files."),
        symbols: str = typer.Option(
            None,
            "--symbols",
            help="Comma-separated symbols (default: settings; every symbol in the files for --source files).",
        ),
        start: str = typer.Option(None, "--start", help="First session, YYYY-MM-DD."),
        end: str = typer.Option(None, "--end", help="Last session, YYYY-MM-DD."),
        since: str = typer.Option(
            None,
            "--since",
            help="Re-read stored sessions from this day on (YYYY-MM-DD): restated values are reported, "
            "repaired quarantined bars released.",
        ),
        full: bool = typer.Option(
            False, "--full", help="Re-read every stored session (like --since the start)."
        ),
        replace: bool = typer.Option(
            False,
            "--replace",
            help="With --since/--full: take restated values (old ones kept in bar_revisions).",
        ),
    ) -> None:
        """Fetch, validate (Great Expectations) and store bars; quarantine bad rows. Runs the Prefect
        flow ``ingest`` (an ephemeral Prefect API is used when none is configured)."""
        if source is not None and source not in SOURCE_NAMES:
            raise ConfigError(
                f"--source: {source!r} is not a source; choose one of {', '.join(SOURCE_NAMES)}"
            )
        start_d, end_d = parse_date(start, "--start"), parse_date(end, "--end")
        since_d = parse_date(since, "--since")
        if start_d and end_d and start_d > end_d:
            raise ConfigError(f"--start {start_d} is after --end {end_d}: the window is empty; swap them")
        if replace and not (since_d or full):
            raise ConfigError(
                "--replace needs --since DATE or --full (the window of stored sessions to re-read)"
            )
        syms = [s.strip() for s in symbols.split(",") if s.strip()] if symbols else None

        # On a busy small machine Prefect's ephemeral API can take longer than its 20 s default to start.
        os.environ.setdefault("PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS", "120")
        from flows.ingest import ingest_flow
        from stockflow.config import load_settings
        from stockflow.db import get_engine, upgrade

        settings = load_settings()
        _check_files_path(source or settings.data.source, path or settings.data.path)
        engine = get_engine(settings.db_url)
        upgrade(engine)
        report = ingest_flow(  # type: ignore[call-overload]
            source=source,
            symbols=syms,
            path=path,
            start=start_d,
            end=end_d,
            since=since_d,
            full=full,
            replace=replace,
        )
        print_report(report, settings)
        if report.symbols_failed:
            typer.secho(
                f"{len(report.symbols_failed)} symbol(s)/file(s) failed; the others were stored",
                fg=typer.colors.YELLOW,
                err=True,
            )
            # sys.exit, not typer.Exit: the console entry point runs typer outside standalone mode.
            sys.exit(1)
