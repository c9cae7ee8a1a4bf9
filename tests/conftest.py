"""Shared fixtures: isolated Prefect home, both database backends, settings in a temp directory.

Environment variables are set before Prefect is imported anywhere, so no test touches the user's
~/.prefect or sends telemetry.
"""

from __future__ import annotations

import os
import sys
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path

_PREFECT_HOME = tempfile.mkdtemp(prefix="stockflow-test-prefect-")
os.environ["PREFECT_HOME"] = _PREFECT_HOME
os.environ.setdefault("DO_NOT_TRACK", "1")
os.environ["PREFECT_SERVER_ANALYTICS_ENABLED"] = "false"
os.environ.setdefault("PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS", "120")
os.environ.setdefault("PREFECT_LOGGING_LEVEL", "WARNING")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "0")
# The test's own processes (CLIs, servers, workers) cache compiled modules instead of recompiling Prefect &
# co. at every start (PYTHONDONTWRITEBYTECODE, where the machine sets it, cost seconds per process).
os.environ.pop("PYTHONDONTWRITEBYTECODE", None)
sys.dont_write_bytecode = False
# Never read the developer's own stockflow.yaml or STOCKFLOW_* variables in tests.
# (an empty file: a STOCKFLOW_CONFIG naming a missing file is refused)
os.environ["STOCKFLOW_CONFIG"] = os.path.join(_PREFECT_HOME, "empty-stockflow.yaml")
open(os.environ["STOCKFLOW_CONFIG"], "w").close()
# STOCKFLOW_TEST_* variables configure the test run itself (e.g. the PostgreSQL URL) and stay.
for _k in [
    k
    for k in os.environ
    if k.startswith("STOCKFLOW_") and k != "STOCKFLOW_CONFIG" and not k.startswith("STOCKFLOW_TEST_")
]:
    del os.environ[_k]

import pytest  # noqa: E402
from sqlalchemy import Engine, create_engine, text  # noqa: E402

from stockflow.config import Settings, load_settings  # noqa: E402
from stockflow.db import Base, make_engine, upgrade  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
SHARED_DATA = ROOT.parent / "shared" / "data" / "sp500_cc0" / "sp500_2018_members_1962-2017_daily.csv.gz"
POSTGRES_ADMIN_URL = os.environ.get(
    "STOCKFLOW_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test"
)


def _pg_admin_url() -> str:
    return POSTGRES_ADMIN_URL.replace("postgresql://", "postgresql+psycopg://", 1)


@pytest.fixture(scope="session")
def _postgres_database() -> Iterator[str]:
    """A throw-away PostgreSQL database for this test session, or a skip saying why there is none."""
    admin = create_engine(_pg_admin_url(), isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            conn.execute(text("select 1"))
    except Exception as err:
        admin.dispose()
        pytest.skip(
            f"PostgreSQL not reachable at {POSTGRES_ADMIN_URL} ({type(err).__name__}); "
            "set STOCKFLOW_TEST_POSTGRES_URL to run the Postgres half"
        )
    name = f"stockflow_test_{uuid.uuid4().hex[:10]}"
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    url = _pg_admin_url().rsplit("/", 1)[0] + f"/{name}"
    try:
        yield url
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


@pytest.fixture(scope="session")
def _sqlite_url(tmp_path_factory: pytest.TempPathFactory) -> str:
    return f"sqlite:///{tmp_path_factory.mktemp('db') / 'stockflow.db'}"


_MIGRATED: dict[str, Engine] = {}


def _migrated_engine(url: str) -> Engine:
    if url not in _MIGRATED:
        eng = make_engine(url)
        upgrade(eng)
        _MIGRATED[url] = eng
    return _MIGRATED[url]


def _clear(engine: Engine) -> None:
    with engine.begin() as conn:
        for table in reversed(Base.metadata.sorted_tables):
            conn.execute(table.delete())


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def db_url(request: pytest.FixtureRequest) -> str:
    """The URL of an empty, migrated database: once SQLite, once PostgreSQL."""
    if request.param == "sqlite":
        url = request.getfixturevalue("_sqlite_url")
    else:
        url = request.getfixturevalue("_postgres_database")
    _clear(_migrated_engine(url))
    return url


@pytest.fixture
def engine(db_url: str) -> Engine:
    """An engine on an empty, migrated database (both backends)."""
    return _migrated_engine(db_url)


@pytest.fixture
def sqlite_engine(_sqlite_url: str) -> Engine:
    """An engine on an empty, migrated SQLite database (for tests that need only one backend)."""
    eng = _migrated_engine(_sqlite_url)
    _clear(eng)
    return eng


@pytest.fixture
def settings(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Settings:
    """Default settings with data and reports in a temp dir and a SQLite file there."""
    monkeypatch.chdir(tmp_path)
    return load_settings(data_dir=tmp_path / "data", reports_dir=tmp_path / "reports")


@pytest.fixture(scope="session")
def prefect_api() -> Iterator[None]:
    """A real Prefect API (temporary server with its own database) for flow tests."""
    from prefect.testing.utilities import prefect_test_harness

    with prefect_test_harness(server_startup_timeout=120):
        yield


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """The shared S&P 500 daily file, or a skip naming the missing path."""
    if not SHARED_DATA.exists():
        pytest.skip(f"shared dataset not found at {SHARED_DATA}")
    return SHARED_DATA


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Slow modules first (the README walkthrough and the browser tests, the longest, before all): with the
    suite spread over processes (`make test`: pytest-xdist, one module per worker at a time) the long ones
    start early instead of ending the run alone. Order within a module is kept."""

    def rank(item: pytest.Item) -> int:
        if item.path.name in ("test_readme_walkthrough.py", "test_e2e_browser.py"):  # the two longest
            return 0
        return 1 if item.get_closest_marker("slow") else 2

    module_rank: dict[Path, int] = {}
    for item in items:
        module_rank[item.path] = min(module_rank.get(item.path, 2), rank(item))
    items.sort(key=lambda item: module_rank[item.path])
