"""End to end in a real browser: `stockflow up`, the Prefect UI, an approval form, the orders sent.

The module starts the real `stockflow up` command (on free ports, with its state in a temp dir) serving
the project's deployments plus two stand-ins, and drives Debian's headless chromium with Playwright:

- the stand-in approval run proves the UI form mechanics on their own (pause, form, resume, input);
- the ``trade`` deployment in hybrid mode on the sample data pauses for approval; the test approves one
  order and rejects another in the form, resumes, and checks in the database and at the paper broker
  that exactly the approved order was sent; it measures the time from "Submit" to the order
  acknowledged, saves screenshots, and opens the report links.

Screenshots and the measured figures go to ``<tmp>/reports/e2e/``; with UPDATE_DOC_IMAGES=1 the
screenshots are also copied to docs/img/.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from stockflow.ops.local import free_port, http_get
from tests.ops import api

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
ROOT = Path(__file__).resolve().parents[2]
AS_OF = "2012-03-30"  # a replay session where the small LightGBM is bullish on the symbols

pytestmark = [
    pytest.mark.slow,
    pytest.mark.browser,
    pytest.mark.skipif(
        not CHROMIUM.exists(), reason=f"{CHROMIUM} missing: install Debian's chromium (`make browser-deps`)"
    ),
]


@dataclass
class Operation:
    """The running `stockflow up` and what the tests learn about it."""

    proc: subprocess.Popen[str]
    base: Path
    ui_url: str
    api_url: str
    reports_url: str
    db_url: str
    cmd: list[str] = field(default_factory=list)
    env: dict[str, str] = field(default_factory=dict)
    startup_output: str = ""
    figures: dict[str, Any] = field(default_factory=dict)

    @property
    def out_dir(self) -> Path:
        d = self.base / "reports" / "e2e"
        d.mkdir(parents=True, exist_ok=True)
        return d


def _trading_env(base: Path) -> dict[str, str]:
    """Settings of the served flows: sample data replayed at AS_OF, a small LightGBM, a hybrid approval
    band [0, 1] that sends every order of the top-k book to approval."""
    return {
        "STOCKFLOW_DATA_DIR": str(base / "data"),
        "STOCKFLOW_REPORTS_DIR": str(base / "reports"),
        "STOCKFLOW_DATABASE_URL": f"sqlite:///{base / 'data' / 'stockflow.db'}",
        "STOCKFLOW_DATA__SYMBOLS": '["AAPL","MSFT","IBM"]',
        "STOCKFLOW_MODELS__KINDS": '["lightgbm"]',
        "STOCKFLOW_MODELS__N_FOLDS": "2",
        "STOCKFLOW_MODELS__LGBM_NUM_BOOST_ROUND": "50",
        "STOCKFLOW_TRADING__SIGNAL_SOURCE": "best_challenger",
        "STOCKFLOW_PORTFOLIO__APPROVAL_BAND_LOW": "0",
        "STOCKFLOW_PORTFOLIO__APPROVAL_BAND_HIGH": "1",
        "STOCKFLOW_TRADING__APPROVAL_TIMEOUT_S": "600",
    }


@pytest.fixture(scope="module")
def prefect_database() -> Iterator[str | None]:
    """A fresh PostgreSQL database for Prefect's server when PostgreSQL is reachable (no "database is
    locked" under load), else None: the server then uses its SQLite default (also with
    E2E_PREFECT_DB=sqlite)."""
    from sqlalchemy import create_engine, text

    from tests.conftest import _pg_admin_url

    if os.environ.get("E2E_PREFECT_DB") == "sqlite":
        yield None
        return

    admin = create_engine(_pg_admin_url(), isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            conn.execute(text("select 1"))
    except Exception:
        admin.dispose()
        yield None
        return
    name = f"stockflow_e2e_prefect_{uuid.uuid4().hex[:8]}"
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    url = _pg_admin_url().rsplit("/", 1)[0].replace("+psycopg", "+asyncpg") + f"/{name}"
    try:
        yield url
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


def _start_up(cmd: list[str], env: dict[str, str], cwd: Path) -> tuple[subprocess.Popen[str], str]:
    """Start `stockflow up` and read its output until it says it is up (or exits)."""
    proc = subprocess.Popen(
        cmd, cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )
    lines: list[str] = []
    assert proc.stdout is not None
    for line in proc.stdout:
        lines.append(line)
        if "Press Ctrl-C" in line or proc.poll() is not None:
            break
    out = "".join(lines)
    assert "stockflow is up" in out, out
    return proc, out


def _stop_up(proc: subprocess.Popen[str]) -> str:
    """What `stockflow down` does: SIGTERM, then wait for the clean stop."""
    proc.send_signal(signal.SIGTERM)
    rest, _ = proc.communicate(timeout=120)
    assert proc.returncode == 0, rest
    assert "stopped: server, deployments (paused) and reports server are down" in rest
    return rest


@pytest.fixture(scope="module")
def webhook() -> Iterator[tuple[Any, str]]:
    """A webhook on 127.0.0.1 that keeps what Prefect's notification automations POST."""
    from tests.ops.test_notifications import Inbox, serve_inbox

    box = Inbox()
    with serve_inbox(box) as url:
        yield box, url


@pytest.fixture(scope="module")
def operation(
    tmp_path_factory: pytest.TempPathFactory, prefect_database: str | None, webhook: tuple[Any, str]
) -> Iterator[Operation]:
    base = tmp_path_factory.mktemp("e2e")
    prefect_port, reports_port = free_port(), free_port()
    env = {
        **os.environ,
        **_trading_env(base),
        "PREFECT_HOME": str(base / ".prefect"),
        "PREFECT_RUNNER_POLL_FREQUENCY": "1",
        "PREFECT_LOGGING_LEVEL": "INFO",
        "STOCKFLOW_NOTIFICATIONS__WEBHOOK_URL": webhook[1],
    }
    if prefect_database:
        env["PREFECT_API_DATABASE_CONNECTION_URL"] = prefect_database
    cmd = [
        str(Path(sys.executable).with_name("stockflow")),
        "up",
        "--prefect-port",
        str(prefect_port),
        "--reports-port",
        str(reports_port),
        "--catalog",
        "tests.ops.standin:WITH_PROJECT",
    ]
    t0 = time.perf_counter()
    proc, out = _start_up(cmd, env, base)
    op = Operation(
        proc=proc,
        base=base,
        ui_url=f"http://127.0.0.1:{prefect_port}",
        api_url=f"http://127.0.0.1:{prefect_port}/api",
        reports_url=f"http://127.0.0.1:{reports_port}",
        db_url=env["STOCKFLOW_DATABASE_URL"],
        cmd=cmd,
        env=env,
        startup_output=out,
    )
    op.figures["start_to_usable_ui_s (stockflow up, printed)"] = float(
        re.search(r"start command -> usable UI ([\d.]+)s", out).group(1)  # type: ignore[union-attr]
    )
    op.figures["start_to_up_message_s (measured by the test)"] = round(time.perf_counter() - t0, 1)
    op.figures["prefect_database"] = "postgresql" if prefect_database else "sqlite"
    assert ("postgresql+asyncpg://" in out) == bool(prefect_database), out
    try:
        yield op
    finally:
        if op.proc.poll() is None:
            _stop_up(op.proc)
            op.figures["stop_exit_code"] = op.proc.returncode
        (op.out_dir / "figures.json").write_text(json.dumps(op.figures, indent=2))
        print(f"\ne2e figures: {json.dumps(op.figures)}")


@pytest.fixture(scope="module")
def browser(operation: Operation) -> Iterator[Any]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            yield b
        finally:
            b.close()


@pytest.fixture
def page(browser: Any) -> Iterator[Any]:
    # New York time in the UI, as the schedules are.
    ctx = browser.new_context(viewport={"width": 1400, "height": 900}, timezone_id="America/New_York")
    pg = ctx.new_page()
    pg.set_default_timeout(60_000)
    try:
        yield pg
    finally:
        ctx.close()


def _open_resume_form(page: Any, ui_url: str, run_id: str) -> Any:
    page.goto(f"{ui_url}/runs/flow-run/{run_id}")
    page.get_by_role("button", name="Resume").click()
    card = page.locator(".p-modal__card")
    card.locator(".schema-form-property").first.wait_for()
    return card


#: Elements of the form that are wider than the room they have (a table scrolled sideways, a line past
#: the modal's edge): what a person cannot read without scrolling the form sideways.
_OVERFLOWING_JS = """card => {
  const box = card.getBoundingClientRect();
  const out = [];
  for (const el of [card, ...card.querySelectorAll('*')]) {
    const style = getComputedStyle(el);
    const clips = ['auto', 'scroll', 'hidden'].includes(style.overflowX);
    const r = el.getBoundingClientRect();
    if ((clips && el.scrollWidth > el.clientWidth + 1) || (r.width > 0 && r.right > box.right + 1)) {
      const name = `${el.tagName.toLowerCase()}.${[...el.classList].join('.')}`;
      out.push(`${name}: scrollWidth ${el.scrollWidth} > clientWidth ${el.clientWidth}`
               + ` (right ${Math.round(r.right)} of ${Math.round(box.right)})`);
    }
  }
  return out;
}"""


def _overflowing(card: Any) -> list[str]:
    """What in the form does not fit its width (empty: everything is readable without scrolling)."""
    return list(card.evaluate(_OVERFLOWING_JS))


def _field_labels(card: Any) -> list[str]:
    return [t.strip() for t in card.locator(".schema-form-property__label").all_inner_texts()]


def _prop(page: Any, card: Any, label_start: str) -> Any:
    """The form field whose label starts with ``label_start``."""
    return card.locator(".schema-form-property").filter(
        has=page.locator(".schema-form-property__label", has_text=re.compile("^" + re.escape(label_start)))
    )


def _submit(page: Any, card: Any, figures: dict[str, Any]) -> None:
    """Click Submit as a person would: again when the API answered 503 (SQLite's "database is locked"
    under load, which Prefect reports as retryable); the retries are counted in the figures."""
    for attempt in range(4):
        with page.expect_response(lambda r: r.url.endswith("/resume") and r.request.method == "POST") as info:
            card.get_by_role("button", name="Submit").click()
        status = info.value.status
        if status < 500:
            assert status in (200, 201), f"resume answered {status}: {info.value.text()}"
            return
        figures["ui_resume_retries_after_503"] = figures.get("ui_resume_retries_after_503", 0) + 1
        page.wait_for_timeout(1000 * (attempt + 1))
    raise AssertionError("the API answered 503 to every resume")


def _choose(page: Any, card: Any, label_start: str, value: str) -> None:
    """Pick ``value`` in the drop-down whose label starts with ``label_start`` (keyboard opens the list:
    a mouse click on Prefect's select toggles it open and shut again)."""
    control = _prop(page, card, label_start).locator("button.p-select-button__control")
    control.focus()
    page.keyboard.press("ArrowDown")
    page.locator(".p-pop-over-content [role=option]", has_text=re.compile(f"^{value}$")).click()
    assert control.inner_text().strip() == value


def test_standin_form_mechanics(operation: Operation, page: Any) -> None:
    """Pause -> form in the UI -> choices -> Submit -> the flow reads exactly those choices."""
    status, run = api.create_run(operation.api_url, "standin-approval/standin-approval")
    assert status == 201
    api.wait_state(operation.api_url, run["id"], ("PAUSED",), timeout=180)
    card = _open_resume_form(page, operation.ui_url, run["id"])
    assert "Approve the stand-in orders" in card.inner_text()
    # The plan as the trade flow shows it fits Prefect's modal (issue 11: its table was too wide).
    assert "#1 AAPL BUY 10 @ 150.00, stop 145.50: P(outperform) 0.700" in card.inner_text()
    assert _overflowing(card) == []
    _choose(page, card, "AAPL:", "approve")
    _choose(page, card, "IBM:", "reject")
    _submit(page, card, operation.figures)
    done = api.wait_state(operation.api_url, run["id"], api.TERMINAL, timeout=120)
    assert done["state"]["type"] == "COMPLETED", done["state"]
    (table,) = [
        a for a in api.run_artifacts(operation.api_url, run["id"]) if a["key"] == "standin-approval-decisions"
    ]
    rows = {r["symbol"]: r["decision"] for r in json.loads(table["data"])}
    assert rows == {"AAPL": "approve", "IBM": "reject"}


def test_form_check_sees_the_old_plan_table_too_wide(operation: Operation, page: Any) -> None:
    """The fit check above can fail: the plan's full table (what the form showed before issue 11)
    does not fit Prefect's modal."""
    status, run = api.create_run(operation.api_url, "standin-approval/standin-approval", {"full_table": True})
    assert status == 201
    api.wait_state(operation.api_url, run["id"], ("PAUSED",), timeout=180)
    card = _open_resume_form(page, operation.ui_url, run["id"])
    assert "expected excess" in card.inner_text()
    wide = _overflowing(card)
    assert any("p-table" in w for w in wide), wide
    page.set_viewport_size({"width": 1400, "height": 1800})
    card.screenshot(path=str(operation.out_dir / "paused-form-old-table.png"))
    _submit(page, card, operation.figures)
    done = api.wait_state(operation.api_url, run["id"], api.TERMINAL, timeout=120)
    assert done["state"]["type"] == "COMPLETED", done["state"]


def test_trade_hybrid_approval_in_the_ui(operation: Operation, page: Any) -> None:
    from sqlalchemy import select

    from stockflow.brokers.paper import PaperBroker
    from stockflow.db import get_engine
    from stockflow.db.engine import transaction
    from stockflow.db.models_trading import OrderRow

    out = operation.out_dir
    # The deployments page, and the trade deployment with its schedule in words (New York time).
    page.goto(f"{operation.ui_url}/deployments")
    page.get_by_text("kill-switch", exact=True).first.wait_for()
    page.get_by_text("trade", exact=True).first.wait_for()
    page.screenshot(path=str(out / "deployments.png"))
    trade = api.deployment(operation.api_url, "trade/trade")
    page.goto(f"{operation.ui_url}/deployments/deployment/{trade['id']}")
    page.get_by_text("At 04:30 PM, Monday through Friday").wait_for()
    page.screenshot(path=str(out / "deployment-schedule.png"))

    t_trigger = time.perf_counter()
    status, run = api.create_run(operation.api_url, "trade/trade", {"mode": "hybrid", "as_of": AS_OF})
    assert status == 201, run
    paused = api.wait_state(operation.api_url, run["id"], ("PAUSED", *api.TERMINAL), timeout=600)
    assert paused["state"]["type"] == "PAUSED", (
        paused["state"],
        api.run_logs(operation.api_url, run["id"])[-20:],
    )
    operation.figures["trigger_to_paused_s (ingest+train+predict+risk)"] = round(
        time.perf_counter() - t_trigger, 1
    )

    card = _open_resume_form(page, operation.ui_url, run["id"])
    labels = [lab for lab in _field_labels(card) if re.match(r"^[A-Z.]+: (BUY|SELL) ", lab)]
    assert len(labels) >= 2, labels
    approved, rejected = labels[0].split(":")[0], labels[1].split(":")[0]
    others = [lab.split(":")[0] for lab in labels[2:]]
    assert _overflowing(card) == []  # the plan fits Prefect's modal (issue 11)
    _choose(page, card, f"{approved}:", "approve")
    _choose(page, card, f"{rejected}:", "reject")
    _prop(page, card, "Note").locator("textarea").fill("e2e: approve one, reject one")
    page.set_viewport_size({"width": 1400, "height": 1800})  # the whole form in one picture
    card.screenshot(path=str(out / "paused-form.png"))

    clicked = dt.datetime.now(dt.UTC)
    _submit(page, card, operation.figures)
    done = api.wait_state(operation.api_url, run["id"], api.TERMINAL, timeout=300)
    assert done["state"]["type"] == "COMPLETED", done["state"]

    engine = get_engine(operation.db_url)
    with transaction(engine) as s:
        orders = list(s.scalars(select(OrderRow).where(OrderRow.origin == "stockflow")))
    by_symbol = {o.symbol: o for o in orders}
    assert set(by_symbol) == {approved}, f"sent {sorted(by_symbol)}, approved only {approved}"
    order = by_symbol[approved]
    assert order.acknowledged_at is not None and order.broker_order_id
    ack = (
        order.acknowledged_at
        if order.acknowledged_at.tzinfo
        else order.acknowledged_at.replace(tzinfo=dt.UTC)
    )
    operation.figures["resume_to_order_acknowledged_s"] = round((ack - clicked).total_seconds(), 2)
    assert 0 < operation.figures["resume_to_order_acknowledged_s"] < 120
    broker_open = {o.client_order_id: o.symbol for o in PaperBroker(engine).open_orders()}
    assert list(broker_open.values()) == [approved] and order.client_order_id in broker_open
    assert rejected not in broker_open.values() and not set(others) & set(broker_open.values())

    # The run's artifacts in the UI, and every report link opens.
    page.set_viewport_size({"width": 1400, "height": 1000})
    page.goto(f"{operation.ui_url}/runs/flow-run/{run['id']}")
    page.locator("li.p-tab#artifacts").click()
    page.get_by_text("trade-summary").first.wait_for()
    page.screenshot(path=str(out / "artifacts.png"), full_page=True)
    arts = api.run_artifacts(operation.api_url, run["id"])
    keys = {a["key"] for a in arts if a["key"]}
    assert {"trade-summary", "trade-orders", "trade-approval"} <= keys, keys
    # Every link artifact of the operation (the trade run's, and its ingest subflow's Data Docs) opens.
    status, every = api.http_post_json(f"{operation.api_url}/artifacts/filter", {"limit": 200})
    assert status == 200
    # Prefect 3 stores a link artifact as markdown "[text](url)".
    links: dict[str, str] = {}
    for a in every:
        for url in re.findall(r"\]\((https?://[^)\s]+)\)", str(a["data"])):
            links[f"{a['key']} {url}"] = url
    keys_linked = {k.split()[0] for k in links}
    assert {"data-docs", "equity-curve", "trade-reports"} <= keys_linked, sorted(links)
    remote: list[str] = []
    page.on(
        "request",
        lambda r: remote.append(r.url) if not r.url.startswith(("http://127.0.0.1", "data:")) else None,
    )
    for key, url in sorted(links.items()):
        assert url.startswith(operation.reports_url), f"{key}: {url} is not on the reports server"
        assert http_get(url)[0] == 200, f"{key}: {url}"
        page.goto(url)  # and it renders in the browser
        page.wait_for_load_state("load")
    assert remote == [], f"report pages fetched from the network: {remote}"  # Data Docs are offline
    operation.figures["report_links_checked"] = len(links)

    if os.environ.get("UPDATE_DOC_IMAGES") == "1":
        img = ROOT / "docs" / "img"
        img.mkdir(parents=True, exist_ok=True)
        for name in ("deployments.png", "deployment-schedule.png", "paused-form.png", "artifacts.png"):
            shutil.copyfile(out / name, img / name)


def test_trade_run_on_a_stale_session_refuses_and_says_so(operation: Operation) -> None:
    """The deployment, asked to trade a session its data does not reach (as a late run would), refuses."""
    from sqlalchemy import func, select

    from stockflow.db import get_engine
    from stockflow.db.engine import transaction
    from stockflow.db.models_trading import OrderRow

    engine = get_engine(operation.db_url)
    with transaction(engine) as s:
        orders_before = s.scalar(select(func.count()).select_from(OrderRow))
    # The sample data ends on 2013-03-01.
    status, run = api.create_run(operation.api_url, "trade/trade", {"mode": "auto", "as_of": "2013-03-05"})
    assert status == 201, run
    done = api.wait_state(operation.api_url, run["id"], api.TERMINAL, timeout=300)
    assert done["state"]["type"] == "FAILED"
    message = done["state"]["message"]
    assert "stale data" in message and "2013-03-05" in message and "refusing to trade" in message
    with transaction(engine) as s:
        assert s.scalar(select(func.count()).select_from(OrderRow)) == orders_before


def test_operators_day(operation: Operation, page: Any, webhook: tuple[Any, str]) -> None:
    """Issue 11, as a person lives it: a served run logs non-ASCII text, `stockflow up` restarts (it once
    timed out after that), a hybrid trade is started from the UI ("Quick run"), the approval
    notification arrives on the webhook, its link opens the paused run, the order is approved in the
    form, and the book page shows the position, the order and the new equity point."""
    from sqlalchemy import func, select

    from stockflow.db import get_engine
    from stockflow.db.engine import transaction
    from stockflow.db.models_pipeline import PortfolioSnapshot
    from tests.ops.standin import UI_TRADE_SESSION

    box, _ = webhook
    out = operation.out_dir
    engine = get_engine(operation.db_url)
    # 1. A served run logs non-ASCII text into serve.log.
    status, logged = api.create_run(operation.api_url, "standin-log/standin-log")
    assert status == 201, logged
    assert (
        api.wait_state(operation.api_url, logged["id"], api.TERMINAL, timeout=120)["state"]["type"]
        == "COMPLETED"
    )
    serve_log = operation.base / ".prefect" / "logs" / "serve.log"
    assert "σ" in serve_log.read_text(encoding="utf-8", errors="replace")
    assert serve_log.stat().st_size > len(serve_log.read_text(encoding="utf-8", errors="replace"))

    # 2. Restart `stockflow up`: it prints each step and is up again.
    _stop_up(operation.proc)
    t0 = time.perf_counter()
    operation.proc, restart_out = _start_up(operation.cmd, operation.env, operation.base)
    operation.figures["restart_after_non_ascii_log_s"] = round(time.perf_counter() - t0, 1)
    for step in ("Prefect API healthy", "deployment(s) registered", "notifications: 4 Prefect automation(s)"):
        assert step in restart_out, restart_out

    # 3. A hybrid trade from the UI: the deployment's Run -> Quick run (defaults: hybrid, a replay session).
    with transaction(engine) as s:
        snapshots_before = s.scalar(select(func.count()).select_from(PortfolioSnapshot)) or 0
    trade = api.deployment(operation.api_url, "trade/trade")

    def trade_runs() -> list[dict[str, Any]]:
        query = {"flow_runs": {"deployment_id": {"any_": [trade["id"]]}}, "limit": 200}
        st, runs = api.http_post_json(f"{operation.api_url}/flow_runs/filter", query)
        assert st == 200, runs
        return list(runs)

    known = {r["id"] for r in trade_runs()}  # earlier runs, and the schedule's future runs
    page.goto(f"{operation.ui_url}/deployments/deployment/{trade['id']}")
    run_button = page.locator(".run-menu__run-button")
    run_button.wait_for()
    quick = page.locator(".run-menu__overflow-menu").get_by_text("Quick run")
    for _ in range(3):  # the button toggles its menu: click until the menu shows
        run_button.click()
        try:
            quick.wait_for(timeout=5_000)
            break
        except Exception:
            continue
    page.screenshot(path=str(out / "quick-run.png"))
    clicked = dt.datetime.now(dt.UTC)
    quick.click()
    deadline = time.monotonic() + 60
    run_id = None
    while run_id is None and time.monotonic() < deadline:
        for r in trade_runs():
            start = dt.datetime.fromisoformat(str(r.get("expected_start_time")).replace("Z", "+00:00"))
            # New, and due now (the scheduler may add runs for coming weekdays meanwhile).
            if r["id"] not in known and abs((start - clicked).total_seconds()) < 300:
                run_id = r["id"]
        time.sleep(0.5)
    assert run_id, "Quick run in the UI created no trade run"
    assert api.read_run(operation.api_url, run_id)["parameters"] == {
        "mode": "hybrid",
        "as_of": UI_TRADE_SESSION,
    }

    # 4. The approval notification arrives on the loopback webhook, with the link and the deadline.
    note = box.wait_for("wait for approval", timeout=600, body_contains=run_id)
    link = re.search(r"Approve or reject: (\S+)", note["body"]).group(1)  # type: ignore[union-attr]
    assert link == f"{operation.ui_url}/runs/flow-run/{run_id}", note
    assert api.read_run(operation.api_url, run_id)["state"]["type"] == "PAUSED"

    # 5. Follow the link, approve the first order in the form.
    page.goto(link)
    page.get_by_role("button", name="Resume").click()
    card = page.locator(".p-modal__card")
    card.locator(".schema-form-property").first.wait_for()
    labels = [lab for lab in _field_labels(card) if re.match(r"^[A-Z.]+: (BUY|SELL) ", lab)]
    assert labels, _field_labels(card)
    approved = labels[0].split(":")[0]
    assert _overflowing(card) == []  # the plan fits Prefect's modal
    _choose(page, card, f"{approved}:", "approve")
    # ONE deadline: the form shows the very time the notification carries.
    utc = re.search(r"\((\d\d:\d\d:\d\d) UTC\)", note["subject"]).group(1)  # type: ignore[union-attr]
    assert f"{utc} UTC" in card.inner_text(), (note["subject"], card.inner_text()[:600])
    _submit(page, card, operation.figures)
    done = api.wait_state(operation.api_url, run_id, api.TERMINAL, timeout=300)
    assert done["state"]["type"] == "COMPLETED", done["state"]

    # 6. The book: the position, the order at the broker and one more equity point.
    page.goto(operation.reports_url + "/")
    page.locator("#trading-state").wait_for()
    with transaction(engine) as s:
        snapshots_after = s.scalar(select(func.count()).select_from(PortfolioSnapshot)) or 0
    assert snapshots_after == snapshots_before + 1
    page.wait_for_function(f"document.querySelectorAll('#curve circle.pt').length === {snapshots_after}")
    assert approved in page.locator("#orders").inner_text(), page.locator("#orders").inner_text()
    positions = page.locator("#positions").inner_text()
    assert "No open position." not in positions, positions  # the first trade's order filled at the open
    assert "DEMO SETTING ACTIVE" in page.locator("#demo").inner_text()
    assert f"/runs/flow-run/{run_id}" in page.locator("#runs").inner_html()
    page.screenshot(path=str(out / "book.png"), full_page=True)
    operation.figures["notifications_received"] = [m["subject"] for m in box.messages]
    if os.environ.get("UPDATE_DOC_IMAGES") == "1":
        shutil.copyfile(out / "book.png", ROOT / "docs" / "img" / "book.png")
