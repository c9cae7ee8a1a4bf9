"""Commands of the trading area: the kill switch (``state``), orders, positions, reconciliation."""

from __future__ import annotations

import getpass
from typing import Any

import typer

from stockflow.choices import TRADING_STATES


def _engine() -> Any:
    from stockflow.config import load_settings
    from stockflow.db import get_engine, upgrade

    settings = load_settings()
    engine = get_engine(settings.db_url)
    upgrade(engine)
    return settings, engine


def _whoami() -> str:
    try:
        return f"cli:{getpass.getuser()}"
    except Exception:  # no login name in some containers
        return "cli"


def _print_state(info: Any) -> None:
    typer.echo(f"trading state: {info.state.value}")
    typer.echo(f"  reason:  {info.reason}")
    typer.echo(f"  set by:  {info.set_by} at {info.updated_at:%Y-%m-%d %H:%M:%S} UTC")
    if info.breaker_tripped:
        typer.echo(
            f"  BREAKER TRIPPED at {info.breaker_tripped_at:%Y-%m-%d %H:%M:%S} UTC: {info.breaker_detail}"
        )
        typer.echo("  (reset it with `stockflow state reset --reason ...`)")


def register(app: typer.Typer) -> None:
    """Add this area's commands to app."""
    state_app = typer.Typer(
        help="The trading state (kill switch) and the daily-loss breaker.", no_args_is_help=True
    )

    @state_app.command("show")
    def state_show(history: int = typer.Option(5, help="How many past changes to list.")) -> None:
        """Show the trading state, the breaker and the latest changes."""
        from stockflow.risk.state import get_state, state_history

        _, engine = _engine()
        _print_state(get_state(engine))
        events = state_history(engine, limit=history)
        if events:
            typer.echo("recent changes:")
            for e in events:
                typer.echo(
                    f"  {e.created_at:%Y-%m-%d %H:%M:%S} {e.kind:<12} {e.state_from} -> {e.state_to} "
                    f"by {e.actor}: {e.reason}"
                )

    @state_app.command("set")
    def state_set(
        state: str = typer.Argument(
            ..., help="ACTIVE, REDUCING (exits only) or HALTED (nothing but cancels)."
        ),
        reason: str = typer.Option(..., "--reason", "-r", help="Why (stored with the change)."),
        by: str = typer.Option("", "--by", help="Who (default: the login name)."),
    ) -> None:
        """Set the kill switch. HALTED refuses every new order; cancels still go through."""
        from stockflow.risk.state import set_state

        if state.upper() not in TRADING_STATES:
            raise typer.BadParameter(f"state must be one of {', '.join(TRADING_STATES)}, got {state!r}")
        _, engine = _engine()
        info = set_state(engine, state.upper(), reason=reason, actor=by or _whoami())
        _print_state(info)
        if info.state.value == "HALTED":
            from stockflow.ops.notify import emit_halted

            # With `stockflow up` running, its Prefect automation notifies (issue 11).
            emit_halted(reason=reason, actor=f"stockflow state set ({by or _whoami()})")

    @state_app.command("reset")
    def state_reset(
        reason: str = typer.Option(..., "--reason", "-r", help="Why it is safe to trade again."),
        by: str = typer.Option("", "--by", help="Who resets it (default: the login name)."),
        state: str = typer.Option("ACTIVE", "--state", help="State after the reset."),
    ) -> None:
        """Reset a tripped daily-loss breaker (records who and why) and set the state (ACTIVE)."""
        from stockflow.risk.state import reset_breaker

        if state.upper() not in TRADING_STATES:
            raise typer.BadParameter(f"state must be one of {', '.join(TRADING_STATES)}, got {state!r}")
        _, engine = _engine()
        _print_state(reset_breaker(engine, actor=by or _whoami(), reason=reason, state=state.upper()))

    app.add_typer(state_app, name="state")

    @app.command("orders")
    def orders(
        open_only: bool = typer.Option(False, "--open", help="Only orders that may still fill."),
        limit: int = typer.Option(30, help="How many (newest first)."),
    ) -> None:
        """List stockflow's orders (and adopted outside orders) with their status."""
        from stockflow.execution.order_records import list_orders

        _, engine = _engine()
        rows = list_orders(engine, open_only=open_only, limit=limit)
        if not rows:
            typer.echo("no orders")
            return
        typer.echo(
            f"{'created (UTC)':<19} {'client order id':<44} {'sym':<6} {'side':<4} {'qty':>8} {'type':<6} "
            f"{'status':<16} {'filled':>8} {'avg':>10}  reason"
        )
        for r in rows:
            avg = f"{r.avg_fill_price:.4f}" if r.avg_fill_price is not None else "-"
            note = (
                r.reason
                + (f" [{r.error}]" if r.error else "")
                + (" (outside)" if r.origin == "outside" else "")
            )
            typer.echo(
                f"{r.created_at:%Y-%m-%d %H:%M:%S} {r.client_order_id:<44} {r.symbol:<6} {r.side:<4} "
                f"{r.qty:>8} {r.type:<6} {r.status:<16} {r.filled_qty:>8} {avg:>10}  {note}"
            )

    @app.command("positions")
    def positions() -> None:
        """The broker's positions next to stockflow's ledger, with stops."""
        from sqlalchemy import select

        from stockflow.brokers import make_broker
        from stockflow.db.engine import transaction
        from stockflow.db.models_trading import LedgerPosition

        settings, engine = _engine()
        broker = make_broker(settings, engine)
        acct = broker.account()
        typer.echo(
            f"{broker.name}: equity {acct.equity:.2f}  cash {acct.cash:.2f}  buying power "
            f"{acct.buying_power:.2f}"
        )
        with transaction(engine) as s:
            ledger = {
                r.symbol: r
                for r in s.scalars(select(LedgerPosition).where(LedgerPosition.broker == broker.name))
            }
        from stockflow.execution.stops import broker_stops

        held = broker.positions()
        resting = broker_stops(broker)  # what the broker holds, not what the ledger intends
        if not held:
            typer.echo("no positions")
        for p in held:
            led = ledger.get(p.symbol)
            target = led.stop_price if led is not None else None
            stop = f"{resting[p.symbol]}" if p.symbol in resting else "NONE at broker"
            if target is not None and resting.get(p.symbol) != target:
                stop += f" (target {target})"
            ours = f"{led.qty}" if led is not None else "0"
            price = f"{p.current_price:.2f}" if p.current_price is not None else "-"
            typer.echo(
                f"  {p.symbol:<6} qty {p.qty:>8} (ledger {ours:>6})  avg {p.avg_entry_price:>10.4f}  "
                f"last {price:>10}  value {p.market_value:>10.2f}  P&L {p.unrealized_pnl:>9.2f}  "
                f"stop {stop}"
            )

    @app.command("reconcile")
    def reconcile_cmd(
        adopt: bool = typer.Option(
            False,
            "--adopt",
            help="Accept the broker's positions where they differ from the ledger (recorded as adjustments).",
        ),
    ) -> None:
        """Compare account, positions and open orders with the broker; adopt outside activity."""
        from stockflow.brokers import make_broker
        from stockflow.execution.lock import run_lock
        from stockflow.execution.reconcile import reconcile

        settings, engine = _engine()
        broker = make_broker(settings, engine)
        who = _whoami()
        with run_lock(engine, holder=f"reconcile:{who}"):
            report = reconcile(engine, broker, run_id="cli-reconcile", adopt_unexplained=adopt, actor=who)
        typer.echo(report.summary())
        for cid in report.adopted_orders:
            typer.echo(f"  adopted outside order {cid}")
        for cid, was, now in report.resolved:
            typer.echo(f"  resolved {cid}: {was} -> {now}")
        for a in report.adjustments:
            typer.echo(f"  adjusted {a}")
