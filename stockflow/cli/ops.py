"""Commands of the ops area: ``stockflow up``, ``stockflow down``, ``stockflow status``."""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

import typer


def _prefect_home() -> Path:
    return Path(os.environ.get("PREFECT_HOME") or Path.cwd() / ".prefect").resolve()


def register(app: typer.Typer) -> None:
    """Add this area's commands to app."""

    @app.command("up")
    def up(
        host: str = typer.Option(
            None,
            help="Address the Prefect server binds to (default server.host = 127.0.0.1). Anything "
            "but loopback needs PREFECT_SERVER_API_AUTH_STRING.",
        ),
        prefect_port: int = typer.Option(
            None, help="Port of the Prefect UI/API (default server.prefect_port)."
        ),
        reports_port: int = typer.Option(
            None, help="Port of the reports server (default server.reports_port)."
        ),
        catalog: str = typer.Option(
            None, hidden=True, help="module:attribute of another deployment catalog."
        ),
        migrate: bool = typer.Option(True, help="Bring the state store to the latest schema first."),
    ) -> None:
        """Start the local operation: Prefect server + UI, deployments on their schedules, reports server.

        Runs until Ctrl-C (or `stockflow down`), then stops everything it started.
        """
        from stockflow.config import load_settings, redact_url
        from stockflow.ops.local import LocalOperation, OperationConfig, database_description
        from stockflow.ops.security import check_bind

        t0 = time.perf_counter()
        settings = load_settings()
        config = OperationConfig.from_settings(
            settings,
            host=host,
            prefect_port=prefect_port,
            reports_port=reports_port,
            prefect_home=_prefect_home(),
            catalog=catalog,
        )
        op = LocalOperation(config, settings, on_step=lambda m: typer.echo(f"  ... {m}"))
        check_bind(config.host, op.env)  # refuse an unprotected exposure before touching anything
        if migrate:
            from stockflow.db import get_engine, upgrade

            upgrade(get_engine(settings.db_url))
            typer.echo(f"state store   {redact_url(settings.db_url)} (migrated)")
        typer.echo(f"starting the Prefect server on {config.host}:{config.prefect_port} ...")
        op.start()
        usable = time.perf_counter() - t0
        _print_started(op, usable, database_description(op.env, config.prefect_home))
        code = op.run_forever()
        if code:
            typer.secho(
                f"stopped: a process ended unexpectedly: {', '.join(op.dead_children()) or '?'}",
                fg=typer.colors.RED,
                err=True,
            )
        else:
            typer.echo("stopped: server, deployments (paused) and reports server are down")
        raise typer.Exit(code)

    @app.command("down")
    def down(timeout: float = typer.Option(60.0, help="Seconds to wait for a clean stop.")) -> None:
        """Stop a `stockflow up` running in the background (same as Ctrl-C in its terminal)."""
        from stockflow.ops.local import read_state

        state = read_state(_prefect_home())
        if not state:
            typer.echo(f"no running `stockflow up` found (no state file under {_prefect_home()})")
            raise typer.Exit(0)
        pid = int(state["pid"])
        if not _is_stockflow_up(pid):
            typer.echo(f"`stockflow up` (pid {pid}) is not running any more; removing its state file")
            (_prefect_home() / "stockflow-up.json").unlink(missing_ok=True)
            raise typer.Exit(0)
        os.kill(pid, signal.SIGTERM)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and _is_stockflow_up(pid):
            time.sleep(0.25)
        if _is_stockflow_up(pid):
            typer.secho(f"`stockflow up` (pid {pid}) did not stop within {timeout:.0f}s", fg=typer.colors.RED)
            raise typer.Exit(1)
        typer.echo(f"stopped `stockflow up` (pid {pid})")

    @app.command("quarantine")
    def quarantine(
        run: int = typer.Option(None, "--run", help="Only this ingest run's rows."),
        symbol: str = typer.Option(None, "--symbol", help="Only this symbol."),
        rule: str = typer.Option(None, "--rule", help="Only this rule (e.g. ohlc_consistent)."),
        limit: int = typer.Option(50, "--limit", help="At most this many rows, newest first."),
    ) -> None:
        """Rows kept out of the store: symbol, session, rule, raw values, source file and row."""
        from stockflow.config import load_settings
        from stockflow.db import get_engine, upgrade
        from stockflow.ops.quarantine import format_quarantine, quarantine_rows

        engine = get_engine(load_settings().db_url)
        upgrade(engine)
        rows = quarantine_rows(engine, ingest_run_id=run, symbol=symbol, rule=rule, limit=limit)
        typer.echo(format_quarantine(rows))

    @app.command("status")
    def status() -> None:
        """Show whether the local operation runs: UI, deployments with schedules, reports server."""
        from stockflow.config import load_settings
        from stockflow.ops.status import collect_status, format_status

        settings = load_settings()
        st = collect_status(settings, _prefect_home())
        typer.echo(format_status(st))
        typer.echo("")
        typer.echo(_book_text(settings, st.ui_url if st.api_ok else None))
        raise typer.Exit(0 if st.api_ok else 1)


def _book_text(settings: object, ui_url: str | None) -> str:
    """The standing view of the book for the terminal (same data as the reports server's page)."""
    from sqlalchemy.exc import SQLAlchemyError

    from stockflow.config import Settings
    from stockflow.db import get_engine
    from stockflow.ops.book import collect_book, format_book

    assert isinstance(settings, Settings)
    try:
        return format_book(collect_book(settings, get_engine(settings.db_url), ui_url=ui_url))
    except SQLAlchemyError as err:
        return f"Book         unreadable: {type(err).__name__} (run `stockflow db upgrade`?)"


def _is_stockflow_up(pid: int) -> bool:
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ")
    except OSError:
        return False
    # Only ever signal our own `stockflow up`, not a process that reused its pid.
    return b"stockflow" in cmdline and b"up" in cmdline


def _print_started(op: object, usable_s: float, db: str) -> None:
    from stockflow.ops.local import LocalOperation

    assert isinstance(op, LocalOperation)
    cfg = op.config
    t = op.timings
    typer.echo("")
    typer.secho("stockflow is up", fg=typer.colors.GREEN, bold=True)
    typer.echo(f"  Prefect UI    {cfg.ui_url}   (API {cfg.api_url})")
    typer.echo(f"  Reports       {cfg.reports_url}/   serving {cfg.reports_dir}")
    typer.echo(f"  Database      {db}")
    names = ", ".join(n.split("/")[-1] for n in op.wanted_names())
    typer.echo(f"  Deployments   {names}")
    if op.missing_deployments:
        typer.secho(
            f"  NOT served    {', '.join(op.missing_deployments)} (see {cfg.log_dir / 'serve.log'})",
            fg=typer.colors.YELLOW,
        )
    api, ui, ready = (t.get(k, 0.0) for k in ("api_healthy_s", "ui_served_s", "deployments_ready_s"))
    typer.echo(
        f"  Timings       API healthy {api:.1f}s, UI served {ui:.1f}s, deployments ready {ready:.1f}s; "
        f"start command -> usable UI {usable_s:.1f}s"
    )
    typer.echo(f"  Logs          {cfg.log_dir}/server.log, serve.log")
    typer.echo("Press Ctrl-C (or run `stockflow down`) to stop.")
