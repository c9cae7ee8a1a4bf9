"""Prefect stays at the edge (docs/design.md): plain functions in ``stockflow/`` publish no artifacts and
use Prefect only where the module is Prefect's own business (the local operation, the approval pause,
Dask under Prefect's task runner, the run logger lookup, marking dead runs, an optional Secret block).
Artifacts are published in ``tasks/``."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

#: The modules of ``stockflow/`` that may import Prefect, and why (their docstrings say so too).
ALLOWED = {
    "stockflow/ops/notify.py": "automations, events and notification blocks of the local operation",
    "stockflow/ops/status.py": "the deployments' schedules",
    "stockflow/pipeline/approval.py": "the approval form is a Prefect RunInput",
    "stockflow/pipeline/approve.py": "a paused run is answered through Prefect's resume",
    "stockflow/pipeline/pause.py": "an approval is Prefect's pause/resume",
    "stockflow/compute/executor.py": "Dask under Prefect's task runner",
    "stockflow/compute/features.py": "the Dask client of the current task run",
    "stockflow/logs.py": "Prefect's run logger inside a run",
    "stockflow/crashed.py": "marks the flow runs of dead processes Crashed on the API",
    "stockflow/config/credentials.py": "an optional Prefect Secret block",
    "stockflow/cli/pipeline.py": "the CLI prints the run's UI link (PREFECT_API_URL/PREFECT_UI_URL)",
    "stockflow/expected.py": "one line for Prefect's own expected errors (a run's refused parameters)",
}


def _prefect_imports(path: Path) -> list[str]:
    out: list[str] = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            out += [a.name for a in node.names if a.name.split(".")[0] in ("prefect", "prefect_dask")]
        elif isinstance(node, ast.ImportFrom) and (node.module or "").split(".")[0] in (
            "prefect",
            "prefect_dask",
        ):
            out += [f"{node.module}.{a.name}" for a in node.names]
    return out


def test_plain_functions_publish_no_artifacts_and_use_prefect_only_where_allowed() -> None:
    found = {
        str(f.relative_to(ROOT)): names
        for f in sorted((ROOT / "stockflow").rglob("*.py"))
        if (names := _prefect_imports(f))
    }
    artifacts = {f: n for f, n in found.items() for name in n if name.startswith("prefect.artifacts")}
    assert not artifacts, f"artifacts are published in tasks/, not in stockflow/: {artifacts}"
    outside = {f: n for f, n in found.items() if f not in ALLOWED}
    assert not outside, f"Prefect imported outside the allowed modules (ALLOWED says why each may): {outside}"
