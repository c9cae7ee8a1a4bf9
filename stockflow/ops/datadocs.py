"""Make Great Expectations Data Docs readable offline.

GX 1.x Data Docs load Bootstrap, bootstrap-table, jQuery, Font Awesome and Vega from CDNs and a logo from
S3 (with the data context id in its query string). Without network the pages render unstyled, the index
page's tables stay empty (bootstrap-table fills them from JavaScript) and the browser may wait on each
blocked request. :func:`make_offline` rewrites a built Data Docs site in place:

- CDN ``<link rel=stylesheet>`` tags are replaced by one local stylesheet shipped with stockflow
  (``stockflow/ops/static/datadocs-offline.css``, a small Bootstrap subset), copied into the site;
- CDN ``<script src>`` tags are removed, and so are the inline scripts that need them;
- the index page's bootstrap-table tables are rendered to static HTML from the data in the page;
- the remote logo is replaced by GX's own copy in the site's ``static/images``.

It is idempotent: pages already rewritten are left alone. Call it after every Data Docs build.
"""

from __future__ import annotations

import ast
import html
import os
import re
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

#: Name of the stylesheet copied into ``<docs_dir>/static/``.
OFFLINE_CSS_NAME = "stockflow-offline.css"
_OFFLINE_CSS_SOURCE = Path(__file__).with_name("static") / "datadocs-offline.css"
#: Comment placed in each rewritten page; its presence makes a second run skip the page.
MARKER = "<!-- stockflow: offline data docs -->"

_REMOTE = r"(?:https?:)?//"
_LINK_RE = re.compile(rf"<link\b[^>]*\bhref\s*=\s*[\"']{_REMOTE}[^\"']*[\"'][^>]*>", re.IGNORECASE)
_SCRIPT_SRC_RE = re.compile(
    rf"<script\b[^>]*\bsrc\s*=\s*[\"']{_REMOTE}[^\"']*[\"'][^>]*>\s*</script\s*>", re.IGNORECASE | re.DOTALL
)
_INLINE_SCRIPT_RE = re.compile(
    r"<script\b(?![^>]*\bsrc\s*=)[^>]*>(.*?)</script\s*>", re.IGNORECASE | re.DOTALL
)
_REMOTE_IMG_RE = re.compile(
    rf"(<img\b[^>]*\bsrc\s*=\s*)([\"']){_REMOTE}[^\"']*?/([\w.-]+\.(?:png|svg|gif|jpe?g))(?:\?[^\"']*)?\2",
    re.IGNORECASE,
)
_HEAD_END_RE = re.compile(r"</head\s*>", re.IGNORECASE)
_TABLE_INIT_RE = re.compile(r"\$\(\s*['\"]#([\w-]+)['\"]\s*\)\s*\.bootstrapTable\(")


@dataclass(frozen=True)
class OfflineReport:
    """What :func:`make_offline` changed."""

    pages_rewritten: int
    pages_skipped: int
    stylesheets_removed: int
    scripts_removed: int
    tables_rendered: int
    images_localized: int


def make_offline(docs_dir: str | os.PathLike[str]) -> OfflineReport:
    """Rewrite every HTML page of the Data Docs site in ``docs_dir`` so it renders without network.

    ``docs_dir`` is the site root (the folder holding ``index.html`` and ``static/``). Returns counts of
    what changed; raises ``FileNotFoundError`` when ``docs_dir`` does not exist.
    """
    root = Path(docs_dir)
    if not root.is_dir():
        raise FileNotFoundError(f"Data Docs directory {root} does not exist")
    static = root / "static"
    (static / "styles").mkdir(parents=True, exist_ok=True)
    shutil.copyfile(_OFFLINE_CSS_SOURCE, static / "styles" / OFFLINE_CSS_NAME)
    _copy_gx_images(static / "images")

    counts = {"rewritten": 0, "skipped": 0, "links": 0, "scripts": 0, "tables": 0, "images": 0}
    for page in sorted(root.rglob("*.html")):
        text = page.read_text(encoding="utf-8")
        if MARKER in text:
            counts["skipped"] += 1
            continue
        new_text, page_counts = rewrite_page(text, static_prefix=_relative_static(page, root))
        for key, value in page_counts.items():
            counts[key] += value
        tmp = page.with_suffix(".html.tmp")
        tmp.write_text(new_text, encoding="utf-8")
        tmp.replace(page)  # atomic: a reader never sees half a page
        counts["rewritten"] += 1
    return OfflineReport(
        pages_rewritten=counts["rewritten"],
        pages_skipped=counts["skipped"],
        stylesheets_removed=counts["links"],
        scripts_removed=counts["scripts"],
        tables_rendered=counts["tables"],
        images_localized=counts["images"],
    )


def rewrite_page(text: str, static_prefix: str = "static") -> tuple[str, dict[str, int]]:
    """Rewrite one Data Docs page; ``static_prefix`` is the relative URL of the site's ``static`` folder.

    Returns the new text and counts (``links``, ``scripts``, ``tables``, ``images``).
    """
    counts = {"links": 0, "scripts": 0, "tables": 0, "images": 0}

    def _drop_link(m: re.Match[str]) -> str:
        tag = m.group(0)
        if re.search(r"rel\s*=\s*[\"']?stylesheet", tag, re.IGNORECASE) or "preconnect" in tag.lower():
            counts["links"] += 1
            return ""
        return tag

    text = _LINK_RE.sub(_drop_link, text)
    text, n = _SCRIPT_SRC_RE.subn("", text)
    counts["scripts"] += n

    text, n = _render_tables(text)
    counts["tables"] += n

    def _drop_inline(m: re.Match[str]) -> str:
        body = m.group(1)
        # Scripts written for jQuery/bootstrap-table/vega only throw errors once those are gone.
        if re.search(r"\$\(|\bjQuery\b|bootstrapTable|vegaEmbed", body):
            counts["scripts"] += 1
            return ""
        return m.group(0)

    text = _INLINE_SCRIPT_RE.sub(_drop_inline, text)

    def _local_img(m: re.Match[str]) -> str:
        counts["images"] += 1
        return f"{m.group(1)}{m.group(2)}{static_prefix}/images/{m.group(3)}{m.group(2)}"

    text = _REMOTE_IMG_RE.sub(_local_img, text)

    css = f'{MARKER}\n<link rel="stylesheet" href="{static_prefix}/styles/{OFFLINE_CSS_NAME}">\n'
    if _HEAD_END_RE.search(text):
        text = _HEAD_END_RE.sub(lambda m: css + m.group(0), text, count=1)
    else:
        text = css + text
    return text, counts


def _relative_static(page: Path, root: Path) -> str:
    depth = len(page.relative_to(root).parts) - 1
    return "/".join([".."] * depth + ["static"])


def _copy_gx_images(dest: Path) -> None:
    """Copy GX's own images (the logo the pages otherwise fetch from S3) into the site."""
    try:
        import great_expectations

        src = Path(great_expectations.__file__).parent / "render" / "view" / "static" / "images"
    except ImportError:  # pragma: no cover - great_expectations is a hard dependency
        return
    if not src.is_dir():
        return
    dest.mkdir(parents=True, exist_ok=True)
    for img in src.iterdir():
        if img.is_file() and not (dest / img.name).exists():
            shutil.copyfile(img, dest / img.name)


def _balanced(text: str, start: int) -> str | None:
    """The bracketed literal (``[...]`` or ``{...}``) starting at ``text[start]``, quotes respected."""
    opening = text[start]
    closing = {"[": "]", "{": "}"}[opening]
    depth, i, quote = 0, start, ""
    while i < len(text):
        ch = text[i]
        if quote:
            if ch == "\\":
                i += 2
                continue
            if ch == quote:
                quote = ""
        elif ch in "'\"":
            quote = ch
        elif ch == opening:
            depth += 1
        elif ch == closing:
            depth -= 1
            if depth == 0:
                return text[start : i + 1]
        i += 1
    return None


def _literal_after(text: str, key: str) -> Any:
    m = re.search(rf"\b{key}\s*:\s*\[", text)
    if not m:
        return None
    raw = _balanced(text, m.end() - 1)
    if raw is None:
        return None
    try:
        return ast.literal_eval(raw)
    except (ValueError, SyntaxError):
        return None


def _render_tables(text: str) -> tuple[str, int]:
    """Fill each empty bootstrap-table ``<table id=...>`` with static rows from its init script."""
    rendered = 0
    original = text
    for m in _TABLE_INIT_RE.finditer(original):
        table_id = m.group(1)
        call = original[m.end() : m.end() + 200_000]
        columns = _literal_after(call, "columns")
        data = _literal_after(call, "data")
        if not isinstance(columns, list) or not isinstance(data, list):
            continue
        table_re = re.compile(
            rf"(<table\b[^>]*\bid\s*=\s*[\"']{re.escape(table_id)}[\"'][^>]*>)\s*(</table>)"
        )
        found = table_re.search(text)
        if not found:
            continue
        filled = _static_open_tag(found.group(1)) + _table_html(columns, data) + found.group(2)
        text = text[: found.start()] + filled + text[found.end() :]
        rendered += 1
    return text, rendered


def _static_open_tag(tag: str) -> str:
    """The ``<table>`` tag with bootstrap-table's auto-init removed and table classes added."""
    tag = re.sub(r"\s*data-toggle\s*=\s*[\"']table[\"']", "", tag)
    if re.search(r"\bclass\s*=\s*\"", tag):
        return re.sub(r'\bclass\s*=\s*"', 'class="table stockflow-static-table ', tag, count=1)
    return tag.replace("<table", '<table class="table stockflow-static-table"', 1)


def _table_html(columns: list[dict[str, Any]], data: list[dict[str, Any]]) -> str:
    fields = [(str(c.get("field", "")), str(c.get("title", c.get("field", "")))) for c in columns]
    head = "".join(f"<th>{html.escape(title)}</th>" for _, title in fields)
    rows = []
    for row in data:
        link = row.get("_table_row_link_path")
        cells = []
        for field, _ in fields:
            value = row.get(field, "")
            cell = str(value) if value is not None else ""
            # Cell values are HTML that GX itself generated for bootstrap-table; plain text cells get the
            # row's link, which bootstrap-table would have attached to a click on the row.
            if link and "<" not in cell:
                cell = f'<a href="{html.escape(str(link), quote=True)}">{html.escape(cell.strip())}</a>'
            cells.append(f"<td>{cell}</td>")
        rows.append("<tr>" + "".join(cells) + "</tr>")
    return f"<thead><tr>{head}</tr></thead><tbody>{''.join(rows)}</tbody>"
