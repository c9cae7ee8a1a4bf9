"""Offline Data Docs: a real GX site, rewritten so that it needs no network to render."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest

from stockflow.ops.datadocs import MARKER, OFFLINE_CSS_NAME, make_offline

REMOTE_ASSET = re.compile(
    r"<(?:link\b[^>]*\bhref|script\b[^>]*\bsrc|img\b[^>]*\bsrc)\s*=\s*[\"'](?:https?:)?//", re.IGNORECASE
)


@pytest.fixture(scope="module")
def built_site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A Data Docs site built by Great Expectations itself from one failing and one passing rule."""
    import great_expectations as gx
    import pandas as pd

    root = tmp_path_factory.mktemp("gx")
    ctx = gx.get_context(mode="file", project_root_dir=str(root))
    bd = (
        ctx.data_sources.add_pandas("bars")
        .add_dataframe_asset("bars")
        .add_batch_definition_whole_dataframe("all")
    )
    suite = ctx.suites.add(gx.ExpectationSuite("bars_suite"))
    suite.add_expectation(gx.expectations.ExpectColumnValuesToBeBetween(column="close", min_value=0))
    suite.add_expectation(gx.expectations.ExpectColumnValuesToNotBeNull(column="symbol"))
    vd = ctx.validation_definitions.add(gx.ValidationDefinition(name="vd", data=bd, suite=suite))
    cp = ctx.checkpoints.add(
        gx.Checkpoint(
            name="cp", validation_definitions=[vd], actions=[gx.checkpoint.UpdateDataDocsAction(name="docs")]
        )
    )
    cp.run(
        batch_parameters={"dataframe": pd.DataFrame({"symbol": ["A", "B", "C"], "close": [1.0, -2.0, 3.0]})}
    )
    (site,) = (root / "gx" / "uncommitted" / "data_docs").iterdir()
    assert any(REMOTE_ASSET.search(p.read_text()) for p in site.rglob("*.html")), "GX changed: no CDN assets?"
    return site


@pytest.fixture
def site(built_site: Path, tmp_path: Path) -> Path:
    copy = tmp_path / "site"
    shutil.copytree(built_site, copy)
    return copy


def test_pages_load_nothing_from_the_network(site: Path) -> None:
    report = make_offline(site)
    pages = sorted(site.rglob("*.html"))
    assert report.pages_rewritten == len(pages) == 3
    assert report.stylesheets_removed > 0 and report.scripts_removed > 0 and report.images_localized > 0
    for page in pages:
        text = page.read_text()
        assert not REMOTE_ASSET.search(text), page
        (css,) = re.findall(rf'href="([^"]*{OFFLINE_CSS_NAME})"', text)
        assert (page.parent / css).resolve().is_file(), f"{page}: {css} does not resolve"
        for src in re.findall(r'<img\b[^>]*\bsrc="([^"]+)"', text):
            assert (page.parent / src).resolve().is_file(), f"{page}: image {src} missing"


def test_index_tables_are_rendered_without_javascript(site: Path) -> None:
    make_offline(site)
    index = (site / "index.html").read_text()
    assert index.count('class="table stockflow-static-table') == 2  # validation results, suites
    (validation_link,) = re.findall(r'href="(validations/[^"]+\.html)"', index)[:1]
    assert (site / validation_link).is_file()
    assert ">Failed<" in index or "fa-times" in index  # the failed validation shows as failed
    assert "bootstrapTable" not in index


def test_validation_page_keeps_its_content(site: Path) -> None:
    (page,) = (site / "validations").rglob("*.html")
    before = page.read_text()
    make_offline(site)
    after = page.read_text()
    for fact in ("values must be greater than or equal to", "Unexpected Value", "Success Percent"):
        assert fact in before and fact in after


def test_running_twice_changes_nothing(site: Path) -> None:
    make_offline(site)
    snapshot = {p: p.read_text() for p in site.rglob("*.html")}
    again = make_offline(site)
    assert again.pages_rewritten == 0 and again.pages_skipped == len(snapshot)
    assert {p: p.read_text() for p in site.rglob("*.html")} == snapshot
    assert all(text.count(MARKER) == 1 for text in snapshot.values())


def test_missing_directory_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="does not exist"):
        make_offline(tmp_path / "nope")
