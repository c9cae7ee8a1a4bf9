"""Operations: the local operation (``stockflow up``), the reports server, offline Data Docs, security.

- :mod:`stockflow.ops.local`: :class:`~stockflow.ops.local.LocalOperation` starts the Prefect server and UI,
  the served deployments and the reports server, and stops them cleanly.
- :mod:`stockflow.ops.reports`: :func:`~stockflow.ops.reports.report_url` (links for artifacts) and the
  directory-restricted :class:`~stockflow.ops.reports.ReportsServer`.
- :mod:`stockflow.ops.datadocs`: :func:`~stockflow.ops.datadocs.make_offline` makes GX Data Docs readable
  without network.
- :mod:`stockflow.ops.security`: bind rules, telemetry off, secret scanning.
"""

from stockflow.ops.datadocs import make_offline
from stockflow.ops.reports import report_url

__all__ = ["make_offline", "report_url"]
