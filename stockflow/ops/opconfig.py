"""Where and how the local operation runs: its configuration, the children's environment, and the files
it shares with the other commands (the state file of a running ``stockflow up``, the serve ready file)."""

from __future__ import annotations

import json
import os
import socket
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from stockflow.config import Settings
from stockflow.config.settings import config_file, redact_url
from stockflow.errors import StockflowError
from stockflow.ops.reports import REPORTS_URL_ENV
from stockflow.ops.security import CLIENT_AUTH_ENV, SERVER_AUTH_ENV, TELEMETRY_OFF, is_loopback

#: The project root (where ``flows/`` and ``deployments/`` live).
PROJECT_ROOT = Path(__file__).resolve().parents[2]
#: File, under PREFECT_HOME, describing the running operation (read by ``stockflow status`` / ``down``).
STATE_FILE = "stockflow-up.json"
#: File, under PREFECT_HOME, the serve process writes once it registered its deployments (what it serves and
#: what it left out); ``stockflow up`` removes it before starting the serve process.
READY_FILE = "serve-ready.json"
DB_URL_ENV = "PREFECT_API_DATABASE_CONNECTION_URL"


class OperationError(StockflowError):
    """The local operation could not start (port taken, server died, deployments did not register)."""


@dataclass(frozen=True)
class OperationConfig:
    """Where and how the local operation runs. Build it with :meth:`from_settings`."""

    reports_dir: Path
    prefect_home: Path
    host: str = "127.0.0.1"
    prefect_port: int = 4200
    reports_port: int = 8765
    project_root: Path = PROJECT_ROOT
    catalog: str | None = None
    deployment_names: tuple[str, ...] = ()
    serve_limit: int | None = None
    startup_timeout_s: float = 240.0
    stop_timeout_s: float = 30.0
    extra_env: Mapping[str, str] = field(default_factory=dict)

    @classmethod
    def from_settings(
        cls,
        settings: Settings,
        *,
        host: str | None = None,
        prefect_port: int | None = None,
        reports_port: int | None = None,
        prefect_home: Path | None = None,
        **kwargs: Any,
    ) -> OperationConfig:
        """The configuration for ``settings``; PREFECT_HOME is ``$PREFECT_HOME`` or ``<cwd>/.prefect``."""
        home = prefect_home or Path(os.environ.get("PREFECT_HOME") or Path.cwd() / ".prefect")
        return cls(
            reports_dir=Path(settings.reports_dir).resolve(),
            prefect_home=home.resolve(),
            host=host or settings.server.host,
            prefect_port=prefect_port if prefect_port is not None else settings.server.prefect_port,
            reports_port=reports_port if reports_port is not None else settings.server.reports_port,
            **kwargs,
        )

    @property
    def client_host(self) -> str:
        """The address clients on this machine use (loopback when the server binds every interface)."""
        return "127.0.0.1" if self.host in ("0.0.0.0", "::", "") else self.host

    @property
    def link_host(self) -> str:
        """The address put in report links: this machine's name when every interface is bound (other
        browsers reach it by name), else the bound address."""
        if self.host in ("0.0.0.0", "::", ""):
            return socket.getfqdn()
        return self.host

    @property
    def ui_url(self) -> str:
        """The Prefect UI."""
        return f"http://{self.client_host}:{self.prefect_port}"

    @property
    def api_url(self) -> str:
        """The Prefect API (``PREFECT_API_URL`` of every child)."""
        return f"{self.ui_url}/api"

    @property
    def reports_url(self) -> str:
        """The reports server."""
        return f"http://{self.client_host}:{self.reports_port}"

    @property
    def log_dir(self) -> Path:
        """Where the children's output goes."""
        return self.prefect_home / "logs"


def database_description(env: Mapping[str, str], prefect_home: Path) -> str:
    """Which database the Prefect server uses, with any password masked."""
    url = env.get(DB_URL_ENV, "").strip()
    if url:
        return redact_url(url)
    return f"SQLite {prefect_home / 'prefect.db'} (set {DB_URL_ENV} to use PostgreSQL)"


def child_env(
    config: OperationConfig, settings: Settings | None = None, base: Mapping[str, str] | None = None
) -> dict[str, str]:
    """The environment of the server and serve processes.

    Telemetry off, Prefect's home and API URL set, the auth string passed to clients when the server has
    one, and stockflow's directories as absolute paths so that flows write where the reports server reads.
    """
    env = dict(os.environ if base is None else base)
    env.update(TELEMETRY_OFF)
    env.update(
        {
            "PREFECT_HOME": str(config.prefect_home),
            "PREFECT_API_URL": config.api_url,
            "PREFECT_SERVER_API_HOST": config.host,
            "PREFECT_SERVER_API_PORT": str(config.prefect_port),
            REPORTS_URL_ENV: env.get(REPORTS_URL_ENV) or f"http://{config.link_host}:{config.reports_port}",
            "STOCKFLOW_REPORTS_DIR": str(config.reports_dir),
            # Flows build report links from these settings: they must name the ports actually used and
            # an address a browser can open (not 0.0.0.0; this machine's name when it is exposed).
            "STOCKFLOW_SERVER__PREFECT_PORT": str(config.prefect_port),
            "STOCKFLOW_SERVER__REPORTS_PORT": str(config.reports_port),
            "STOCKFLOW_SERVER__HOST": config.link_host,
            "PYTHONUNBUFFERED": "1",
        }
    )
    if settings is not None:
        env["STOCKFLOW_DATA_DIR"] = str(Path(settings.data_dir).resolve())
        cfg = config_file()
        if cfg.exists():
            env["STOCKFLOW_CONFIG"] = str(cfg.resolve())
    if not is_loopback(config.host):
        # Browsers on other machines must call the API on the address they reached the UI at, not on
        # this machine's loopback: a relative URL does that (override with PREFECT_UI_API_URL).
        env.setdefault("PREFECT_UI_API_URL", "/api")
    if env.get(SERVER_AUTH_ENV) and not env.get(CLIENT_AUTH_ENV):
        env[CLIENT_AUTH_ENV] = env[SERVER_AUTH_ENV]
    env.update(config.extra_env)
    return env


def read_ready_file(path: Path) -> dict[str, Any] | None:
    """What the serve process wrote once it registered its deployments, or None (not yet)."""
    try:
        return dict(json.loads(path.read_text(encoding="utf-8")))
    except (OSError, ValueError):
        return None


def read_state(prefect_home: Path) -> dict[str, Any] | None:
    """The state file of a running ``stockflow up`` under ``prefect_home``, or None."""
    try:
        return dict(json.loads((prefect_home / STATE_FILE).read_text()))
    except (OSError, ValueError):
        return None
