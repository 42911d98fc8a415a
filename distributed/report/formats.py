"""The formats ``omasgan report`` writes its page in, and the page's file name in each.

A module of its own, importing nothing, so that the ``omasgan`` parser offers the formats as choices
without loading the report's pandas and plotting code."""

PAGE_NAMES = {"md": "report.md", "html": "report.html"}
"""Format -> the page's file name in the report folder."""
FORMATS = tuple(PAGE_NAMES)
"""The formats a report page is written in: md (Markdown) or html."""
