"""The trade flow against a real Prefect API, the embedded paper broker and SQLite.

One module-scoped state store holds the sample bars (ingested by the first run) and the model the first
run trains; every test starts from a clean trading state (paper account, orders, ledger, signals).
The session is a replay ``as_of`` 2012-03-30; the top-k book of the small LightGBM's scores becomes
orders (trading.signal_source=best_challenger: the model did not beat the baselines, and the runs say
so).
"""

from __future__ import annotations

import datetime as dt
import os
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, delete, select

from stockflow.db import get_engine, models_pipeline, models_trading, upgrade
from stockflow.db.engine import transaction
from stockflow.db.models_pipeline import ApprovalRequest, PortfolioSnapshot, SignalRow, TradeRun
from stockflow.db.models_trading import OrderRow

AS_OF = dt.date(2012, 3, 30)
NEXT_SESSION = dt.date(2012, 4, 2)
SYMBOLS = ["AAPL", "MSFT", "IBM"]
ROOT = Path(__file__).resolve().parents[2]

pytestmark = [pytest.mark.usefixtures("prefect_api"), pytest.mark.slow]


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Engine]:
    """Settings through the environment (the flow loads its own settings) and a migrated SQLite store."""
    base = tmp_path_factory.mktemp("trade")
    env = {
        "STOCKFLOW_DATA_DIR": str(base / "data"),
        "STOCKFLOW_REPORTS_DIR": str(base / "reports"),
        "STOCKFLOW_DATABASE_URL": f"sqlite:///{base / 'data' / 'stockflow.db'}",
        "STOCKFLOW_DATA__SYMBOLS": '["AAPL","MSFT","IBM"]',
        "STOCKFLOW_MODELS__KINDS": '["lightgbm"]',
        "STOCKFLOW_MODELS__N_FOLDS": "2",
        "STOCKFLOW_MODELS__LGBM_NUM_BOOST_ROUND": "50",
        "STOCKFLOW_TRADING__SIGNAL_SOURCE": "best_challenger",
    }
    mp = pytest.MonkeyPatch()
    for k, v in env.items():
        mp.setenv(k, v)
    engine = get_engine(env["STOCKFLOW_DATABASE_URL"])
    upgrade(engine)
    yield engine
    mp.undo()


@pytest.fixture
def clean(store: Engine) -> Engine:
    """The module's store with bars and models kept and every trading and pipeline row removed."""
    return _wipe(store)


def _wipe(store: Engine) -> Engine:
    tables = [
        obj.__table__
        for mod in (models_pipeline, models_trading)
        for obj in vars(mod).values()
        if isinstance(obj, type) and hasattr(obj, "__table__") and obj.__module__ == mod.__name__
    ]
    from stockflow.db import Base

    order = [t for t in reversed(Base.metadata.sorted_tables) if t in tables]
    with store.begin() as conn:
        for t in order:
            conn.execute(delete(t))
    return store


def _run(mode: str, as_of: dt.date = AS_OF) -> Any:
    from flows.trade import trade_flow

    return trade_flow(mode=mode, as_of=as_of, return_state=True)


def _signals(engine: Engine) -> dict[str, SignalRow]:
    with transaction(engine) as s:
        return {r.symbol: r for r in s.scalars(select(SignalRow))}


def _orders(engine: Engine) -> list[OrderRow]:
    with transaction(engine) as s:
        return list(s.scalars(select(OrderRow).order_by(OrderRow.id)))


def _paper_open_cids(engine: Engine) -> set[str]:
    from stockflow.brokers.paper import PaperBroker

    return {o.client_order_id for o in PaperBroker(engine).open_orders()}


def _artifact(key: str) -> Any:
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterKey
    from prefect.client.schemas.sorting import ArtifactSort

    with get_client(sync_client=True) as c:
        found = c.read_artifacts(
            artifact_filter=ArtifactFilter(key=ArtifactFilterKey(any_=[key])),
            sort=ArtifactSort.CREATED_DESC,
            limit=1,
        )
    return found[0] if found else None


def _in_thread(fn: Callable[[], Any]) -> tuple[threading.Thread, dict[str, Any]]:
    out: dict[str, Any] = {}

    def target() -> None:
        try:
            out["value"] = fn()
        except BaseException as err:
            out["error"] = err

    import contextvars

    th = threading.Thread(target=contextvars.copy_context().run, args=(target,), daemon=True)
    th.start()
    return th, out


def _wait_paused(timeout_s: float = 90) -> Any:
    from stockflow.pipeline.approve import list_paused_runs

    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        runs = list_paused_runs()
        if runs:
            return runs[0]
        time.sleep(0.2)
    raise AssertionError("no trade run paused for approval")


def test_auto_run_trades_fills_next_open_and_snapshots(clean: Engine) -> None:
    # No model yet: the run trains one first, then trades the signals that pass risk.
    state = _run("auto")
    summary = state.result()
    assert state.is_completed(), state.message
    assert summary["model_version"] and summary["signal_source"] in ("champion", "best_challenger")
    if summary["signal_source"] == "best_challenger":
        assert "did NOT beat the baselines" in summary["message"]
    sent = summary["orders_sent"]
    assert sent, summary
    assert {o["side"] for o in sent} == {"buy"}
    # The orders wait at the paper broker for the next bar's open; signals say executed.
    assert _paper_open_cids(clean) == {o["client_order_id"] for o in sent}
    sig = _signals(clean)
    assert {s for s, r in sig.items() if r.status == "executed"} == {o["symbol"] for o in sent}
    for o in summary["orders_refused"]:
        assert sig[o["symbol"]].status == "rejected" and o["reason_code"].startswith("risk:")
    # Artifacts under stable keys, the equity curve on disk.
    for key in ("trade-orders", "trade-positions", "trade-summary", "equity-curve", "trade-reports"):
        assert _artifact(key) is not None, key
    assert "http://127.0.0.1:8765/equity/index.html" in _artifact("equity-curve").data
    reports = Path(os.environ["STOCKFLOW_REPORTS_DIR"])
    assert (reports / "equity" / "equity-curve.png").stat().st_size > 1000

    # The same session again sends no second order (deterministic client order ids).
    again = _run("auto").result()
    assert len(_orders(clean)) == len(sent), again["orders_sent"]
    assert again["orders_sent"] == [], again["orders_sent"]

    # Next session: the paper broker fills at that bar's open, the snapshot shows the positions.
    nxt = _run("auto", NEXT_SESSION)
    s2 = nxt.result()
    assert nxt.is_completed(), nxt.message
    held = {p["symbol"] for p in s2["positions"]}
    assert held == {o["symbol"] for o in sent}
    with transaction(clean) as s:
        snaps = s.scalars(select(PortfolioSnapshot).order_by(PortfolioSnapshot.session)).all()
        assert [r.session for r in snaps] == [AS_OF, NEXT_SESSION]
        assert snaps[1].n_positions == len(held) and snaps[1].daily_pnl == pytest.approx(s2["daily_pnl"])


def test_manual_run_paused_and_answered_from_another_process(
    clean: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    from prefect.flow_runs import resume_flow_run
    from prefect.settings import PREFECT_API_URL

    from stockflow.pipeline.approval import ApprovalError
    from stockflow.pipeline.approve import send_approval

    monkeypatch.setenv("STOCKFLOW_TRADING__APPROVAL_TIMEOUT_S", "120")

    def approver() -> dict[str, Any]:
        run = _wait_paused()
        # Bad answers: clear errors, and the run keeps waiting.
        with pytest.raises(ApprovalError, match="ZZZZ not in this run's plan"):
            send_approval(run.flow_run_id, approve="ZZZZ")
        with pytest.raises(ApprovalError, match="not a flow run id"):
            send_approval("not-a-run", approve=run.symbols[0])
        with pytest.raises(ApprovalError, match="no flow run"):
            send_approval(str(uuid.uuid4()), approve=run.symbols[0])
        with pytest.raises(RuntimeError, match="bogus"):  # Prefect's API checks the saved form too
            resume_flow_run(uuid.UUID(run.flow_run_id), run_input={"plan_hash": run.plan_hash, "bogus": 1})
        # The real answer comes from another process: the headless CLI.
        env = {**os.environ, "PREFECT_API_URL": str(PREFECT_API_URL.value())}
        approved, rejected = run.symbols[0], list(run.symbols[1:])
        cli = str(Path(sys.executable).parent / "stockflow")
        proc = subprocess.run(
            [cli, "approve", run.flow_run_id, "--approve", approved, "--note", "looks fine"],
            env=env, cwd=ROOT, capture_output=True, text=True, timeout=120, check=False,
        )  # fmt: skip
        assert proc.returncode == 0, proc.stderr
        return {"run": run, "approved": approved, "rejected": rejected}

    th, out = _in_thread(approver)
    state = _run("manual")
    th.join(60)
    assert "error" not in out, out.get("error")
    answer = out["value"]
    assert state.is_completed(), state.message
    sig = _signals(clean)
    ok = sig[answer["approved"]]
    assert ok.status == "executed" and ok.decided_by == "broker"
    # Exactly the approved order reached the broker.
    assert _paper_open_cids(clean) == {ok.client_order_id}
    for s in answer["rejected"]:
        assert sig[s].status == "rejected" and sig[s].reason_code == "human:rejected"
        assert sig[s].decision_note == "looks fine"
    with transaction(clean) as s:
        req = s.scalars(select(ApprovalRequest)).one()
        assert req.status == "decided" and req.decision[answer["approved"]] == "approve"
    assert "DECIDED" in _artifact("trade-approval").data


def test_hybrid_asks_only_for_the_orders_in_the_band_in_rank_order(
    clean: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    # An auto run shows the book's entries and their P(outperform); then, from the same clean state, a
    # hybrid run whose band holds only the least confident of them.
    entries = [d for d in _run("auto").result()["signal_details"] if d["action"] == "buy"]
    assert len(entries) >= 2, entries
    probs = sorted(d["probability"] for d in entries)
    lo, hi = probs[0] - 1e-4, probs[len(probs) // 2 - 1] + 1e-4  # the summary rounds to 4 digits
    in_band = [d["symbol"] for d in entries if lo <= d["probability"] <= hi]  # signal_details: rank order
    outside = {d["symbol"] for d in entries} - set(in_band)
    assert in_band and outside, entries
    _wipe(clean)
    monkeypatch.setenv("STOCKFLOW_PORTFOLIO__APPROVAL_BAND_LOW", f"{lo:.8f}")
    monkeypatch.setenv("STOCKFLOW_PORTFOLIO__APPROVAL_BAND_HIGH", f"{hi:.8f}")
    monkeypatch.setenv("STOCKFLOW_PORTFOLIO__APPROVAL_NOTIONAL", "1e12")
    monkeypatch.setenv("STOCKFLOW_TRADING__APPROVAL_TIMEOUT_S", "120")

    def approver() -> Any:
        from stockflow.pipeline.approve import send_approval

        run = _wait_paused()
        send_approval(run.flow_run_id, approve=",".join(run.symbols))
        return run

    th, out = _in_thread(approver)
    state = _run("hybrid")
    th.join(60)
    assert "error" not in out, out.get("error")
    assert state.is_completed(), state.message
    run = out["value"]
    assert list(run.symbols) == in_band  # only the orders in the band, in rank order
    lines = [run.description.index(f"{s}**") for s in in_band]  # the form: one line per order
    assert lines == sorted(lines) and "P(outperform)" in run.description
    sig = _signals(clean)
    assert {s for s, r in sig.items() if r.route == "approval"} == set(in_band)
    assert {s for s, r in sig.items() if r.route == "auto" and r.status == "executed"} == outside


def test_unanswered_approval_expires_and_sends_nothing(
    clean: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("STOCKFLOW_TRADING__APPROVAL_TIMEOUT_S", "10")
    state = _run("manual")
    assert state.is_completed() and state.name == "Expired", (state.name, state.message)
    assert "expired unapproved" in state.message and "NOT sent" in state.message
    assert _orders(clean) == [] and _paper_open_cids(clean) == set()
    sig = {s: r for s, r in _signals(clean).items() if r.route == "approval"}
    assert sig and all(r.status == "expired" and r.reason_code == "approval:expired" for r in sig.values())
    with transaction(clean) as s:
        assert s.scalars(select(ApprovalRequest)).one().status == "expired"
        assert s.scalars(select(TradeRun)).one().status == "expired"
    assert "EXPIRED" in _artifact("trade-approval").data


def test_answer_for_another_plan_sends_nothing(clean: Engine, monkeypatch: pytest.MonkeyPatch) -> None:
    from prefect.flow_runs import resume_flow_run

    from stockflow.pipeline.approval import ApprovalError
    from stockflow.pipeline.approve import send_approval

    monkeypatch.setenv("STOCKFLOW_TRADING__APPROVAL_TIMEOUT_S", "120")

    def approver() -> None:
        run = _wait_paused()
        with pytest.raises(ApprovalError, match="plan hash deadbeef"):
            send_approval(run.flow_run_id, approve=",".join(run.symbols), plan_hash="deadbeef")
        # A stale client that ignores the check: the run itself refuses.
        resume_flow_run(
            uuid.UUID(run.flow_run_id),
            run_input={"plan_hash": "0" * 16, **{s: "approve" for s in run.symbols}},
        )

    th, out = _in_thread(approver)
    state = _run("manual")
    th.join(60)
    assert "error" not in out, out.get("error")
    assert state.name == "Refused" and "plan mismatch" in state.message, state.message
    assert _orders(clean) == []
    sig = [r for r in _signals(clean).values() if r.route == "approval"]
    assert sig and all(r.status == "rejected" and r.reason_code == "approval:plan_mismatch" for r in sig)


def test_refusals_lock_stale_data_and_unknown_symbols(clean: Engine) -> None:
    from stockflow.execution import run_lock

    with run_lock(clean, "a concurrent trade run"):
        state = _run("auto")
    assert state.is_failed() and "a concurrent trade run" in state.message
    assert _orders(clean) == []
    stale = _run("auto", dt.date(2020, 1, 2))
    assert stale.is_failed() and "stale data" in stale.message and "2013-03-01" in stale.message
    from flows.trade import trade_flow

    unknown = trade_flow(mode="auto", symbols=["ZZZZ"], return_state=True)
    assert unknown.is_failed() and "ZZZZ" in (unknown.message or "")
    malformed = trade_flow(mode="auto", symbols=["AA PL"], return_state=True)
    assert malformed.is_failed() and "invalid symbol 'AA PL'" in (malformed.message or "")
    assert _orders(clean) == []


def test_prefect_timeout_backstop_still_reports_expiry() -> None:
    """Without the watchdog (API down at the deadline), Prefect's own pause timeout fires: the wait
    still ends as an expiry the run records, and Prefect ends the run Failed, as documented."""
    from prefect import flow

    from stockflow.pipeline.approval import ProposedOrder, approval_form, plan_hash
    from stockflow.pipeline.pause import wait_for_approval

    order = ProposedOrder(
        symbol="AAA", side="buy", qty=1, reference_price=10, confidence=0.7, probability=0.7,
        risk_amount=0.3, risk_pct=0.0, notional=10,
    )  # fmt: skip
    h = plan_hash([order])
    seen: list[Any] = []

    @flow(name="pause-backstop")
    def waits() -> None:
        seen.append(
            wait_for_approval(
                approval_form([order], h, "plan"), plan_hash=h, symbols=["AAA"], timeout_s=2, watchdog=False
            )
        )

    state = waits(return_state=True)
    assert seen and seen[0].expired and seen[0].how == "prefect_timeout" and seen[0].answer is None
    assert state.is_failed() and "never resumed" in (state.message or "")


def test_empty_universe_means_every_symbol_the_source_holds(
    clean: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``data.symbols: []`` is documented as "every symbol the source offers"; the trade flow used to
    refuse it ("no symbols to trade") after a traceback."""
    monkeypatch.setenv("STOCKFLOW_DATA__SYMBOLS", "[]")
    state = _run("auto")
    assert state.is_completed(), state.message
    summary = state.result()
    assert set(summary["symbols"]) > {"AAPL", "GOOG", "IBM", "MSFT"}  # every symbol of the sample
    assert summary["predictions"] >= 3 and summary["portfolio"]["k"] >= 1


def test_rerun_counts_only_the_orders_it_sent(clean: Engine) -> None:
    """Issue 10 defect 4: a re-run of the session finds the earlier run's orders (still working at the
    broker) "already submitted" and must not report them as sent. Once they are cancelled unfilled, a
    re-run sends the book's orders again under new ids (a new intent: Alpaca never takes an id twice)
    and counts those, once."""
    from stockflow.brokers.paper import PaperBroker

    sent = _run("auto").result()["orders_sent"]
    assert sent
    again = _run("auto").result()
    assert len(_orders(clean)) == len(sent)
    assert again["orders_sent"] == [], again["orders_sent"]
    # (the working buys use cash, so the re-run's book may want fewer of them: a subset, not none)
    assert again["orders_already_sent"]
    assert {o["symbol"] for o in again["orders_already_sent"]} <= {o["symbol"] for o in sent}
    assert "0 order(s) sent" in again["message"], again["message"]
    paper = PaperBroker(clean)
    for o in paper.open_orders():
        paper.cancel(o.broker_order_id)
    third = _run("auto").result()
    assert {o["symbol"] for o in third["orders_sent"]} == {o["symbol"] for o in sent}
    assert len(_orders(clean)) == 2 * len(sent)  # new ids; the cancelled ones are not counted again
    assert third["orders_already_sent"] == []


def test_the_run_reads_the_bars_once(clean: Engine) -> None:
    """Read the market once per run (issue 13): the bars are loaded by one statement; prediction and
    the orders' drivers take them from the run's market view instead of reading the store again."""
    from sqlalchemy import event

    _run("auto")  # a model exists from here on (the first run of the module trains one)
    _wipe(clean)
    reads: list[str] = []

    def count(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        # load_bars selects every bar column; the session queries read max(session) only.
        if statement.lstrip().upper().startswith("SELECT") and "bars.open" in statement:
            reads.append(statement)

    event.listen(clean, "before_cursor_execute", count)
    try:
        state = _run("auto")
    finally:
        event.remove(clean, "before_cursor_execute", count)
    assert state.is_completed(), state.message
    assert state.result()["predictions"] > 0
    assert len(reads) == 1, reads


def test_the_run_builds_the_features_once_and_explains_the_scored_rows(
    clean: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Features are built once per trade run (issue 13): inside predict; the orders' drivers are the
    model's own attributions on exactly the rows it scored, not on a second build from the market view
    (whose longer history gives EMA-type indicators other values). On the old code: two builds, and the
    drivers' values and contributions differ from the scored rows'."""
    import numpy as np
    import polars as pl

    import stockflow.features.build as fbuild
    from stockflow.pipeline import model_choice
    from stockflow.pipeline.signals import model_drivers

    _run("auto")  # a model exists from here on (the first run of the module trains one)
    _wipe(clean)
    built: list[pl.DataFrame] = []
    reports: list[Any] = []
    build, run_predict = fbuild._build, model_choice.run_predict

    def counted(*args: Any, **kwargs: Any) -> Any:  # every feature build goes through _build
        res = build(*args, **kwargs)
        built.append(res.frame)
        return res

    def kept(*args: Any, **kwargs: Any) -> Any:
        reports.append(run_predict(*args, **kwargs))
        return reports[-1]

    monkeypatch.setattr(fbuild, "_build", counted)
    monkeypatch.setattr(model_choice, "run_predict", kept)
    state = _run("auto")
    assert state.is_completed(), state.message
    assert state.result()["predictions"] > 0
    assert len(built) == 1, f"features built {len(built)} times in one trade run"

    rep = reports[0]
    model = rep.model
    assert model.context_rows == 1  # the module's LightGBM: its scored rows are the session's rows
    scored = built[0].filter(~pl.col("warmup") & (pl.col("session") == AS_OF)).sort("symbol")
    probs = {p.symbol: p.probability for p in rep.predictions}
    X = scored.select(list(model.feature_names)).to_numpy().astype(np.float64)
    p = model.predict_proba(X, groups=scored.get_column("symbol").to_numpy())
    for sym, prob in zip(scored.get_column("symbol").to_list(), p, strict=True):
        assert prob == pytest.approx(probs[sym])  # these are the rows the model scored
    with_drivers = {s: r.drivers for s, r in _signals(clean).items() if r.drivers}
    assert with_drivers, "no signal got drivers"
    want = model_drivers(model, scored.filter(pl.col("symbol").is_in(list(with_drivers))))
    for sym, drivers in with_drivers.items():
        assert drivers == [d.as_dict() for d in want[sym]], sym
