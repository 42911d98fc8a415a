"""``omasgan report`` and ``omasgan compare``: reading studies' results into pages and comparisons.

- :mod:`.cli`: ``omasgan report``'s arguments and handler (light, for the parser)
- :mod:`.sections`: the report's sections and ``write_report``
- :mod:`.tables`: which rows each section shows, and its tables
- :mod:`.figures`: the PNG figures
- :mod:`.page`: the page, rendered to Markdown or HTML
- :mod:`.alarm`: section 9, the shortcut alarm
- :mod:`.compare`: ``omasgan compare``: two configs or methods, paired by (class, seed)
"""
