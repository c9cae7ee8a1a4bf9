"""The state store in trouble: unreachable, read-only, full, connection lost, deleted or replaced.
Each is one line naming the resource and what to do (``stockflow.expected.explain``), never a bug's
traceback; a store that vanished mid-run fails loudly instead of exiting 0."""

from __future__ import annotations

import errno
import os
from pathlib import Path

import pytest
from sqlalchemy import Engine, create_engine, text

from stockflow.db import make_engine, transaction, upgrade
from stockflow.db.engine import check_store_identities
from stockflow.db.models_data import IngestRun
from stockflow.errors import ConfigError, StoreError
from stockflow.expected import explain
from stockflow.ingest import run_ingest
from tests.conftest import _pg_admin_url
from tests.data.conftest import bar_rows, make_settings, trading_days, write_csv


def _line(exc: BaseException) -> str:
    msg = explain(exc)
    assert msg is not None, f"{type(exc).__name__} treated as a bug: {exc}"
    assert "\n" not in msg
    return msg


def _write_one(engine: Engine) -> None:
    with engine.begin() as conn:
        conn.execute(
            IngestRun.__table__.insert().values(
                source="t", status="running", params={}, errors=[], summary={}
            )
        )


def test_bad_database_url_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="database_url 'nosuchdb://x' cannot be used"):
        make_engine("nosuchdb://x")
    with pytest.raises(ConfigError, match="not a database URL"):
        make_engine("::::")


def test_unreachable_postgres_is_one_line() -> None:
    url = _pg_admin_url().rsplit("@", 1)[0] + "@127.0.0.1:1/none"
    with pytest.raises(Exception) as err, make_engine(url).connect():
        pass
    assert "does not answer" in _line(err.value)


def test_read_only_sqlite_is_one_line(tmp_path: Path) -> None:
    db = tmp_path / "s.db"
    upgrade(make_engine(f"sqlite:///{db}"))
    ro = make_engine(f"sqlite:///file:{db}?mode=ro&uri=true")
    with pytest.raises(Exception) as err:
        _write_one(ro)
    assert "read-only" in _line(err.value)


@pytest.mark.postgres
def test_read_only_postgres_is_one_line(engine: Engine) -> None:
    if engine.dialect.name != "postgresql":
        pytest.skip("PostgreSQL half")
    ro = create_engine(engine.url, connect_args={"options": "-c default_transaction_read_only=on"})
    with pytest.raises(Exception) as err:
        _write_one(ro)
    assert "read-only" in _line(err.value)


@pytest.mark.postgres
def test_lost_postgres_connection_is_one_line(engine: Engine) -> None:
    if engine.dialect.name != "postgresql":
        pytest.skip("PostgreSQL half")
    admin = create_engine(_pg_admin_url(), isolation_level="AUTOCOMMIT")
    victim = make_engine(engine.url.render_as_string(hide_password=False))
    with pytest.raises(Exception) as err, victim.begin() as conn:
        pid = conn.execute(text("select pg_backend_pid()")).scalar()
        with admin.connect() as a:
            a.execute(text("select pg_terminate_backend(:p)"), {"p": pid})
        conn.execute(text("select 1"))
    admin.dispose()
    assert "connection was lost" in _line(err.value)


def test_full_disk_is_one_line(tmp_path: Path) -> None:
    db = tmp_path / "full.db"
    eng = make_engine(f"sqlite:///{db}")
    upgrade(eng)
    with pytest.raises(Exception) as err, eng.begin() as conn:
        pages = conn.exec_driver_sql("PRAGMA page_count").scalar()
        conn.exec_driver_sql(f"PRAGMA max_page_count = {pages}")
        conn.exec_driver_sql("CREATE TABLE filler (x TEXT)")
        for _ in range(50):
            conn.exec_driver_sql("INSERT INTO filler VALUES (?)", ("x" * 100_000,))
    assert "disk holding the database is full" in _line(err.value)
    with pytest.raises(OSError) as os_err, open("/dev/full", "wb") as f:
        f.write(b"x" * 10)
        f.flush()
    assert os_err.value.errno == errno.ENOSPC and "disk is full" in _line(os_err.value)


def test_sqlite_store_deleted_mid_run_fails_loudly(tmp_path: Path) -> None:
    db = tmp_path / "gone.db"
    eng = make_engine(f"sqlite:///{db}")
    upgrade(eng)
    _write_one(eng)
    with (
        pytest.raises(StoreError, match="was deleted while this process used it") as err,
        transaction(eng) as s,
    ):
        s.add(IngestRun(source="t", status="running", params={}, errors=[], summary={}))
        s.flush()
        db.unlink()  # the writes so far went to the unlinked file: the commit must not pretend
    assert "Restore" in _line(err.value)
    with pytest.raises(StoreError):
        check_store_identities()
    eng.dispose()


def test_sqlite_store_replaced_mid_run_fails_loudly(tmp_path: Path) -> None:
    db, other = tmp_path / "a.db", tmp_path / "b.db"
    eng = make_engine(f"sqlite:///{db}")
    upgrade(eng)
    upgrade(make_engine(f"sqlite:///{other}"))
    _write_one(eng)
    os.replace(other, db)
    with pytest.raises(StoreError, match="replaced by another file"):
        _write_one(eng)
    eng.dispose()


def test_ingest_into_a_deleted_store_is_not_reported_as_success(tmp_path: Path) -> None:
    d = tmp_path / "in"
    d.mkdir()
    write_csv(d / "a.csv", bar_rows("AAA", trading_days(10)))
    settings = make_settings(tmp_path)
    db = tmp_path / "store.db"
    eng = make_engine(f"sqlite:///{db}")
    upgrade(eng)
    _write_one(eng)
    db.unlink()
    with pytest.raises(StoreError):
        run_ingest(settings, eng, source="files", path=str(d))
    eng.dispose()
