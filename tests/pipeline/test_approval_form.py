"""The approval form Prefect renders, the plan hash, and answers built for ``stockflow approve``."""

from __future__ import annotations

import datetime as dt

import pytest
from prefect._internal.pydantic.v2_schema import create_v2_schema

from stockflow.pipeline.approval import (
    EXPIRED_NOTE,
    ApprovalError,
    ProposedOrder,
    approval_form,
    build_answer,
    check_answer_against_schema,
    expiry_answer,
    form_markdown,
    plan_hash,
    plan_markdown,
    read_answer,
)


def _order(sym: str, qty: float = 10, price: float = 100.0, rank: int | None = None) -> ProposedOrder:
    return ProposedOrder(
        symbol=sym,
        side="buy",
        qty=qty,
        reference_price=price,
        stop_price=price * 0.97,
        confidence=0.7,
        probability=0.7,
        risk_amount=qty * price * 0.03,
        risk_pct=qty * price * 0.03 / 10_000,
        notional=qty * price,
        reason="hybrid: needs approval",
        client_order_id=f"sf-{sym}",
        rank=rank,
        score=None if rank is None else 1.0 / rank,
        expected_excess=None if rank is None else 0.002,
    )


PLAN = [_order("AAPL", rank=3), _order("BRK.B", 2, 180.0, rank=1), _order("IBM", 5)]


def test_plan_hash_ignores_order_and_sees_every_change() -> None:
    h = plan_hash(PLAN)
    assert h == plan_hash(list(reversed(PLAN)))
    assert h != plan_hash([_order("AAPL", qty=11), *PLAN[1:]])
    assert h != plan_hash([_order("AAPL", price=100.01), *PLAN[1:]])
    assert h != plan_hash(PLAN[:2])


def test_form_schema_is_what_the_ui_renders() -> None:
    h = plan_hash(PLAN)
    md = plan_markdown(PLAN, h, deadline=dt.datetime(2030, 1, 1, tzinfo=dt.UTC), equity=10_000)
    form = approval_form(PLAN, h, md)
    schema = create_v2_schema(form.__name__, model_base=form)  # exactly what pause_flow_run saves
    props = schema["properties"]
    assert schema["additionalProperties"] is False
    assert set(props) == {"plan_hash", "note", "AAPL", "BRK.B", "IBM"}
    assert props["AAPL"]["enum"] == ["approve", "reject"] and props["AAPL"]["default"] == "reject"
    assert props["AAPL"]["title"] == "AAPL: BUY 10 @ 100.00"
    desc = props["AAPL"]["description"]
    assert "rank 3, score 0.3333, expected excess +0.20%, P(outperform) 0.700" in desc
    assert "risk taken $30.00" in desc
    assert props["plan_hash"]["default"] == h
    assert form._description == md
    for col in ("rank", "symbol", "side", "qty", "reference price", "score", "expected excess",
                "P(outperform)", "risk taken", "reason", "calibrated probability"):  # fmt: skip
        assert col in md
    # Rows and form fields in rank order, unscored last.
    rows = [ln.split("|")[2].strip() for ln in md.splitlines() if ln.startswith("| ") and "---" not in ln]
    assert rows[1:] == ["BRK.B", "AAPL", "IBM"]
    assert [k for k in props if k not in ("plan_hash", "note")] == ["BRK.B", "AAPL", "IBM"]
    # The run loads the answer with the form: aliases (BRK.B) and defaults work.
    answer = read_answer(form(**{"plan_hash": h, "AAPL": "approve", "BRK.B": "approve"}))
    assert answer.approved == ("AAPL", "BRK.B") and answer.rejected == ("IBM",)
    assert not answer.is_watchdog_expiry
    expired = read_answer(form(**expiry_answer(["AAPL", "BRK.B", "IBM"], h)))
    assert expired.is_watchdog_expiry and expired.approved == () and expired.note == EXPIRED_NOTE


def test_form_refuses_two_orders_for_one_symbol() -> None:
    with pytest.raises(ApprovalError, match="one order per symbol"):
        approval_form([_order("AAPL"), _order("AAPL", 3)], "h", "")


def test_build_answer_checks_symbols_and_hash() -> None:
    syms = [o.symbol for o in PLAN]
    h = plan_hash(PLAN)
    ans = build_answer(syms, h, approve="aapl, brk.b", reject=["IBM"], note="ok")
    assert ans == {"plan_hash": h, "note": "ok", "AAPL": "approve", "BRK.B": "approve", "IBM": "reject"}
    # Orders not named are rejected.
    assert build_answer(syms, h, approve="IBM")["AAPL"] == "reject"
    with pytest.raises(ApprovalError, match="MSFT not in this run's plan"):
        build_answer(syms, h, approve="AAPL,MSFT")
    with pytest.raises(ApprovalError, match="both approved and rejected"):
        build_answer(syms, h, approve="AAPL", reject="AAPL")
    with pytest.raises(ApprovalError, match="plan hash deadbeef"):
        build_answer(syms, h, approve="AAPL", expected_hash="deadbeef")


def test_answer_checked_against_saved_schema() -> None:
    h = plan_hash(PLAN)
    form = approval_form(PLAN, h, "")
    schema = create_v2_schema(form.__name__, model_base=form)
    check_answer_against_schema({"plan_hash": h, "AAPL": "approve"}, schema)
    with pytest.raises(ApprovalError, match="not in the run's approval form: bogus"):
        check_answer_against_schema({"plan_hash": h, "bogus": 1}, schema)
    with pytest.raises(ApprovalError, match="'yes' is not one of"):
        check_answer_against_schema({"plan_hash": h, "AAPL": "yes"}, schema)
    with pytest.raises(ApprovalError, match="expected text"):
        check_answer_against_schema({"plan_hash": 5}, schema)


def test_form_shows_one_wrapping_line_per_order_and_points_to_the_whole_plan() -> None:
    """Prefect's pause form is a ~500 px modal: no table there (it scrolled out of sight, issue 11)."""
    h = plan_hash(PLAN)
    deadline = dt.datetime(2030, 1, 1, 16, 5, tzinfo=dt.UTC)
    md = form_markdown(
        PLAN, h, deadline=deadline, equity=10_000, flow_run_id="r-1", book_url="http://127.0.0.1:8765/"
    )
    assert "|" not in md.replace("`", "")  # no markdown table
    orders = [ln for ln in md.splitlines() if ln.startswith("- ")]
    assert orders == [
        "- **#1 BRK.B** BUY 2 @ 180.00, stop 174.60: P(outperform) 0.700, risk $10.80 (0.11% of equity)",
        "- **#3 AAPL** BUY 10 @ 100.00, stop 97.00: P(outperform) 0.700, risk $30.00 (0.30% of equity)",
        "- **IBM** BUY 5 @ 100.00, stop 97.00: P(outperform) 0.700, risk $15.00 (0.15% of equity)",
    ]
    assert "2030-01-01 16:05:00 UTC" in md and f"`{h}`" in md and "calibrated probability" in md
    assert "`trade-approval` artifact and on [the book](http://127.0.0.1:8765/)" in md
    assert "`stockflow approve r-1 --approve AAPL,BRK.B,IBM`" in md
