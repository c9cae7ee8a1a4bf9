"""Human approval: the plan shown to a person, its hash, the Prefect ``RunInput`` form, and the answer.

The paused trade run saves a form built by :func:`approval_form` (a ``RunInput`` subclass made for this
plan). Prefect's UI renders it as:

- the markdown description (:func:`form_markdown`): the deadline and one line per order in rank order
  (rank, symbol, side, quantity, reference price, stop, P(outperform), the one meaning of confidence
  defined above it, and risk taken), pointing to the full plan; Prefect's modal is about 500 px wide,
  too narrow for a table of every column;
- the full plan (:func:`plan_markdown`, the run's ``trade-approval`` artifact and the stored request):
  a table with rank, symbol, side, quantity, reference price, stop, score, expected excess return,
  P(outperform), notional, risk taken and reason;
- one drop-down per order, titled ``AAPL: BUY 12 @ 151.20`` and described with confidence, risk and
  reason, with the choices ``approve`` / ``reject`` and the safe default ``reject``;
- ``note`` (free text, optional) and ``plan_hash`` (pre-filled; it ties the answer to the plan shown).

The same answer can be given headless by ``stockflow approve RUN_ID --approve AAPL --reject IBM``, which
builds the same JSON (:func:`build_answer`) and sends it with ``resume_flow_run``. Prefect's API checks the
answer against the saved form's JSON schema (unknown fields, wrong values) before it resumes the run;
:func:`build_answer` checks the same things earlier, with clearer words.

Prefect is imported on purpose: the form is a Prefect ``RunInput`` (the answer travels through Prefect's
pause/resume); everything else here is plain.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import pydantic
from prefect.input import RunInput
from pydantic import BaseModel, ConfigDict, Field

from stockflow.errors import StockflowError
from stockflow.portfolio.construct import CONFIDENCE_DEFINITION as CONFIDENCE_TEXT

ApprovalChoice = Literal["approve", "reject"]
APPROVE: ApprovalChoice = "approve"
REJECT: ApprovalChoice = "reject"

#: Note the trade run's own watchdog sends when the approval window closes without an answer.
EXPIRED_NOTE = "[stockflow] approval window closed without an answer: orders expired unapproved"


class ApprovalError(StockflowError):
    """An approval that cannot be sent or used: unknown run, run not paused, wrong or extra fields."""


class ProposedOrder(BaseModel):
    """One order as shown to the person who approves it."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    symbol: str
    side: Literal["buy", "sell"]
    qty: float = Field(gt=0)
    reference_price: float = Field(gt=0)
    stop_price: float | None = None
    confidence: float = Field(ge=0, le=1)
    probability: float = Field(ge=0, le=1)
    risk_amount: float = Field(ge=0, description="Money lost if stopped out (qty x stop distance).")
    risk_pct: float = Field(ge=0, description="risk_amount as a share of equity.")
    notional: float = Field(ge=0)
    reason: str = ""
    client_order_id: str = ""
    intent: Literal["entry", "exit"] = "entry"
    rank: int | None = Field(None, description="1 = the best score of the session; None: not scored.")
    score: float | None = None
    expected_excess: float | None = Field(None, description="Expected return in excess of the universe.")

    @property
    def title(self) -> str:
        """``AAPL: BUY 12 @ 151.20``."""
        return f"{self.symbol}: {self.side.upper()} {self.qty:g} @ {self.reference_price:.2f}"

    def details(self) -> str:
        """Rank, score, expected excess, P(outperform), risk and reason in one line."""
        stop = f", stop {self.stop_price:.2f}" if self.stop_price else ""
        return (
            f"rank {_opt(self.rank)}, score {_opt(self.score, '{:.4g}')}, expected excess "
            f"{_opt(self.expected_excess, '{:+.2%}')}, P(outperform) {self.probability:.3f}; "
            f"notional ${self.notional:,.2f}; risk taken "
            f"${self.risk_amount:,.2f} ({self.risk_pct:.2%} of equity){stop}; {self.intent}. {self.reason}"
        )


def _opt(v: float | None, pattern: str = "{}") -> str:
    return "-" if v is None else pattern.format(v)


def in_rank_order(orders: Iterable[ProposedOrder]) -> list[ProposedOrder]:
    """Orders by rank (best first), unscored last."""
    return sorted(orders, key=lambda o: (o.rank is None, o.rank or 0, o.symbol))


def plan_hash(orders: Iterable[ProposedOrder]) -> str:
    """A short stable hash of what would be sent: symbol, side, quantity, prices, client order id.

    Order of the input does not matter; anything that changes what reaches the broker changes the hash.
    """
    canon = sorted(
        (
            o.symbol,
            o.side,
            f"{o.qty:.6f}",
            f"{o.reference_price:.6f}",
            "" if o.stop_price is None else f"{o.stop_price:.6f}",
            o.client_order_id,
        )
        for o in orders
    )
    return hashlib.sha256(json.dumps(canon, separators=(",", ":")).encode()).hexdigest()[:16]


_IDENT = re.compile(r"[^A-Za-z0-9_]")


def field_name(symbol: str) -> str:
    """The Python attribute name of a symbol's field (``BRK.B`` -> ``BRK_B``); the JSON key stays the
    symbol itself (an alias)."""
    name = _IDENT.sub("_", symbol)
    return name if name.isidentifier() and not name.startswith("_") else f"s_{name}"


class ApprovalInput(RunInput):
    """The answer to an approval request. Subclassed per plan by :func:`approval_form` with one
    ``approve``/``reject`` field per order (keyed by symbol)."""

    plan_hash: str = Field(
        description="Identifies the plan shown above. Leave it as it is: "
        "an answer for another plan is refused."
    )
    note: str = Field("", description="Optional note, stored with the decision.")

    def decisions(self) -> dict[str, ApprovalChoice]:
        """symbol -> approve / reject for every order field of this form."""
        out: dict[str, ApprovalChoice] = {}
        for name, info in type(self).model_fields.items():
            if name in ("plan_hash", "note"):
                continue
            out[info.alias or name] = getattr(self, name)
        return out


def approval_form(orders: Sequence[ProposedOrder], plan_hash_: str, description: str) -> type[ApprovalInput]:
    """A ``RunInput`` class for this plan: one field per order (default ``reject``), ``plan_hash``
    pre-filled, ``note`` optional, and ``description`` (markdown) shown above the form."""
    if len({o.symbol for o in orders}) != len(orders):
        raise ApprovalError("an approval plan holds at most one order per symbol")
    orders = in_rank_order(orders)
    fields: dict[str, Any] = {
        "plan_hash": (
            str,
            Field(
                plan_hash_,
                title="Plan hash (do not edit)",
                description=ApprovalInput.model_fields["plan_hash"].description,
            ),
        ),
        "note": (str, Field("", title="Note (optional)", description="Stored with the decision.")),
    }
    for o in orders:
        fields[field_name(o.symbol)] = (
            ApprovalChoice,
            Field(REJECT, alias=o.symbol, title=o.title, description=o.details()),
        )
    model = pydantic.create_model(  # type: ignore[call-overload]
        "TradeApproval",
        __base__=ApprovalInput,
        **fields,
    )
    model._description = description
    return model  # type: ignore[no-any-return]


def _plan_header(
    orders: Sequence[ProposedOrder], plan_hash_: str, *, deadline: dt.datetime, equity: float, run_label: str
) -> list[str]:
    """The lines above a plan (the table's and the form's): what waits, until when, equity, plan hash."""
    return [
        f"## Trade approval needed{(' - ' + run_label) if run_label else ''}",
        "",
        f"{len(orders)} order(s) wait for a decision until **{deadline:%Y-%m-%d %H:%M:%S} UTC**. "
        "Orders not approved by then **expire and are not sent**. Equity "
        f"${equity:,.2f}. Plan hash `{plan_hash_}`.",
        "",
        f"In rank order. {CONFIDENCE_TEXT}.",
        "",
    ]


def _plan_footer(orders: Sequence[ProposedOrder], flow_run_id: str | None) -> list[str]:
    """The lines below a plan: how to choose, what is checked on resume, the headless command."""
    lines = [
        "",
        "Choose **approve** or **reject** for each order below (default: reject) and submit. "
        "On resume, prices, risk limits, the trading state and market hours are checked again.",
    ]
    if flow_run_id:
        syms = ",".join(o.symbol for o in orders)
        lines += ["", f"Headless: `stockflow approve {flow_run_id} --approve {syms}`"]
    return lines


def plan_markdown(
    orders: Sequence[ProposedOrder],
    plan_hash_: str,
    *,
    deadline: dt.datetime,
    equity: float,
    run_label: str = "",
    flow_run_id: str | None = None,
) -> str:
    """The plan as markdown: shown above the Prefect form and published as an artifact."""
    lines = [
        *_plan_header(orders, plan_hash_, deadline=deadline, equity=equity, run_label=run_label),
        "| rank | symbol | side | qty | reference price | stop | score | expected excess | P(outperform) "
        "| notional | risk taken | reason |",
        "| ---: | --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- |",
    ]
    for o in in_rank_order(orders):
        stop = f"{o.stop_price:.2f}" if o.stop_price else "-"
        reason = o.reason.replace("|", "/").replace("\n", " ")
        lines.append(
            f"| {_opt(o.rank)} | {o.symbol} | {o.side.upper()} | {o.qty:g} | {o.reference_price:.2f} | "
            f"{stop} | "
            f"{_opt(o.score, '{:.4g}')} | {_opt(o.expected_excess, '{:+.2%}')} | {o.probability:.3f} | "
            f"${o.notional:,.2f} | ${o.risk_amount:,.2f} ({o.risk_pct:.2%}) | {reason} |"
        )
    return "\n".join(lines + _plan_footer(orders, flow_run_id))


def form_markdown(
    orders: Sequence[ProposedOrder],
    plan_hash_: str,
    *,
    deadline: dt.datetime,
    equity: float,
    run_label: str = "",
    flow_run_id: str | None = None,
    book_url: str = "",
) -> str:
    """The plan as shown above the Prefect form: one line per order that wraps (Prefect's pause form is
    a ~500 px modal, too narrow for the plan's twelve-column table, which scrolled out of sight).

    Each line says rank, symbol, side, quantity, reference price, stop, P(outperform) and the risk
    taken; the full table (score, expected excess, notional, reason) is the run's ``trade-approval``
    artifact and the book page; every order's details are also under its own choice in the form.
    """
    lines = [
        *_plan_header(orders, plan_hash_, deadline=deadline, equity=equity, run_label=run_label),
    ]
    for o in in_rank_order(orders):
        stop = f", stop {o.stop_price:.2f}" if o.stop_price else ""
        rank = "" if o.rank is None else f"#{o.rank} "
        lines.append(
            f"- **{rank}{o.symbol}** {o.side.upper()} {o.qty:g} @ {o.reference_price:.2f}{stop}: "
            f"P(outperform) {o.probability:.3f}, risk ${o.risk_amount:,.2f} ({o.risk_pct:.2%} of equity)"
        )
    book = f" and on [the book]({book_url})" if book_url else ""
    lines += [
        "",
        "The whole plan (score, expected excess, notional, reason) is in the run's `trade-approval` "
        f"artifact{book}; each order's details are under its choice below.",
    ]
    return "\n".join(lines + _plan_footer(orders, flow_run_id))


@dataclass(frozen=True)
class Answer:
    """A person's answer, reduced to what the run needs."""

    plan_hash: str
    approved: tuple[str, ...]
    rejected: tuple[str, ...]
    note: str

    @property
    def is_watchdog_expiry(self) -> bool:
        """True when the answer is the run's own watchdog closing the window (not a person)."""
        return self.note == EXPIRED_NOTE


def read_answer(form: ApprovalInput) -> Answer:
    """The :class:`Answer` in a submitted form."""
    d = form.decisions()
    return Answer(
        plan_hash=form.plan_hash,
        approved=tuple(sorted(s for s, v in d.items() if v == APPROVE)),
        rejected=tuple(sorted(s for s, v in d.items() if v != APPROVE)),
        note=form.note,
    )


def expiry_answer(symbols: Iterable[str], plan_hash_: str) -> dict[str, Any]:
    """The JSON the watchdog sends when the window closes: every order rejected, the expiry note."""
    return {"plan_hash": plan_hash_, "note": EXPIRED_NOTE, **{s: REJECT for s in symbols}}


def _split(values: Iterable[str] | str | None) -> list[str]:
    if values is None:
        return []
    items = [values] if isinstance(values, str) else list(values)
    out: list[str] = []
    for item in items:
        out += [s.strip().upper() for s in item.split(",") if s.strip()]
    return out


def build_answer(
    plan_symbols: Sequence[str],
    plan_hash_: str,
    *,
    approve: Iterable[str] | str | None = None,
    reject: Iterable[str] | str | None = None,
    note: str = "",
    expected_hash: str | None = None,
) -> dict[str, Any]:
    """The JSON answer for ``resume_flow_run``; :class:`ApprovalError` for symbols not in the plan, a
    symbol both approved and rejected, or a hash that is not the plan's. Orders not named are rejected."""
    ap, rj = _split(approve), _split(reject)
    plan = {s.upper(): s for s in plan_symbols}
    unknown = sorted({s for s in ap + rj if s not in plan})
    if unknown:
        raise ApprovalError(
            f"{', '.join(unknown)} not in this run's plan "
            f"(it proposes: {', '.join(plan_symbols) or 'nothing'}); nothing sent"
        )
    both = sorted(set(ap) & set(rj))
    if both:
        raise ApprovalError(f"{', '.join(both)} both approved and rejected; nothing sent")
    if expected_hash is not None and expected_hash != plan_hash_:
        raise ApprovalError(
            f"plan hash {expected_hash} is not the plan this run shows ({plan_hash_}); "
            "look at the plan again (stockflow approve --list); nothing sent"
        )
    approved = {plan[s] for s in ap}
    answer: dict[str, Any] = {"plan_hash": plan_hash_, "note": note}
    for s in plan_symbols:
        answer[s] = APPROVE if s in approved else REJECT
    return answer


def check_answer_against_schema(answer: Mapping[str, Any], schema: Mapping[str, Any]) -> None:
    """Check an answer against the JSON schema the paused run saved, as Prefect's API will; raise
    :class:`ApprovalError` naming the extra, missing or wrong fields."""
    props: Mapping[str, Any] = schema.get("properties", {})
    extra = sorted(k for k in answer if k not in props)
    if extra and schema.get("additionalProperties") is False:
        raise ApprovalError(f"fields not in the run's approval form: {', '.join(extra)}; nothing sent")
    missing = sorted(k for k in schema.get("required", []) if k not in answer)
    if missing:
        raise ApprovalError(f"missing fields of the run's approval form: {', '.join(missing)}; nothing sent")
    for k, v in answer.items():
        spec = props.get(k, {})
        allowed = spec.get("enum")
        if allowed is not None and v not in allowed:
            raise ApprovalError(f"{k}: {v!r} is not one of {allowed}; nothing sent")
        if spec.get("type") == "string" and not isinstance(v, str):
            raise ApprovalError(f"{k}: expected text, got {type(v).__name__}; nothing sent")
