"""Operations: the local operation (``stockflow up``), the reports server, offline Data Docs, security.

- :mod:`stockflow.ops.local`: :class:`~stockflow.ops.local.LocalOperation` starts the Prefect server and UI,
  the served deployments and the reports server, and stops them cleanly.
- :mod:`stockflow.ops.reports`: :func:`~stockflow.ops.reports.report_url` (links for artifacts) and the
  directory-restricted :class:`~stockflow.ops.reports.ReportsServer`.
- :mod:`stockflow.ops.datadocs`: :func:`~stockflow.ops.datadocs.make_offline` makes GX Data Docs readable
  without network.
- :mod:`stockflow.ops.security`: bind rules, telemetry off, secret scanning.
- :mod:`stockflow.ops.opconfig`, :mod:`stockflow.ops.api`, :mod:`stockflow.ops.procs`: the operation's
  configuration and shared files, plain HTTP over the Prefect API, process helpers.
- :mod:`stockflow.ops.book`: the standing view of the book (page, JSON, ``stockflow status``).
- :mod:`stockflow.ops.notify`: notifications as Prefect automations, and the events they listen to.
- :mod:`stockflow.ops.quarantine`: the quarantine as a person reads it.
- :mod:`stockflow.ops.status`: ``stockflow status``.

Prefect at the edge: this package IS the local Prefect operation (server, deployments, automations), so
it may use Prefect (``notify``: events, automations and blocks; ``status``: schedules; ``local``: the
server process). Plain functions elsewhere in ``stockflow/`` do not publish artifacts or use Prefect's
runtime; artifacts are published in ``tasks/`` (``tasks/artifacts.py``); the exceptions are the
approval stage (Prefect's pause/resume: :mod:`stockflow.pipeline.pause`, :mod:`~stockflow.pipeline.approval`,
:mod:`~stockflow.pipeline.approve`), ``stockflow.compute`` (Dask under Prefect's task runner),
:mod:`stockflow.logs` (the run logger when there is a run), :mod:`stockflow.crashed` (marks dead runs
Crashed on the API) and :mod:`stockflow.config.credentials` (an optional Secret block).
"""

from stockflow.ops.datadocs import make_offline
from stockflow.ops.reports import report_url

__all__ = ["make_offline", "report_url"]
