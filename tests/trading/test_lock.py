"""Two runs at the same time must not both trade: the database lock lets exactly one in."""

from __future__ import annotations

import datetime as dt
import threading
import time

import pytest
from sqlalchemy import Engine

from stockflow.db.base import utcnow
from stockflow.db.engine import is_postgres, transaction
from stockflow.db.models_trading import ExecutionLock
from stockflow.execution.lock import TradingLockedError, lock_holder, run_lock


def test_two_runs_at_once_exactly_one_gets_the_lock(engine: Engine) -> None:
    barrier = threading.Barrier(4)
    inside = threading.Event()
    release = threading.Event()
    outcomes: list[str] = []

    def run(i: int) -> None:
        barrier.wait()
        try:
            with run_lock(engine, holder=f"run-{i}"):
                outcomes.append("traded")
                inside.set()
                release.wait(10)
        except TradingLockedError as err:
            assert "another run holds the trading lock" in str(err)
            outcomes.append("refused")

    threads = [threading.Thread(target=run, args=(i,)) for i in range(4)]
    for t in threads:
        t.start()
    assert inside.wait(10)
    deadline = time.monotonic() + 10
    while outcomes.count("refused") < 3 and time.monotonic() < deadline:  # the losers give up at once
        time.sleep(0.02)
    release.set()
    for t in threads:
        t.join(10)
    assert sorted(outcomes) == ["refused", "refused", "refused", "traded"]
    with run_lock(engine, holder="later"):  # released afterwards
        assert "later@" in (lock_holder(engine) or "")


def test_error_names_the_holder(engine: Engine) -> None:
    with (
        run_lock(engine, holder="flow-run-123"),
        pytest.raises(TradingLockedError, match="flow-run-123"),
        run_lock(engine, holder="flow-run-456"),
    ):
        pass


def test_expired_lease_of_a_crashed_holder_is_taken_over(sqlite_engine: Engine) -> None:
    assert not is_postgres(sqlite_engine)
    with transaction(sqlite_engine) as s:
        s.add(
            ExecutionLock(
                name="trading",
                holder="gone@elsewhere:1",
                acquired_at=utcnow(),
                expires_at=utcnow() - dt.timedelta(seconds=1),
            )
        )
    with run_lock(sqlite_engine, holder="next"):
        assert (lock_holder(sqlite_engine) or "").startswith("next@")


def test_live_lease_of_another_machine_blocks(sqlite_engine: Engine) -> None:
    with transaction(sqlite_engine) as s:
        s.add(
            ExecutionLock(
                name="trading",
                holder="other@another-host:1",
                acquired_at=utcnow(),
                expires_at=utcnow() + dt.timedelta(minutes=5),
            )
        )
    with pytest.raises(TradingLockedError, match="another-host"), run_lock(sqlite_engine, holder="me"):
        pass
