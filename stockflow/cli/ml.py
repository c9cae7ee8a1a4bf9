"""Commands of the ml area: retrain, predict, monitor, models list / promote.

``retrain`` and ``monitor`` run their Prefect flows (on the ephemeral API, or the running ``stockflow
up``), so a CLI run publishes the same artifacts as one from the UI; ``predict`` and ``models`` call the
plain functions (no flow exists for them and they publish nothing).
"""

from __future__ import annotations

from typing import Any

import typer

from stockflow.choices import MODEL_KINDS
from stockflow.dates import parse_date


def _list(value: str | None, upper: bool = True) -> list[str] | None:
    if value is None:
        return None
    items = [s.strip() for s in value.split(",") if s.strip()]
    return [s.upper() for s in items] if upper else items


def _setup() -> tuple[Any, Any]:
    from stockflow.config import load_settings
    from stockflow.db import make_engine, upgrade

    settings = load_settings()
    engine = make_engine(settings.db_url)
    upgrade(engine)
    return settings, engine


def _f(v: Any, digits: int = 4) -> str:
    return "n/a" if v is None else (f"{v:.{digits}f}" if isinstance(v, float) else str(v))


def register(app: typer.Typer) -> None:
    """Add this area's commands to app."""

    @app.command("retrain")
    def retrain_cmd(
        symbols: str | None = typer.Option(
            None, "--symbols", help="Comma-separated symbols (default: universe)."
        ),
        kinds: str | None = typer.Option(
            None,
            "--kinds",
            help=f"Comma-separated kinds: {','.join(MODEL_KINDS)} (default: settings).",
        ),
        start: str | None = typer.Option(
            None, "--start", help="First session of the bars used (YYYY-MM-DD)."
        ),
        end: str | None = typer.Option(None, "--end", help="Last session (YYYY-MM-DD)."),
    ) -> None:
        """Train challengers, compare walk-forward with the champion and the baselines, promote if better.
        Runs the Prefect flow ``retrain`` (the ephemeral API, or the running ``stockflow up``), so it
        publishes the same artifacts as a run from the UI."""
        from flows.retrain import retrain_flow
        from models.cards import TABLE_COLUMNS, metrics_rows
        from stockflow.ml.retrain import resolve_kinds

        settings, _ = _setup()
        chosen = resolve_kinds(settings, _list(kinds, upper=False))  # one clear line for a bad kind
        report = retrain_flow(
            symbols=_list(symbols),
            start=parse_date(start, "--start"),
            end=parse_date(end, "--end"),
            kinds=chosen,  # type: ignore[arg-type]
        )
        folds, (train_start, train_end) = report["folds"], report["train_window"]
        typer.echo(
            f"retrain #{report['retrain_run_id']}: {len(report['symbols'])} symbols, {len(folds)} folds "
            f"(tests {folds[0]['test_start']} .. {folds[-1]['test_end']}), final window "
            f"{train_start} .. {train_end}, {report['seconds']:.1f}s"
        )
        if report["skipped"]:
            typer.echo("skipped: " + "; ".join(f"{k}: {v}" for k, v in sorted(report["skipped"].items())))
        widths = [max(len(c), 12) for c in TABLE_COLUMNS]
        widths[0] = max(28, *(len(str(r["model"])) for r in report["table"]))
        typer.echo("  ".join(c.ljust(w) for c, w in zip(TABLE_COLUMNS, widths, strict=True)))
        for row in metrics_rows(report["table"]):
            typer.echo("  ".join(_f(row.get(c)).ljust(w) for c, w in zip(TABLE_COLUMNS, widths, strict=True)))
        for name, version in report["challengers"].items():
            typer.echo(f"registered {name}: {version}")
        verdict = "PROMOTED" if report["promoted"] else "not promoted"
        typer.echo(f"{verdict} ({report['metric']}): {report['reason']}")
        typer.echo(f"champion: {report['champion_after'] or 'none'}")

    @app.command("predict")
    def predict_cmd(
        symbols: str | None = typer.Option(
            None, "--symbols", help="Comma-separated symbols (default: universe)."
        ),
        as_of: str | None = typer.Option(
            None, "--as-of", help="Predict the last session on or before this date."
        ),
        version: str | None = typer.Option(
            None, "--version", help="A registered model instead of the champion."
        ),
    ) -> None:
        """Predict P(up) for the latest session with the champion and store the predictions."""
        from stockflow.ml.predict import run_predict

        settings, engine = _setup()
        rep = run_predict(settings, engine, _list(symbols), parse_date(as_of, "--as-of"), version=version)
        typer.echo(
            f"session {rep.session}, model {rep.model_version}: {len(rep.predictions)} predictions "
            f"({rep.stored} new), {len(rep.skipped)} skipped"
        )
        from stockflow.portfolio.construct import CONFIDENCE_DEFINITION

        typer.echo(f"  ({CONFIDENCE_DEFINITION})")
        ranked = sorted(rep.predictions, key=lambda p: (-p.score, p.symbol))
        for i, p in enumerate(ranked, 1):
            typer.echo(
                f"  #{i:<4} {p.symbol:<8} score {p.score:.4g}  expected excess {p.expected_excess:+.2%}  "
                f"confidence P(outperform) {p.prob_outperform:.4f}"
            )
        for sym, why in sorted(rep.skipped.items()):
            typer.echo(f"  skipped {sym}: {why}")

    @app.command("monitor")
    def monitor_cmd(
        symbols: str | None = typer.Option(
            None, "--symbols", help="Comma-separated symbols (default: universe)."
        ),
    ) -> None:
        """Evidently drift of recent features and predictions vs the champion's training reference.
        Runs the Prefect flow ``monitor`` (same artifacts as a UI run; above the threshold it starts the
        ``retrain`` deployment when one exists)."""
        from flows.monitor import monitor_flow
        from stockflow.ml.registry import NoChampionError

        _setup()
        state = monitor_flow(symbols=_list(symbols), return_state=True)
        if state.name == "NoModel":  # the flow ends Cancelled: nothing to compare; one clear line here
            raise NoChampionError(state.message or "no champion model")
        res: dict[str, Any] = state.result()  # type: ignore[assignment]  # Completed: the summary
        cur, ref = res["current_window"], res["reference_window"]
        typer.echo(
            f"model {res['model_version']}: drift share {res['drift_share']:.2f} "
            f"(threshold {res['threshold']}) -> {'DRIFT' if res['dataset_drift'] else 'no drift'}; "
            "prediction drift: "
            f"{'yes' if res['prediction_drift'] else 'no'} (score {_f(res['prediction_drift_score'])})"
        )
        typer.echo(
            f"current {cur[0]} .. {cur[1]} ({res['n_current']} rows) vs reference "
            f"{ref[0]} .. {ref[1]} ({res['n_reference']} rows)"
        )
        drifted = res["drifted_columns"]
        typer.echo(f"drifted columns ({len(drifted)}): {', '.join(drifted) or 'none'}")
        typer.echo(f"report: {res['report_path']}\n        {res['url']}")
        if res["retrain_request"]:
            typer.echo(res["retrain_request"])

    models_app = typer.Typer(help="The model registry.", no_args_is_help=True)
    app.add_typer(models_app, name="models")

    @models_app.command("list")
    def models_list(
        status: str | None = typer.Option(None, "--status", help="challenger, champion or retired."),
        limit: int = typer.Option(20, "--limit", min=1),
    ) -> None:
        """Registered models, newest first, with their walk-forward score, gate and each gate's figures."""
        from models.cards import gate_summary
        from stockflow.ml.registry import list_models

        _, engine = _setup()
        entries = list_models(engine, status=status, limit=limit)
        if not entries:
            typer.echo("no models registered: run `stockflow retrain`")
            return
        for e in entries:
            wf = e.metrics.get("walk_forward") or {}
            gate = {True: "passed", False: "not passed", None: "n/a"}[e.gate_passed]
            typer.echo(
                f"{e.version:<40} {e.kind:<9} {e.status:<10} auc {_f(wf.get('roc_auc'))} "
                f"ic {_f(wf.get('ic_mean'))} gate {gate} "
                f"train {e.train_start}..{e.train_end}"
            )
            figures = gate_summary(e.metrics.get("gate"))
            if figures:
                typer.echo(f"{'':<40} {figures}")
            if e.status == "champion" and e.reason:
                typer.echo(f"{'':<40} promoted {e.promoted_at:%Y-%m-%d %H:%M} UTC: {e.reason}")

    @models_app.command("promote")
    def models_promote(
        version: str = typer.Argument(..., help="Registered version (see `stockflow models list`)."),
        reason: str = typer.Option(..., "--reason", help="Why (stored with the promotion)."),
        force: bool = typer.Option(
            False, "--force", help="Promote even though it did not beat the baselines."
        ),
    ) -> None:
        """Make VERSION the champion by hand; the reason is recorded."""
        from stockflow.ml.registry import promote

        _, engine = _setup()
        entry = promote(engine, version, reason=reason, force=force)
        typer.echo(f"champion: {entry.version} ({entry.kind}); reason: {entry.reason}")
