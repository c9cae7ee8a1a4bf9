"""The ``kill-switch`` flow: set the persisted trading state from a Prefect deployment (the UI's "Run"
button with parameters), and when HALTED cancel open orders at the broker right away."""

from __future__ import annotations

from prefect import flow, task
from prefect.runtime import flow_run

import flows  # noqa: F401  (one line for expected errors, also when Prefect loads this file by path)
from stockflow.brokers import make_broker
from stockflow.choices import TradingStateName
from stockflow.config import load_settings
from stockflow.db import get_engine, upgrade
from stockflow.execution.halt import cancel_open_orders
from stockflow.ops.notify import emit_halted
from stockflow.risk.state import set_state


@task(name="set-trading-state")
def set_trading_state(state: str, reason: str, actor: str) -> dict[str, object]:
    """Persist the state; refuses to leave HALTED while the daily-loss breaker is tripped."""
    settings = load_settings()
    engine = get_engine(settings.db_url)
    upgrade(engine)
    info = set_state(engine, state, reason=reason, actor=actor)
    return {
        "state": info.state.value,
        "reason": info.reason,
        "set_by": info.set_by,
        "breaker_tripped": info.breaker_tripped,
    }


@task(name="cancel-open-orders")
def cancel_orders_now(run_id: str) -> dict[str, object]:
    """Cancel open orders (protective stops stay) so that HALTED takes effect at once."""
    settings = load_settings()
    engine = get_engine(settings.db_url)
    report = cancel_open_orders(engine, make_broker(settings, engine), run_id=run_id)
    return {
        "cancelled": [o.client_order_id for o in report.cancelled],
        "kept_stops": [o.client_order_id for o in report.kept_stops],
        "errors": report.errors,
    }


@flow(name="kill-switch", log_prints=True)
def kill_switch_flow(
    state: TradingStateName = "HALTED", reason: str = "set from the Prefect UI"
) -> dict[str, object]:
    """Set the trading state (ACTIVE / REDUCING / HALTED) with a reason; HALTED also cancels open
    orders at the broker (a failure to reach the broker is logged; the state is set regardless)."""
    run_name = flow_run.get_name() or "kill-switch"
    out = set_trading_state(state, reason, actor=f"prefect:{run_name}")
    if state == "HALTED":
        emit_halted(reason=reason, actor=f"kill switch (prefect:{run_name})")
        print("HALTED: cancelling open orders at the broker now (protective stops stay)")
        try:
            out["cancel"] = cancel = cancel_orders_now(run_id=f"kill-switch-{flow_run.get_id() or 'local'}")
            print(
                f"cancelled {len(cancel['cancelled'])} open order(s) {cancel['cancelled']}; kept "  # type: ignore[arg-type]
                f"{len(cancel['kept_stops'])} protective stop(s); errors: {cancel['errors'] or 'none'}"  # type: ignore[arg-type]
            )
        except Exception as err:  # the state is set already; the next trade run cancels too
            print(f"could not cancel open orders now ({type(err).__name__}: {err}); state is HALTED anyway")
            out["cancel"] = {"error": str(err)}
    print(f"trading state is now {out['state']} ({reason})")
    return out
