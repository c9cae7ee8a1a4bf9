"""Human-readable model cards and metric tables (markdown), from the JSON card and comparison rows."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

#: Columns of the metrics table artifact, in order.
TABLE_COLUMNS = ("model", "kind", "n", "accuracy", "roc_auc", "log_loss", "brier", "ic_mean", "ic_t")


def _fmt(v: Any, digits: int = 4) -> str:
    if v is None:
        return "n/a"
    if isinstance(v, float):
        return f"{v:.{digits}f}"
    return str(v)


def metrics_rows(table: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """Comparison rows cut to :data:`TABLE_COLUMNS`, floats rounded (for a Prefect table artifact)."""
    out = []
    for row in table:
        out.append(
            {c: (round(row[c], 4) if isinstance(row.get(c), float) else row.get(c)) for c in TABLE_COLUMNS}
        )
    return out


def markdown_table(rows: Sequence[Mapping[str, Any]], columns: Sequence[str] = TABLE_COLUMNS) -> str:
    """A GitHub-flavoured markdown table."""
    head = "| " + " | ".join(columns) + " |"
    sep = "| " + " | ".join("---" for _ in columns) + " |"
    body = ["| " + " | ".join(_fmt(r.get(c)) for c in columns) + " |" for r in rows]
    return "\n".join([head, sep, *body])


def _pct(v: Any) -> str:
    return "n/a" if not isinstance(v, int | float) else f"{v:+.2%}"


def gate_summary(gate: Mapping[str, Any] | None) -> str:
    """Each promotion gate's figures on one line (control, IC vs baselines, portfolio), from the gate
    stored in the registry (``metrics["gate"]``); empty when none was recorded."""
    if not gate:
        return ""
    f = gate.get("figures") or {}
    parts = []
    if gate.get("control_ic_t") is not None:
        parts.append(f"control rank-IC t {_fmt(gate['control_ic_t'], 2)}")
    if f.get("ic_mean") is not None:
        parts.append(f"rank IC {_fmt(f['ic_mean'])} (t {_fmt(f.get('ic_t'), 2)})")
    for b in ("momentum", "reversal"):
        d = f.get(f"ic_vs_{b}") or {}
        if d:
            parts.append(f"vs {b} {_fmt(d.get('diff_mean'))} (t {_fmt(d.get('diff_t'), 2)})")
    pf = f.get("portfolio") or {}
    if pf:
        parts.append(
            f"top-k net excess {_pct(pf.get('excess_ann'))}/yr IR {_fmt(pf.get('ir'), 2)} "
            f"maxDD {_pct(pf.get('max_drawdown'))} turnover {_fmt(pf.get('turnover'), 3)}"
        )
    mom = f.get("portfolio_momentum") or {}
    if mom:
        parts.append(f"momentum top-k {_pct(mom.get('excess_ann'))}/yr IR {_fmt(mom.get('ir'), 2)}")
    return "; ".join(parts)


def card_markdown(card: Mapping[str, Any]) -> str:
    """One model card: identity, training window, parameters, calibration, walk-forward metrics, gate."""
    wf = (card.get("walk_forward") or {}).get("metrics") or {}
    lines = [
        f"### {card.get('kind')} `{card.get('version', '')}`",
        "",
        f"- feature set: `{card.get('feature_set_version')}` "
        f"({len(card.get('feature_names') or [])} features)",
        f"- training window: {card.get('train_start')} .. {card.get('train_end')}",
        f"- symbols: {', '.join(card.get('symbols') or []) or 'n/a'}",
        f"- created: {card.get('created_at')}",
        f"- calibration (Platt on validation): {json.dumps(card.get('calibration'))}",
        "- confidence: the calibrated probability itself, P(outperform the universe over the label "
        "horizon); 0.5 is no edge",
    ]
    if card.get("weights"):
        lines.append(f"- ensemble weights (learned on validation): {json.dumps(card['weights'])}")
    gate = card.get("gate") or {}
    if gate:
        lines.append(
            f"- promotion gate: {'passed' if gate.get('passed') else 'not passed'} ({gate.get('reason')})"
        )
        if gate_summary(gate):
            lines.append(f"- gate figures: {gate_summary(gate)}")
    if wf:
        lines.append(
            "- walk-forward: "
            + ", ".join(
                f"{k} {_fmt(wf.get(k))}" for k in ("accuracy", "roc_auc", "log_loss", "ic_mean", "ic_t")
            )
        )
    lines += ["", "<details><summary>parameters</summary>", "", "```json",
              json.dumps(card.get("params"), indent=2, default=str), "```", "</details>"]  # fmt: skip
    return "\n".join(lines)


def retrain_markdown(
    *,
    reason: str,
    promoted: bool,
    metric: str,
    champion_before: str | None,
    champion_after: str | None,
    symbols: Sequence[str],
    folds: Sequence[Mapping[str, Any]],
    table: Sequence[Mapping[str, Any]],
    cards: Mapping[str, Mapping[str, Any]],
    skipped: Mapping[str, str] | None = None,
) -> str:
    """The markdown artifact of one retrain: decision, data, folds, comparison table, model cards."""
    lines = [
        "# Retrain",
        "",
        f"**Decision:** {'promoted' if promoted else 'no promotion'}: {reason}",
        "",
        f"- promotion metric: `{metric}`; champion before: `{champion_before}`, after: `{champion_after}`",
        f"- symbols: {', '.join(symbols)}",
    ]
    if skipped:
        lines.append(f"- skipped symbols: {', '.join(f'{k} ({v})' for k, v in skipped.items())}")
    if folds:
        lines.append(
            f"- walk-forward: {len(folds)} folds, tests {folds[0].get('test_start')} .. "
            f"{folds[-1].get('test_end')}, "
            f"purge {folds[0].get('purge_sessions')} sessions"
        )
    lines += ["", "## Out-of-sample metrics (models, shuffled-label control, baselines)", "",
              markdown_table(metrics_rows(table)), "", "## Model cards", ""]  # fmt: skip
    for card in cards.values():
        lines += [card_markdown(card), ""]
    return "\n".join(lines)
