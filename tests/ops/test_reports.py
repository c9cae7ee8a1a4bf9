"""The reports server: what it serves, what it refuses, and the links flows put in artifacts."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from stockflow.config import Settings, load_settings
from stockflow.errors import ConfigError
from stockflow.ops.local import http_get
from stockflow.ops.reports import REPORTS_URL_ENV, ReportsServer, report_url


@pytest.fixture
def reports(tmp_path: Path) -> Path:
    root = tmp_path / "reports"
    (root / "drift").mkdir(parents=True)
    (root / "drift" / "report 1.html").write_text("<h1>drift</h1>")
    (root / ".hidden").write_text("nope")
    (tmp_path / "secret.txt").write_text("outside the reports dir")
    os.symlink(tmp_path / "secret.txt", root / "escape.txt")
    (root / "inside-link.html").symlink_to(root / "drift" / "report 1.html")
    return root


def test_serves_files_below_the_root_only(reports: Path) -> None:
    with ReportsServer(reports) as srv:
        assert srv.host == "127.0.0.1" and srv.port > 0
        assert http_get(f"{srv.url}/drift/report%201.html") == (200, b"<h1>drift</h1>")
        assert http_get(f"{srv.url}/inside-link.html")[0] == 200  # a link that stays inside is fine
        status, listing = http_get(f"{srv.url}/files/")  # "/" is the book page (tests/ops/test_book.py)
        assert status == 200 and b"drift/" in listing
        for bad in (
            "/files/../secret.txt",
            "/files/.hidden",
            "/escape.txt",
            "/.hidden",
            "/../secret.txt",
            "/%2e%2e/secret.txt",
            "/drift/../../secret.txt",
        ):
            status, body = http_get(srv.url + bad)
            assert status == 404 and b"outside the reports dir" not in body, bad
    assert http_get(f"{srv.url}/")[0] == 0, "stopped"


def test_beyond_loopback_it_needs_and_checks_basic_auth(reports: Path) -> None:
    import base64
    import urllib.request

    with pytest.raises(ConfigError, match="without authentication"):
        ReportsServer(reports, host="0.0.0.0")
    with ReportsServer(reports, host="0.0.0.0", auth="admin:pw-123456789") as srv:
        url = f"http://127.0.0.1:{srv.port}/drift/report%201.html"
        assert http_get(url)[0] == 401
        assert http_get(url, auth="admin:wrong")[0] == 401
        assert http_get(url, auth="admin:pw-123456789") == (200, b"<h1>drift</h1>")
        req = urllib.request.Request(url, method="HEAD")
        req.add_header("Authorization", "Basic " + base64.b64encode(b"admin:pw-123456789").decode())
        with urllib.request.urlopen(req, timeout=5) as resp:
            assert resp.status == 200


def _settings(tmp_path: Path, **server: object) -> Settings:
    return load_settings(reports_dir=tmp_path / "reports", server=server or {})


def test_report_url_points_at_the_reports_server(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(REPORTS_URL_ENV, raising=False)
    s = _settings(tmp_path, reports_port=9123)
    assert (
        report_url(s, tmp_path / "reports" / "drift" / "a b.html") == "http://127.0.0.1:9123/drift/a%20b.html"
    )
    assert report_url(s, "drift/a.html") == "http://127.0.0.1:9123/drift/a.html"
    with pytest.raises(ConfigError, match="outside reports_dir"):
        report_url(s, tmp_path / "elsewhere.html")
    # Bound to every interface, links still name an address a browser can open.
    assert report_url(_settings(tmp_path, host="0.0.0.0"), "x.html").startswith("http://127.0.0.1:")
    monkeypatch.setenv(REPORTS_URL_ENV, "https://reports.example.org/base/")
    assert report_url(s, "x.html") == "https://reports.example.org/base/x.html"
