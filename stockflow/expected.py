"""Expected errors in one line: what went wrong, which setting or resource, and what to do.

``explain(exc)`` turns an exception a person can fix (the taxonomy of :mod:`stockflow.errors`, a database
that is unreachable, read-only, full or gone, a Prefect API that does not answer, a date outside the
exchange calendar, flow run parameters of the wrong type) into one line, and returns ``None`` for
anything else: a bug, which keeps its traceback. ``install()`` applies the same rule to every log record
in the process, Prefect's run and task loggers included: a record carrying an expected error loses its
traceback and says the line instead. ``STOCKFLOW_DEBUG=1`` (``stockflow --debug``) keeps every traceback.
"""

from __future__ import annotations

import errno
import logging
import os
from typing import Any

from stockflow.errors import StockflowError

DEBUG_ENV = "STOCKFLOW_DEBUG"

_UNREACHABLE = (
    "connection refused",
    "could not connect",
    "could not translate host name",
    "name or service not known",
    "temporary failure in name resolution",
    "timeout expired",
    "connection timed out",
    "no route to host",
    "network is unreachable",
)
_LOST = (
    "server closed the connection",
    "terminating connection",
    "connection already closed",
    "ssl connection has been closed",
    "consuming input failed",
    "the connection is closed",
    "connection is lost",
    "server conn crashed",
    "connection reset",
)


def debug_enabled() -> bool:
    """True when tracebacks of expected errors are wanted (``--debug`` / ``STOCKFLOW_DEBUG=1``)."""
    return os.environ.get(DEBUG_ENV, "").strip().lower() in ("1", "true", "yes", "on")


def _one_line(text: object) -> str:
    return " ".join(part.strip() for part in str(text).splitlines() if part.strip())


def _db_url_hint() -> str:
    return "check database_url / STOCKFLOW_DATABASE_URL"


def _explain_db(exc: BaseException) -> str | None:
    try:
        from sqlalchemy import exc as sa_exc
    except ImportError:  # pragma: no cover - a hard dependency
        return None
    if isinstance(exc, (sa_exc.ArgumentError, sa_exc.NoSuchModuleError)):
        return f"database_url is not a usable database URL ({_one_line(exc)}); {_db_url_hint()}"
    if not isinstance(exc, sa_exc.DBAPIError):
        return None
    orig = getattr(exc, "orig", None)
    text = _one_line(orig if orig is not None else exc).lower()
    shown = _one_line(orig if orig is not None else exc)[:200]
    if "readonly database" in text or "read-only" in text or "read only" in text:
        return (
            f"the database is read-only ({shown}); nothing was written. Make the database file and its "
            "directory writable, or point database_url at a writable database"
        )
    if "disk is full" in text or "no space left" in text or "could not extend file" in text:
        return f"the disk holding the database is full ({shown}); free space, then run again"
    if "unable to open database file" in text:
        return f"cannot open the database file ({shown}): does its directory exist and is it writable? " + (
            _db_url_hint()
        )
    if "password authentication failed" in text or "authentication failed" in text:
        return f"the database refused the login ({shown}); {_db_url_hint()}"
    if "does not exist" in text and "database" in text:
        return f"the database does not exist ({shown}); create it or {_db_url_hint()}"
    if any(k in text for k in _LOST) or (isinstance(exc, sa_exc.DBAPIError) and exc.connection_invalidated):
        return (
            f"the database connection was lost during the run ({shown}); the open transaction was rolled "
            "back. Check that the database server is up, then run again"
        )
    if any(k in text for k in _UNREACHABLE):
        return f"the database does not answer ({shown}); start it or {_db_url_hint()}"
    if isinstance(exc, (sa_exc.OperationalError, sa_exc.InterfaceError)):
        return f"database error ({shown}); {_db_url_hint()}"
    return None


def _explain_os(exc: BaseException) -> str | None:
    if not isinstance(exc, OSError):
        return None
    where = f" writing {exc.filename}" if getattr(exc, "filename", None) else ""
    if exc.errno == errno.ENOSPC:
        return f"the disk is full{where}; free space, then run again"
    if exc.errno == errno.EROFS:
        return f"read-only file system{where}; point data_dir/reports_dir at a writable place"
    return None


def _explain_http(exc: BaseException) -> str | None:
    api = os.environ.get("PREFECT_API_URL", "").strip()
    if isinstance(exc, RuntimeError) and str(exc).startswith("Failed to reach API at"):
        return (
            f"the Prefect API at {api or str(exc).rsplit(' ', 1)[-1]} (PREFECT_API_URL) does not answer; "
            "start it with `stockflow up`, or unset PREFECT_API_URL to use a temporary one"
        )
    try:
        import httpx
    except ImportError:  # pragma: no cover
        return None
    if not isinstance(exc, (httpx.ConnectError, httpx.ConnectTimeout)):
        return None
    url = str(exc.request.url) if getattr(exc, "_request", None) is not None else ""
    if api and (not url or url.startswith(api.rstrip("/").removesuffix("/api"))):
        return (
            f"the Prefect API at {api} (PREFECT_API_URL) does not answer ({_one_line(exc)}); start it with "
            "`stockflow up`, or unset PREFECT_API_URL to use a temporary one"
        )
    return None


def _explain_calendar(exc: BaseException) -> str | None:
    mod = type(exc).__module__ or ""
    if mod.startswith("exchange_calendars"):
        return f"date outside the exchange calendar: {_one_line(exc)}"
    return None


def _explain_parameters(exc: BaseException) -> str | None:
    """A flow run created with parameters its flow refuses (the UI's custom run with validation off,
    ``create_flow_run`` with ``enforce_parameter_schema=False``): Prefect's ``ParameterTypeError``."""
    from prefect.exceptions import ParameterTypeError

    if not isinstance(exc, ParameterTypeError):
        return None
    problems = [ln.strip()[2:] for ln in str(exc).splitlines() if ln.strip().startswith("- ")]
    return (
        f"invalid flow run parameters: {'; '.join(problems) or _one_line(exc)}; the run did not start. "
        "Run it again with parameters of the types the deployment shows (leave parameter validation on)"
    )


def explain(exc: BaseException) -> str | None:
    """One line for an expected error, ``None`` for a bug (which keeps its traceback)."""
    if isinstance(exc, StockflowError):
        return _one_line(exc)
    for fn in (_explain_db, _explain_os, _explain_http, _explain_calendar, _explain_parameters):
        msg = fn(exc)
        if msg:
            return msg
    cause = exc.__cause__ or exc.__context__
    if cause is not None and cause is not exc and isinstance(cause, StockflowError):
        return _one_line(cause)
    return None


def install() -> None:
    """Make every log record of an expected error one line without a traceback (idempotent)."""
    previous = logging.getLogRecordFactory()
    if getattr(previous, "_stockflow_one_line", False):
        return

    def factory(*args: Any, **kwargs: Any) -> logging.LogRecord:
        record = previous(*args, **kwargs)
        info = record.exc_info
        if info and info[1] is not None and not debug_enabled():
            line = explain(info[1])
            if line is not None:
                try:
                    text = record.getMessage()
                except Exception:
                    text = str(record.msg)
                head = text.split(":", 1)[0] if ":" in text else text
                record.msg = f"{head}: {line}" if head and head != text else line
                record.args = ()
                record.exc_info = None
                record.exc_text = None
        return record

    factory._stockflow_one_line = True  # type: ignore[attr-defined]
    logging.setLogRecordFactory(factory)
