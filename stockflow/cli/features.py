"""Commands of the features area."""

from __future__ import annotations

import typer

from stockflow.dates import parse_date


def register(app: typer.Typer) -> None:
    """Add this area's commands to ``app``."""

    @app.command("features")
    def features_cmd(
        symbols: str | None = typer.Option(
            None,
            "--symbols",
            help="Comma-separated symbols; default: the configured universe ('' = all stored).",
        ),
        start: str | None = typer.Option(None, "--start", help="First session of the features (YYYY-MM-DD)."),
        end: str | None = typer.Option(None, "--end", help="Last session (YYYY-MM-DD)."),
    ) -> None:
        """Build features from the stored bars and write them to data_dir/features/<version>/."""
        from stockflow.config import load_settings
        from stockflow.db import make_engine, upgrade
        from stockflow.features.run import compute_and_store

        settings = load_settings()
        engine = make_engine(settings.db_url)
        upgrade(engine)
        chosen = None if symbols is None else [s.strip().upper() for s in symbols.split(",") if s.strip()]
        run, _ = compute_and_store(
            settings, engine, chosen, parse_date(start, "--start"), parse_date(end, "--end")
        )
        s = run.summary()
        typer.echo(
            f"features {s['feature_set_version']} (label horizon {s['label_horizon']}): "
            f"{s['symbols']} symbols, "
            f"{s['rows']:,} rows ({s['usable_rows']:,} usable), {s['first_session']} .. {s['last_session']}, "
            f"{s['seconds']}s"
        )
        typer.echo(f"stored: {s['path'] or 'nothing (no usable rows)'}")
        if run.skipped:
            typer.echo(f"skipped {len(run.skipped)}:")
            for sym, reason in sorted(run.skipped.items()):
                typer.echo(f"  {sym}: {reason}")
