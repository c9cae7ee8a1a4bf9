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
"""

from stockflow.ops.datadocs import make_offline
from stockflow.ops.reports import report_url

__all__ = ["make_offline", "report_url"]
