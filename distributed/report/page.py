"""The page of ``omasgan report``: headings, text, tables and figures, rendered to Markdown or HTML.

Text uses a tiny markup that both renderers understand: `code`, *emphasis* and [link](target).
Every table is also saved unrounded as ``tables/<name>.csv`` next to the page.

Text can carry names from the data (study names, trial ids), so markup is read only outside code
spans, and a link becomes a link only when its target is safe (:func:`safe_link_target`: a relative
path, or http/https); any other ``[text](target)`` (``javascript:``, ``data:``, ...) stays plain text.
"""

from __future__ import annotations

import html
import re
from pathlib import Path

import numpy as np
import pandas as pd

from ..store.result_store import safe_name
from .figures import HEIGHT, WIDTH

LINK = re.compile(r"\[([^\]]+)\]\(([^)]+)\)")
CODE = re.compile(r"`([^`]+)`")
SAFE_SCHEMES = ("http", "https")


def safe_link_target(target: str) -> bool:
    """Whether ``target`` may be a link: a relative path, or an http(s) URL.  Browsers drop ASCII
    whitespace and control characters inside a URL's scheme, so they are dropped before the check."""
    cleaned = "".join(ch for ch in target if ch > " " and ch != "\x7f")
    scheme = re.match(r"^([A-Za-z][A-Za-z0-9+.\-]*):", cleaned)
    if scheme:
        return scheme.group(1).lower() in SAFE_SCHEMES
    return not cleaned.startswith(("//", "\\"))


def _outside_code(text: str, outside, inside) -> str:
    """``text`` with ``outside`` applied to the parts outside `code` spans and ``inside`` to their contents."""
    parts, last = [], 0
    for match in CODE.finditer(text):
        parts.append(outside(text[last:match.start()]))
        parts.append(inside(match.group(1)))
        last = match.end()
    parts.append(outside(text[last:]))
    return "".join(parts)


def markdown_text(text: str) -> str:
    """``text`` for the Markdown page: an unsafe link's brackets escaped, so no viewer makes it a link."""
    def outside(part: str) -> str:
        return LINK.sub(lambda m: m.group(0) if safe_link_target(m.group(2))
                        else f"\\[{m.group(1)}\\]({m.group(2)})", part)

    return _outside_code(text, outside, lambda code: f"`{code}`")


class Page:
    """The report being built in ``folder``: blocks rendered to Markdown or HTML at the end."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.blocks: list[tuple[str, object]] = []
        (folder / "figures").mkdir(parents=True)
        (folder / "tables").mkdir()

    def heading(self, text: str, level: int = 2) -> None:
        self.blocks.append(("heading", (level, text)))

    def text(self, text: str) -> None:
        self.blocks.append(("text", text))

    def left_out(self, reason: str) -> None:
        self.text(f"*Left out: {reason}.*")

    def table(self, name: str, frame: pd.DataFrame, caption: str = "") -> None:
        """A table on the page (4 decimals; 1 for ``*_s`` seconds; 6 digits for a swept ``value``) and,
        unrounded, in tables/<name>.csv.  A table that counts its units (``units_total``) is shown
        through :func:`..analysis.tables.units_view`: a mean of fewer units than planned reads
        ``0.7340 (2/3 units)``, with the legend after the caption; the CSV keeps the numbers and counts."""
        from ..analysis.tables import UNITS_LEGEND, units_view

        csv = f"tables/{safe_name(name)}.csv"
        frame.to_csv(self.folder / csv, index=False)
        shown, partial = units_view(frame)
        legend = f" {UNITS_LEGEND}." if partial else ""
        self.blocks.append(("table", (shown, f"{caption} [CSV]({csv}){legend}".strip())))

    def figure_path(self, name: str) -> Path:
        return self.folder / "figures" / f"{safe_name(name)}.png"

    def figure(self, path: Path, alt: str) -> None:
        self.blocks.append(("figure", (path.relative_to(self.folder).as_posix(), alt)))

    # ---- rendering ---------------------------------------------------------------------------
    @staticmethod
    def _cell(value: object, column: str) -> str:
        if value is None or value is pd.NA or (isinstance(value, (float, np.floating)) and not np.isfinite(value)):
            return "-"
        if isinstance(value, (float, np.floating)):
            return f"{value:.1f}" if column.endswith("_s") else f"{value:.6g}" if column == "value" else f"{value:.4f}"
        return str(value)

    def render(self, fmt: str) -> str:
        return self._markdown() if fmt == "md" else self._html()

    def _markdown(self) -> str:
        out = []
        for kind, item in self.blocks:
            if kind == "heading":
                out.append(f"{'#' * item[0]} {item[1]}")
            elif kind == "text":
                out.append(markdown_text(item))
            elif kind == "figure":
                out.append(f"![{item[1]}]({item[0]})")
            else:
                frame, caption = item
                lines = [markdown_text(caption), "", "| " + " | ".join(map(str, frame.columns)) + " |",
                         "|" + "---|" * len(frame.columns)]
                for row in frame.itertuples(index=False):
                    cells = (self._cell(v, str(c)).replace("|", "\\|").replace("\n", " ")
                             for v, c in zip(row, frame.columns))
                    lines.append("| " + " | ".join(cells) + " |")
                out.append("\n".join(lines))
        return "\n\n".join(out) + "\n"

    @staticmethod
    def _inline(text: str) -> str:
        """``text`` as HTML: everything escaped; links (safe targets only) and emphasis outside code spans."""
        codes: list[str] = []

        def keep_code(code: str) -> str:
            codes.append(f"<code>{html.escape(code)}</code>")
            return f"\x00{len(codes) - 1}\x00"

        def link(match: re.Match) -> str:
            if not safe_link_target(match.group(2)):
                return html.escape(match.group(0))
            return f'<a href="{html.escape(match.group(2), quote=True)}">{html.escape(match.group(1))}</a>'

        def outside(part: str) -> str:
            pieces, last = [], 0
            for match in LINK.finditer(part):
                pieces += [html.escape(part[last:match.start()]), link(match)]
                last = match.end()
            return "".join(pieces + [html.escape(part[last:])])

        text = _outside_code(text.replace("\x00", ""), outside, keep_code)
        text = re.sub(r"\*([^*]+)\*", r"<em>\1</em>", text)
        return re.sub("\x00(\\d+)\x00", lambda m: codes[int(m.group(1))], text)

    def _html(self) -> str:
        out = ['<!doctype html>', '<html><head><meta charset="utf-8"><title>OMASGAN report</title>',
               "<style>body{font-family:sans-serif;max-width:60em;margin:auto}table{border-collapse:collapse}"
               "td,th{border:1px solid #ccc;padding:2px 6px;text-align:right}</style></head><body>"]
        for kind, item in self.blocks:
            if kind == "heading":
                out.append(f"<h{item[0]}>{self._inline(item[1])}</h{item[0]}>")
            elif kind == "text":
                out.append(f"<p>{self._inline(item)}</p>")
            elif kind == "figure":
                out.append(f'<p><img src="{html.escape(item[0])}" alt="{html.escape(item[1])}" '
                           f'width="{WIDTH}" height="{HEIGHT}"></p>')
            else:
                frame, caption = item
                head = "".join(f"<th>{html.escape(str(c))}</th>" for c in frame.columns)
                body = "".join("<tr>" + "".join(f"<td>{html.escape(self._cell(v, str(c)))}</td>"
                                                for v, c in zip(row, frame.columns)) + "</tr>"
                               for row in frame.itertuples(index=False))
                out.append(f"<p>{self._inline(caption)}</p><table><tr>{head}</tr>{body}</table>")
        return "\n".join(out + ["</body></html>"]) + "\n"
