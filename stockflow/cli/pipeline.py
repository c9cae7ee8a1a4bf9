"""Commands of the pipeline area: ``stockflow run`` (the daily trade pipeline once) and
``stockflow approve`` (answer a trade run waiting for approval, headless).

Approval needs a Prefect API that both the paused run and the approver reach:

- With a Prefect server (``stockflow up``, or ``PREFECT_API_URL`` set), ``stockflow run --mode hybrid``
  prints the run's UI page and the ``stockflow approve`` command, and waits; approve in the UI form or
  from any terminal.
- Without one, Prefect runs an ephemeral API inside this process that no other process can reach, so
  ``stockflow run`` asks in the terminal (when it is interactive) and answers through the same
  ``resume_flow_run`` path; when it is not interactive it refuses to start a run that would wait for
  an answer nobody can give.
"""

from __future__ import annotations

import sys
import threading
import time
from typing import Any

import typer

from stockflow.choices import SOURCE_NAMES, TRADE_MODES


def _prefect_api_url() -> str | None:
    from prefect.settings import PREFECT_API_URL

    url = PREFECT_API_URL.value()
    return str(url) if url else None


def ui_url_for(flow_run_id: str) -> str | None:
    """The Prefect UI page of a flow run, when a server is configured."""
    api = _prefect_api_url()
    if not api:
        return None
    from prefect.settings import PREFECT_UI_URL

    ui = PREFECT_UI_URL.value() or api.removesuffix("/api")
    return f"{str(ui).rstrip('/')}/runs/flow-run/{flow_run_id}"


def _print_plan(pending: Any) -> None:
    typer.echo("")
    typer.secho(f"Trade run {pending.flow_run_id} waits for approval (plan {pending.plan_hash}):", bold=True)
    for o in pending.orders:
        typer.echo(f"  {o.title}  - {o.details()}")
    typer.echo(
        f"  deadline {pending.deadline:%Y-%m-%d %H:%M:%S} UTC (unanswered orders expire, nothing sent)"
    )


def _approval_helper(engine: Any, since: Any, interactive: bool, stop: threading.Event) -> None:
    """Watch for this run's approval request: print how to answer, and ask in the terminal when there is
    no server another process could use."""
    from stockflow.pipeline.approval import ApprovalError
    from stockflow.pipeline.approve import send_approval
    from stockflow.pipeline.trade_records import pending_approvals

    seen: set[int] = set()
    while not stop.wait(0.5):
        try:
            pending = [p for p in pending_approvals(engine, since=since) if p.id not in seen]
        except Exception:
            continue
        for p in pending:
            seen.add(p.id)
            _print_plan(p)
            url = ui_url_for(p.flow_run_id or "")
            syms = ",".join(p.symbols)
            if url:
                typer.echo(f"  approve in the UI: {url}")
            typer.echo(f"  or headless: stockflow approve {p.flow_run_id} --approve {syms} [--reject ...]")
            if not interactive:
                continue
            approved: list[str] = []
            for o in p.orders:
                ans = typer.prompt(f"  approve {o.title}? [y/N]", default="n", show_default=False)
                if ans.strip().lower() in ("y", "yes"):
                    approved.append(o.symbol)
            note = typer.prompt("  note (optional)", default="", show_default=False)
            try:
                send_approval(
                    p.flow_run_id or "", approve=approved, note=note, plan_hash=p.plan_hash, wait_s=60
                )
                typer.echo(f"  sent: approved {', '.join(approved) or 'nothing'}; the run resumes")
            except ApprovalError as err:
                typer.secho(f"  not sent: {err}", fg=typer.colors.RED)


def _status_label(status: str) -> str:
    """A signal's status as a person reads it: "executed" only meant the broker accepted the order
    (a paper order fills at the next open), so it reads "sent to the broker" (issue 11)."""
    return "sent to the broker" if status == "executed" else status


def _print_summary(summary: dict[str, Any]) -> None:
    from stockflow.portfolio.construct import CONFIDENCE_DEFINITION

    typer.echo("")
    typer.secho(f"trade run: {summary.get('outcome', '?')} - {summary.get('message', '')}", bold=True)
    for key, label in (
        ("mode", "mode"),
        ("expected_session", "session"),
        ("model_version", "model"),
        ("rows_ingested", "bars ingested"),
        ("predictions", "predictions"),
    ):
        if summary.get(key) is not None:
            typer.echo(f"  {label}: {summary[key]}")
    sig = summary.get("signals") or {}
    if sig:
        typer.echo("  signals: " + ", ".join(f"{k} {v}" for k, v in sorted(sig.items())))
    pf = summary.get("portfolio") or {}
    if not pf and summary.get("outcome") in ("NoModel", "Stale", "Locked"):
        held = summary.get("n_positions")
        typer.echo(
            "  portfolio: unchanged, no book was built this run"
            + (f" ({held} position(s) held)" if held is not None else "")
        )
    if pf:
        typer.echo(f"  portfolio (top {pf.get('k')}):")
        for key, label in (("entered", "entered"), ("exited", "exited"), ("kept", "kept"),
                           ("not_entered", "not entered"), ("not_exited", "not exited")):  # fmt: skip
            if pf.get(key) or key in ("entered", "exited", "kept"):
                typer.echo(f"    {label}: {', '.join(pf.get(key) or []) or '-'}")
    details = summary.get("signal_details") or []
    if details:
        typer.echo("  " + CONFIDENCE_DEFINITION)
    for s in details:
        rank = "-" if s.get("rank") is None else s["rank"]
        score = "-" if s.get("score") is None else f"{s['score']:.4g}"
        excess = "-" if s.get("expected_excess") is None else f"{s['expected_excess']:+.2%}"
        typer.echo(
            f"    #{rank} {s['symbol']}: {s['action'].upper()} score {score}, expected excess {excess}, "
            f"P(outperform) {s['probability']:.3f} -> {s['route']}, {_status_label(s['status'])} "
            f"({s['reason_code']})"
        )
    sent = summary.get("orders_sent") or []
    refused = summary.get("orders_refused") or []
    typer.echo(f"  orders sent: {len(sent)}")
    for o in sent:
        typer.echo(
            f"    {o['side'].upper()} {o['qty']:g} {o['symbol']} "
            f"@ ~{o['reference_price']:.2f} ({o['status']})"
        )
    already = summary.get("orders_already_sent") or []
    if already:
        typer.echo(f"  orders already sent by an earlier run of this session (not counted): {len(already)}")
        for o in already:
            typer.echo(f"    {o['side'].upper()} {o['qty']:g} {o['symbol']} ({o['status']})")
    typer.echo(f"  orders refused: {len(refused)}")
    for o in refused:
        typer.echo(f"    {o['symbol']}: {o['reason_code']} - {o['reason']}")
    if summary.get("equity") is not None:
        typer.echo(f"  equity: ${summary['equity']:,.2f}  daily P&L: ${summary.get('daily_pnl', 0.0):+,.2f}")
    if summary.get("equity_curve"):
        typer.echo(f"  equity curve: {summary['equity_curve']}")


def _check_as_of(as_of: str | None, calendar: str) -> None:
    """Refuse an --as-of that is not a date or lies outside the exchange calendar, in one line."""
    if not as_of:
        return
    import datetime as dt

    from stockflow.calendar import sessions
    from stockflow.dates import parse_date
    from stockflow.errors import ConfigError

    day = parse_date(as_of, "--as-of")
    if day is None:
        return
    arr = sessions(calendar)
    first, last = dt.date.fromisoformat(str(arr[0])), dt.date.fromisoformat(str(arr[-1]))
    if not first <= day <= last:
        raise ConfigError(
            f"--as-of {day} is outside the {calendar} exchange calendar ({first} .. {last}); give a session "
            "in that range"
        )


def check_run_alive(flow_run_id: str, engine: Any = None) -> None:
    """Refuse to approve a paused trade run whose process is dead: nothing would execute the orders."""
    from stockflow.config import load_settings
    from stockflow.crashed import mark_crashed_runs, trade_run_owner_alive
    from stockflow.db import get_engine
    from stockflow.pipeline.approval import ApprovalError

    engine = engine or get_engine(load_settings().db_url)
    alive, owner = trade_run_owner_alive(engine, flow_run_id)
    if alive is False:
        mark_crashed_runs(engine)
        who = f"pid {owner.get('pid')} on {owner.get('host')}" if owner else "?"
        raise ApprovalError(
            f"trade run {flow_run_id} cannot act on an approval: its process ({who}) is dead, so nothing "
            "would be sent; it is now marked crashed. Start a new run (`stockflow run`)"
        )


def register(app: typer.Typer) -> None:
    """Add ``run`` and ``approve`` to ``app``."""

    @app.command("run")
    def run(
        mode: str = typer.Option(
            None, "--mode", help=f"One of {', '.join(TRADE_MODES)} (auto: no human); default: settings."
        ),
        symbols: str = typer.Option(None, "--symbols", help="Comma-separated universe; default: settings."),
        source: str = typer.Option(
            None, "--source", help=f"One of {', '.join(SOURCE_NAMES)}; default: settings."
        ),
        as_of: str = typer.Option(None, "--as-of", help="Expected session YYYY-MM-DD (historical sources)."),
    ) -> None:
        """Run the daily trade pipeline once: ingest, validate, features, predict, signals, risk,
        approval (manual/hybrid), execute, reconcile, portfolio snapshot; then print a summary."""
        from stockflow.config import load_settings
        from stockflow.db import get_engine, upgrade
        from stockflow.db.base import utcnow
        from stockflow.pipeline.modes import check_mode

        settings = load_settings()
        chosen = check_mode(mode or settings.trading.mode)
        _check_as_of(as_of, settings.data.calendar)
        server = _prefect_api_url()
        interactive = sys.stdin.isatty()
        if chosen != "auto" and not server and not interactive:
            typer.secho(
                f"--mode {chosen} waits for a person to approve orders, but there is no Prefect server to "
                "approve through and this terminal is not interactive. Start the local server with "
                "`stockflow up` (or set PREFECT_API_URL), then approve in the UI or with "
                "`stockflow approve RUN_ID --approve ...`; or run in an interactive terminal to answer here; "
                "or use --mode auto.",
                fg=typer.colors.RED,
                err=True,
            )
            sys.exit(2)
        engine = get_engine(settings.db_url)
        upgrade(engine)
        from stockflow.crashed import mark_crashed_runs

        for c in mark_crashed_runs(engine):
            typer.secho(f"note: {c.line()}", fg=typer.colors.YELLOW, err=True)
        if chosen != "auto":
            where = f"Prefect server {server}" if server else "this terminal (ephemeral Prefect API)"
            typer.echo(f"{chosen} mode: orders that need approval will be shown here; answer via {where}.")
        stop = threading.Event()
        helper = None
        if chosen != "auto":
            helper = threading.Thread(
                target=_approval_helper,
                args=(engine, utcnow(), interactive and not server, stop),
                name="approval-helper",
                daemon=True,
            )
            helper.start()
        from flows.trade import trade_flow

        t0 = time.perf_counter()
        try:
            state = trade_flow(
                mode=chosen,
                symbols=[s for s in (symbols or "").split(",") if s.strip()] or None,
                source=source,
                as_of=as_of,
                return_state=True,
            )
        finally:
            stop.set()
        summary: dict[str, Any] = {}
        try:
            result = state.result(raise_on_failure=False)
            summary = result if isinstance(result, dict) else {}
        except Exception:
            summary = {}
        if not summary:
            summary = {"outcome": state.name, "message": state.message or "see the run's logs"}
        _print_summary(summary)
        typer.echo(f"  ({time.perf_counter() - t0:.1f}s; Prefect state {state.name})")
        if state.is_failed():
            sys.exit(1)

    @app.command("approve")
    def approve(  # noqa: PLR0917 (typer options)
        run_id: str = typer.Argument(None, help="Flow run id of the paused trade run."),
        approve_: str = typer.Option(None, "--approve", help="Symbols to approve, comma-separated."),
        reject: str = typer.Option(None, "--reject", help="Symbols to reject (every order not approved is)."),
        note: str = typer.Option("", "--note", help="Optional note stored with the decision."),
        plan_hash: str = typer.Option(None, "--plan-hash", help="Refuse unless the run shows this plan."),
        list_: bool = typer.Option(False, "--list", help="List trade runs waiting for approval."),
    ) -> None:
        """Approve or reject the orders of a paused trade run (headless twin of the Prefect UI form)."""
        from stockflow.pipeline.approval import ApprovalError
        from stockflow.pipeline.approve import list_paused_runs, send_approval

        if not _prefect_api_url():
            typer.secho(
                "no Prefect server configured: approvals go to the API the paused run uses. Start it with "
                "`stockflow up` or set PREFECT_API_URL (an ephemeral API lives only inside its own process).",
                fg=typer.colors.YELLOW,
                err=True,
            )
        if list_:
            runs = list_paused_runs()
            if not runs:
                typer.echo("no trade run is waiting for approval")
                return
            for r in runs:
                typer.secho(
                    f"{r.flow_run_id}  ({r.name}, paused {r.paused_at}, times out {r.timeout_at})", bold=True
                )
                typer.echo(f"  plan {r.plan_hash}")
                for t in r.titles:
                    typer.echo(f"  - {t}")
                url = ui_url_for(r.flow_run_id)
                if url:
                    typer.echo(f"  {url}")
                typer.echo(f"  stockflow approve {r.flow_run_id} --approve {','.join(r.symbols)}")
            return
        if not run_id:
            raise ApprovalError("give the RUN_ID of a paused trade run (see `stockflow approve --list`)")
        if not approve_ and not reject:
            raise ApprovalError("say what to do: --approve SYMBOLS and/or --reject SYMBOLS; nothing sent")
        check_run_alive(run_id)
        answer = send_approval(run_id, approve=approve_, reject=reject, note=note, plan_hash=plan_hash)
        ok = [k for k, v in answer.items() if v == "approve"]
        no = [k for k, v in answer.items() if v == "reject"]
        typer.echo(
            f"sent to {run_id}: approved {', '.join(ok) or 'nothing'}; rejected {', '.join(no) or 'nothing'}"
        )
