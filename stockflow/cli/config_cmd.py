"""``stockflow config show`` and ``stockflow db upgrade``."""

from __future__ import annotations

import json

import typer


def register(app: typer.Typer) -> None:
    """Add the config and db command groups."""
    config_app = typer.Typer(help="Show and check settings.", no_args_is_help=True)
    db_app = typer.Typer(help="State store maintenance.", no_args_is_help=True)

    @config_app.command("show")
    def show(as_json: bool = typer.Option(False, "--json", help="Machine-readable output.")) -> None:
        """Print the effective settings with every secret redacted."""
        import yaml

        from stockflow.config import config_file, load_settings

        data = load_settings().redacted()
        if as_json:
            typer.echo(json.dumps(data, indent=2, default=str))
            return
        src = config_file()
        present = "" if src.exists() else ", not present"
        typer.echo(f"# effective settings (file: {src}{present}; env STOCKFLOW_*)")
        typer.echo(yaml.safe_dump(data, sort_keys=False).rstrip())

    @db_app.command("upgrade")
    def db_upgrade() -> None:
        """Create or migrate the state store to the latest schema."""
        from stockflow.config import load_settings, redact_url
        from stockflow.db import get_engine, upgrade

        s = load_settings()
        upgrade(get_engine(s.db_url))
        typer.echo(f"database at {redact_url(s.db_url)} is at the latest schema")

    app.add_typer(config_app, name="config")
    app.add_typer(db_app, name="db")
