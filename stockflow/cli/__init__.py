"""The ``stockflow`` command line: the user's entry point besides the Prefect UI.

Each area registers its commands from its own module; heavy imports stay inside the commands so that
``stockflow --help`` is instant.
"""

from __future__ import annotations

import os
import sys

import typer
from typer._click import exceptions as _click_exc  # typer 0.2x vendors click

from stockflow.cli import backtest, config_cmd, data, features, ml, ops, pipeline, trading
from stockflow.errors import StockflowError

app = typer.Typer(
    name="stockflow",
    help="Prefect-orchestrated ML pipeline that trades US stocks.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)

for _module in (config_cmd, data, features, ml, trading, pipeline, backtest, ops):
    _module.register(app)


def _quiet_environment() -> None:
    # No telemetry from Prefect or its server, and no TensorFlow banner noise.
    os.environ.setdefault("DO_NOT_TRACK", "1")
    os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    # TensorFlow prints its oneDNN banner before its own log filter is set up; this silences it.
    os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "0")
    # Prefect's ephemeral API server gets 20 s to start by default, too short on a busy 2-core machine.
    os.environ.setdefault("PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS", "120")


def use_running_operation(env: dict[str, str] | os._Environ[str] | None = None) -> str | None:
    """Point Prefect's client at the running `stockflow up`, found by its state file under PREFECT_HOME
    (default ``./.prefect``), when ``PREFECT_API_URL`` is not set: `stockflow approve --list` and the other
    commands then see its runs without an export. Returns the API URL used, or None."""
    import json
    from pathlib import Path

    env = os.environ if env is None else env
    if env.get("PREFECT_API_URL"):
        return None
    home = Path(env.get("PREFECT_HOME") or Path.cwd() / ".prefect")
    try:
        state = json.loads((home / "stockflow-up.json").read_text(encoding="utf-8"))
        pid, api_url = int(state["pid"]), str(state["api_url"])
        os.kill(pid, 0)  # still running (a state file left by a killed `up` is ignored)
    except (OSError, ValueError, KeyError, TypeError):
        return None
    env["PREFECT_API_URL"] = api_url
    return api_url


def main() -> None:
    """Console-script entry point: expected errors print one clear message, not a traceback."""
    _quiet_environment()
    if sys.argv[1:2] != ["up"]:
        use_running_operation()
    try:
        # Outside standalone mode click returns typer.Exit's code instead of exiting with it.
        rv = app(standalone_mode=False)
    except StockflowError as err:
        typer.secho(f"error: {err}", fg=typer.colors.RED, err=True)
        sys.exit(2)
    except typer.Abort:
        typer.secho("aborted", err=True)
        sys.exit(1)
    except _click_exc.ClickException as err:  # usage errors: bad option, missing argument
        err.show()
        sys.exit(err.exit_code)
    if isinstance(rv, int) and rv:
        sys.exit(rv)
