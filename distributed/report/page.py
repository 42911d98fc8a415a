"""The page of ``omasgan report``: headings, text, tables and figures, rendered to Markdown or HTML.

Text uses a tiny markup that both renderers understand: `code`, *emphasis* and [link](target).  Every
table is also saved unrounded as ``tables/<name>.csv`` next to the page.

Text from the data (study names, trial ids, error messages, config values, paths) is never markup:

- the sections insert it with :func:`code` (shown as code) or :func:`plain` (shown as text), which mark
  it so the tiny markup is not read inside it (a backtick, a bracket or an asterisk in a name stays a
  character);
- every piece of text is escaped for the page it lands in: for HTML everything is escaped; for Markdown
  ``\\ ` * [ ] < | ~``, an ``_`` at a word's edge, a leading ``>`` and an ``&`` that starts an entity
  are backslash-escaped (so no raw HTML, no ``<scheme:...>`` autolink, no link or image, no entity),
  and ``http://``, ``https://``, ``ftp://`` and ``www.`` are broken (``https\\://``) so that
  GitHub-flavoured viewers do not make a link of them; code is a code span
  whose backtick fence is longer than any run inside it; table cells and data are put on one line,
  control and format characters (bidi overrides, zero-width) dropped;
- a link becomes a link only when its target is safe (:func:`safe_link_target`): a relative path inside
  the report folder, or an http(s) URL with a host; any other ``[text](target)`` stays plain text.

A Markdown viewer that links e-mail addresses by itself (GitHub-flavoured Markdown does) may still make
a ``mailto:`` link of an address in the data: no escape stops it short of changing the text.
"""

from __future__ import annotations

import html
import re
import unicodedata
from pathlib import Path

import numpy as np
import pandas as pd

from ..store.result_schema import safe_name
from .figures import HEIGHT, WIDTH

LINK = re.compile(r"\[([^\]]+)\]\(([^)]+)\)")
CODE = re.compile(r"`([^`]+)`")
EMPHASIS = re.compile(r"\*([^*]+)\*")
SAFE_SCHEMES = ("http", "https")
_CODE_OPEN, _CODE_CLOSE, _TEXT_OPEN, _TEXT_CLOSE = "\ue000", "\ue001", "\ue002", "\ue003"
_DATA = re.compile("([\ue000\ue002])([^\ue000-\ue01f]*)[\ue001\ue003]")
_SLOT = re.compile("\ue010(\\d+)\ue011")
_RESERVED = re.compile("[\ue000-\ue01f]")
_RELATIVE = re.compile(r"^(?!\.\.?(?:/|$))[\w\-.]+(?:/(?!\.\.?(?:/|$))[\w\-.]+)*$")
"""A relative path inside the report folder: segments of letters, digits, '_', '-', '.', none of them
'.' or '..', no leading '/'."""
_HTTP = re.compile(r"^https?://[A-Za-z0-9](?:[A-Za-z0-9\-.]*[A-Za-z0-9])?(?::\d{1,5})?(?:[/?#][A-Za-z0-9\-._~/?#=&%+,;:@!$*]*)?$",
                   re.IGNORECASE)
"""An http(s) URL with a plain host name (no user info, no backslash, no quote, no parenthesis)."""
_MD_SPECIAL = re.compile(r"([\\`*\[\]<|~])|^(>)|(&)(?=#|[A-Za-z0-9]+;)")
"""What Markdown would read in text: backslash, backtick, emphasis, brackets, '<' (raw HTML, autolinks),
'|' (table cells), '~' (strikethrough), a leading '>' (quote) and an '&' that starts an entity."""
_MD_AUTOLINK = re.compile(r"(?i)\b(https?|ftp)(:)(?=//)|\b(www)(\.)")
_MD_UNDERSCORE = re.compile(r"(?<![A-Za-z0-9])_|_(?![A-Za-z0-9])")


def _one_line(text: str) -> str:
    """``text`` on one line: line breaks, tabs and other control characters become spaces; format
    characters (bidi overrides, zero-width characters) and this module's markers are dropped."""
    out = []
    for ch in _RESERVED.sub("", text):
        category = unicodedata.category(ch)
        if category == "Cc" or ch in "\u2028\u2029":
            out.append(" ")
        elif category != "Cf":
            out.append(ch)
    return "".join(out)


def code(value: object) -> str:
    """``value`` (data) for a page's text, shown as code; never read as markup."""
    return f"{_CODE_OPEN}{_one_line(str(value))}{_CODE_CLOSE}"


def plain(value: object) -> str:
    """``value`` (data) for a page's text, shown as text; never read as markup."""
    return f"{_TEXT_OPEN}{_one_line(str(value))}{_TEXT_CLOSE}"


def safe_link_target(target: str) -> bool:
    """Whether ``target`` may be a link: a relative path inside the report folder (``figures/x.png``,
    ``tables/x.csv``, ``best-config.json``), or an http(s) URL with a host.  Everything else is refused:
    other schemes (``javascript:``, ``data:``, ``vbscript:``, also when whitespace, control characters
    or entities hide them), ``//host``, ``/\\host``, ``\\\\host``, absolute paths, ``..``."""
    if any(ch.isspace() or unicodedata.category(ch) in ("Cc", "Cf") for ch in target):
        return False
    return bool(_RELATIVE.match(target) or _HTTP.match(target))


def markdown_escape(text: str) -> str:
    """``text`` as literal Markdown text on one line (see the module docstring)."""
    text = _MD_SPECIAL.sub(lambda m: "\\" + next(g for g in m.groups() if g), _one_line(text))
    text = _MD_UNDERSCORE.sub(r"\\_", text)
    return _MD_AUTOLINK.sub(lambda m: f"{m.group(1)}\\{m.group(2)}" if m.group(1) else f"{m.group(3)}\\{m.group(4)}",
                            text)


def markdown_code(text: str) -> str:
    """``text`` as one Markdown code span: a fence of more backticks than any run inside it, padded
    with a space when the text starts or ends with a backtick or a space."""
    text = _one_line(text)
    fence = "`" * (max((len(run) for run in re.findall("`+", text)), default=0) + 1)
    pad = " " if text[:1] in ("`", " ") or text[-1:] in ("`", " ") else ""
    return f"{fence}{pad}{text}{pad}{fence}"


def _parse(text: str) -> tuple[str, list[tuple[str, str]]]:
    """``text`` with each marked piece of data replaced by a slot, and the pieces ("code" or "text",
    value) in slot order."""
    pieces: list[tuple[str, str]] = []

    def slot(match: re.Match) -> str:
        pieces.append(("code" if match.group(1) == _CODE_OPEN else "text", match.group(2)))
        return f"\ue010{len(pieces) - 1}\ue011"

    template = _DATA.sub(slot, text)
    template = re.sub("[\ue000-\ue00f\ue012-\ue01f]", "", template)  # a marker left unpaired
    return template, pieces


def _render_inline(text: str, escape, as_code, emphasis, link) -> str:
    """``text`` (tiny markup with marked data) rendered by the four functions of a format: ``escape``
    (literal text), ``as_code`` (literal text as code), ``emphasis`` (rendered inner text) and ``link``
    (rendered text, safe target)."""
    template, pieces = _parse(text)

    def raw(part: str) -> str:  # a piece of template with its slots filled by the data, as text
        return _SLOT.sub(lambda m: pieces[int(m.group(1))][1], part)

    def words(part: str) -> str:  # text with slots: data rendered as code or text, the rest escaped
        out, last = [], 0
        for match in _SLOT.finditer(part):
            kind, value = pieces[int(match.group(1))]
            out += [escape(part[last:match.start()]), as_code(value) if kind == "code" else escape(value)]
            last = match.end()
        return "".join(out + [escape(part[last:])])

    def marked(part: str) -> str:  # links and emphasis outside code spans
        out, last = [], 0
        for match in re.finditer(f"{LINK.pattern}|{EMPHASIS.pattern}", part):
            out.append(words(part[last:match.start()]))
            if match.group(2) is not None:
                target = match.group(2)
                out.append(link(words(match.group(1)), target) if safe_link_target(target) else words(match.group(0)))
            else:
                out.append(emphasis(words(match.group(3))))
            last = match.end()
        return "".join(out + [words(part[last:])])

    out, last = [], 0
    for match in CODE.finditer(template):
        out += [marked(template[last:match.start()]), as_code(raw(match.group(1)))]
        last = match.end()
    return "".join(out + [marked(template[last:])])


def markdown_text(text: str) -> str:
    """``text`` (tiny markup with marked data) for the Markdown page: escaped, one line."""
    return _render_inline(text, markdown_escape, markdown_code, lambda inner: f"*{inner}*",
                          lambda inner, target: f"[{inner}]({target})")


def html_text(text: str) -> str:
    """``text`` (tiny markup with marked data) for the HTML page: everything escaped."""
    def escape(part: str) -> str:
        return html.escape(_one_line(part), quote=True)

    return _render_inline(text, escape, lambda part: f"<code>{escape(part)}</code>",
                          lambda inner: f"<em>{inner}</em>",
                          lambda inner, target: f'<a href="{html.escape(target, quote=True)}">{inner}</a>')


def plain_text(text: str) -> str:
    """``text`` (tiny markup with marked data) as plain text: the markup's characters dropped, the
    data as it is (for an image's alt text)."""
    return _render_inline(text, _one_line, _one_line, lambda inner: inner, lambda inner, target: inner)


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
                out.append(f"{'#' * item[0]} {markdown_text(item[1])}")
            elif kind == "text":
                out.append(markdown_text(item))
            elif kind == "figure":
                if safe_link_target(item[0]):
                    out.append(f"![{markdown_escape(plain_text(item[1]))}]({item[0]})")
            else:
                frame, caption = item
                lines = [markdown_text(caption), "",
                         "| " + " | ".join(markdown_escape(str(c)) for c in frame.columns) + " |",
                         "|" + "---|" * len(frame.columns)]
                for row in frame.itertuples(index=False):
                    cells = (markdown_escape(self._cell(v, str(c))) for v, c in zip(row, frame.columns))
                    lines.append("| " + " | ".join(cells) + " |")
                out.append("\n".join(lines))
        return "\n\n".join(out) + "\n"

    @staticmethod
    def _inline(text: str) -> str:
        """``text`` as HTML: everything escaped; links (safe targets only) and emphasis outside code spans."""
        return html_text(text)

    def _html(self) -> str:
        out = ['<!doctype html>', '<html><head><meta charset="utf-8"><title>OMASGAN report</title>',
               "<style>body{font-family:sans-serif;max-width:60em;margin:auto}table{border-collapse:collapse}"
               "td,th{border:1px solid #ccc;padding:2px 6px;text-align:right}</style></head><body>"]

        def escape(value: object) -> str:
            return html.escape(_one_line(str(value)), quote=True)

        for kind, item in self.blocks:
            if kind == "heading":
                out.append(f"<h{item[0]}>{html_text(item[1])}</h{item[0]}>")
            elif kind == "text":
                out.append(f"<p>{html_text(item)}</p>")
            elif kind == "figure":
                if safe_link_target(item[0]):
                    out.append(f'<p><img src="{escape(item[0])}" alt="{escape(plain_text(item[1]))}" '
                               f'width="{WIDTH}" height="{HEIGHT}"></p>')
            else:
                frame, caption = item
                head = "".join(f"<th>{escape(c)}</th>" for c in frame.columns)
                body = "".join("<tr>" + "".join(f"<td>{escape(self._cell(v, str(c)))}</td>"
                                                for v, c in zip(row, frame.columns)) + "</tr>"
                               for row in frame.itertuples(index=False))
                out.append(f"<p>{html_text(caption)}</p><table><tr>{head}</tr>{body}</table>")
        return "\n".join(out + ["</body></html>"]) + "\n"
