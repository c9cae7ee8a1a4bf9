"""The reports HTTP server: serves ``settings.reports_dir`` so links in Prefect artifacts open in a browser.

Browsers refuse ``file://`` links from an ``http://`` page (the Prefect UI), so HTML reports (GX Data Docs,
Evidently drift, backtest tearsheets) are served over HTTP on loopback by ``stockflow up``, and link
artifacts point at :func:`report_url`. The handler serves files below the root only: no ``..``, no
symbolic link leading out of the directory, no hidden files, GET and HEAD only.

Besides the files it serves the standing view of the book (:mod:`stockflow.ops.book`): the page at ``/``
(and ``/book``), its data at ``/book.json`` (polled by the page); the directory listing of every report
is at ``/files/``. The same authentication rules apply to all of it.
"""

from __future__ import annotations

import base64
import hmac
import json
import logging
import os
import threading
from collections.abc import Callable
from functools import partial
from http import HTTPStatus
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import quote

from stockflow.config import Settings
from stockflow.errors import ConfigError
from stockflow.ops.security import is_loopback

log = logging.getLogger("stockflow.ops.reports")

#: Environment variable that overrides the base URL used in report links (e.g. behind a proxy).
REPORTS_URL_ENV = "STOCKFLOW_REPORTS_URL"
#: The standing view's page (served at ``/``).
BOOK_PAGE = Path(__file__).with_name("static") / "book.html"
#: Supplies the standing view as JSON-ready data (``/book.json``).
BookSource = Callable[[], dict[str, Any]]


def report_url(settings: Settings, path: str | os.PathLike[str] | None = None) -> str:
    """The http:// URL under which the reports server serves ``path`` (a file inside reports_dir), or the
    server's index (``.../``) when ``path`` is None. The one report-link helper of every area.

    A relative ``path`` is taken from the working directory when it lies inside reports_dir there (what
    ``settings.reports_dir / ...`` gives with a relative reports_dir), else relative to reports_dir. A path
    outside reports_dir raises :class:`ConfigError` (it could not be served). The base is
    ``$STOCKFLOW_REPORTS_URL`` when set, else ``http://<server.host>:<server.reports_port>``.
    """
    if path is None:
        return reports_base_url(settings) + "/"
    root = Path(settings.reports_dir).resolve()
    p = Path(path)
    full = p.resolve()
    if not p.is_absolute() and not full.is_relative_to(root):
        full = (root / p).resolve()
    try:
        rel = full.relative_to(root)
    except ValueError:
        raise ConfigError(
            f"report {full} is outside reports_dir {root}: the reports server cannot serve it"
        ) from None
    return f"{reports_base_url(settings)}/{quote(rel.as_posix())}"


def reports_base_url(settings: Settings) -> str:
    """Base URL of the reports server, without a trailing slash."""
    base = os.environ.get(REPORTS_URL_ENV, "").strip()
    if base:
        return base.rstrip("/")
    host = settings.server.host
    if host in ("0.0.0.0", "::", ""):
        host = "127.0.0.1"
    if ":" in host:
        host = f"[{host}]"
    return f"http://{host}:{settings.server.reports_port}"


class ReportsHandler(SimpleHTTPRequestHandler):
    """Static files below ``directory`` only; quiet logging through the ``stockflow.ops.reports`` logger."""

    server_version = "stockflow-reports"
    sys_version = ""

    def __init__(
        self,
        *args: Any,
        directory: str,
        auth: str | None = None,
        book: BookSource | None = None,
        **kwargs: Any,
    ) -> None:
        self._root = Path(directory).resolve()
        self._book = book
        self._auth = "Basic " + base64.b64encode(auth.encode()).decode() if auth else None
        super().__init__(*args, directory=directory, **kwargs)

    def _authorized(self) -> bool:
        if self._auth is None:
            return True
        if hmac.compare_digest(self.headers.get("Authorization", ""), self._auth):
            return True
        self.send_response(HTTPStatus.UNAUTHORIZED)
        self.send_header("WWW-Authenticate", 'Basic realm="stockflow reports"')
        self.send_header("Content-Length", "0")
        self.end_headers()
        return False

    def _allowed(self) -> bool:
        # translate_path already drops '..' segments; here we also refuse hidden files and symbolic
        # links that lead outside the root.
        target = Path(self.translate_path(self.path))
        rel_parts = target.relative_to(self._root).parts if target.is_relative_to(self._root) else None
        if rel_parts is None or any(part.startswith(".") for part in rel_parts):
            return False
        try:
            return target.resolve().is_relative_to(self._root)
        except OSError:
            return False

    def _send(self, status: HTTPStatus, body: bytes, content_type: str) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def _special(self) -> bool:
        """Serve the book page and its JSON; map ``/files/...`` onto the files. True when answered."""
        path = self.path.split("?", 1)[0]
        if path in ("/", "/book", "/book.html"):
            self._send(HTTPStatus.OK, BOOK_PAGE.read_bytes(), "text/html; charset=utf-8")
            return True
        if path == "/book.json":
            if self._book is None:
                body = {"error": "this reports server has no state store to read the book from"}
                self._send(HTTPStatus.NOT_FOUND, json.dumps(body).encode(), "application/json")
                return True
            try:
                data = self._book()
            except Exception as err:  # the page shows it; the server keeps serving
                log.warning("book.json failed: %s: %s", type(err).__name__, err)
                body = {"error": f"{type(err).__name__}: {err}"}
                self._send(HTTPStatus.SERVICE_UNAVAILABLE, json.dumps(body).encode(), "application/json")
                return True
            self._send(HTTPStatus.OK, json.dumps(data, default=str).encode(), "application/json")
            return True
        if path == "/files":
            self.path = "/files/"
        if self.path.startswith("/files/"):
            self.path = self.path[len("/files") :]
        return False

    def do_GET(self) -> None:
        """Serve the book, a file or a directory listing, or 404 outside the root."""
        if not self._authorized():
            return
        if self._special():
            return
        if not self._allowed():
            self.send_error(HTTPStatus.NOT_FOUND, "File not found")
            return
        super().do_GET()

    def do_HEAD(self) -> None:
        """Like GET without a body."""
        if not self._authorized():
            return
        if self._special():
            return
        if not self._allowed():
            self.send_error(HTTPStatus.NOT_FOUND, "File not found")
            return
        super().do_HEAD()

    def end_headers(self) -> None:
        """Add headers that keep the served reports from being sniffed or framed by other sites."""
        self.send_header("X-Content-Type-Options", "nosniff")
        self.send_header("Cache-Control", "no-cache")
        super().end_headers()

    def log_message(self, format: str, *args: Any) -> None:
        """Log requests at debug level instead of writing them to stderr."""
        log.debug("%s - %s", self.address_string(), format % args)


class ReportsServer:
    """A threaded HTTP server for a reports directory, running in a daemon thread.

    Use as a context manager or call :meth:`start` and :meth:`stop`. ``port=0`` picks a free port.
    On anything but loopback it requires ``auth`` ("user:password", HTTP basic authentication; the same
    string as ``PREFECT_SERVER_API_AUTH_STRING``), since reports show positions and orders. ``book``
    supplies the standing view served at ``/book.json`` (none: that path answers 404).
    """

    def __init__(
        self,
        directory: Path,
        host: str = "127.0.0.1",
        port: int = 0,
        *,
        auth: str | None = None,
        book: BookSource | None = None,
    ) -> None:
        if not is_loopback(host) and not auth:
            raise ConfigError(
                f"refusing to serve reports on {host} without authentication: set "
                "PREFECT_SERVER_API_AUTH_STRING (it protects the reports too) or keep 127.0.0.1"
            )
        self.directory = Path(directory).resolve()
        self.directory.mkdir(parents=True, exist_ok=True)
        handler = partial(ReportsHandler, directory=str(self.directory), auth=auth, book=book)
        self._httpd = ThreadingHTTPServer((host, port), handler)
        self._httpd.daemon_threads = True
        self._thread: threading.Thread | None = None

    @property
    def host(self) -> str:
        """The address the server listens on."""
        return str(self._httpd.server_address[0])

    @property
    def port(self) -> int:
        """The port the server listens on (the real one when 0 was asked)."""
        return int(self._httpd.server_address[1])

    @property
    def url(self) -> str:
        """Base URL, e.g. ``http://127.0.0.1:8765``."""
        host = "127.0.0.1" if self.host in ("0.0.0.0", "::") else self.host
        return f"http://{host}:{self.port}"

    def start(self) -> ReportsServer:
        """Start serving in a background thread."""
        if self._thread is None:
            self._thread = threading.Thread(
                target=self._httpd.serve_forever, name="stockflow-reports", daemon=True
            )
            self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving and close the socket."""
        if self._thread is not None:
            self._httpd.shutdown()
            self._thread.join(timeout=5)
            self._thread = None
        self._httpd.server_close()

    def __enter__(self) -> ReportsServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
