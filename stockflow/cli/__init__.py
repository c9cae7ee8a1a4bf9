"""The ``stockflow`` command line: the user's entry point besides the Prefect UI.

Each area registers its commands from its own module; heavy imports stay inside the commands so that
``stockflow --help`` is instant.
"""

from __future__ import annotations

import os
import signal
import sys
import traceback

import typer
from typer._click import exceptions as _click_exc  # typer 0.2x vendors click

from stockflow.cli import backtest, config_cmd, data, features, ml, ops, pipeline, trading
from stockflow.expected import DEBUG_ENV, debug_enabled, explain, install

app = typer.Typer(
    name="stockflow",
    help="Prefect-orchestrated ML pipeline that trades US stocks. Expected errors print one line; "
    "`stockflow --debug COMMAND` shows their traceback too.",
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


def _take_debug_flag(argv: list[str]) -> bool:
    """Remove a global ``--debug`` from ``argv`` (before the command name or after it)."""
    if "--debug" in argv:
        argv.remove("--debug")
        return True
    return False


def _terminate(signum: int, _frame: object) -> None:
    # SIGTERM unwinds like Ctrl-C: the run is marked crashed/failed, atexit stops the temporary Prefect
    # server. (kill -9 cannot be caught: see stockflow.ops.orphans for that case.)
    raise KeyboardInterrupt(f"terminated by signal {signum}")


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
    """Console-script entry point: expected errors print one clear line, not a traceback; bugs (and
    everything under ``--debug``) keep theirs."""
    _quiet_environment()
    if _take_debug_flag(sys.argv):
        os.environ[DEBUG_ENV] = "1"
    install()
    signal.signal(signal.SIGTERM, _terminate)
    from stockflow.orphans import guard_ephemeral_server

    guard_ephemeral_server()
    if sys.argv[1:2] != ["up"]:
        use_running_operation()
    try:
        # Outside standalone mode click returns typer.Exit's code instead of exiting with it.
        rv = app(standalone_mode=False)
        from stockflow.db.engine import check_store_identities

        check_store_identities()
    except typer.Abort:
        typer.secho("aborted", err=True)
        sys.exit(1)
    except KeyboardInterrupt as err:
        typer.secho(f"interrupted ({err or 'Ctrl-C'}); the run was stopped", err=True)
        sys.exit(130)
    except _click_exc.ClickException as err:  # usage errors: bad option, missing argument
        err.show()
        sys.exit(err.exit_code)
    except Exception as err:
        line = explain(err)
        if line is None or debug_enabled():
            traceback.print_exc()
        if line is None:
            typer.secho(f"error (a bug, please report it with the traceback above): {err}", err=True)
            sys.exit(1)
        typer.secho(f"error: {line}", fg=typer.colors.RED, err=True)
        sys.exit(2)
    if isinstance(rv, int) and rv:
        sys.exit(rv)
