"""What every subcommand's parser shares: its registration under ``omasgan`` with the handler it runs."""

from __future__ import annotations

import argparse
from typing import Any, Callable


def add_subcommand(sub: argparse._SubParsersAction, name: str, handler: Callable[[argparse.Namespace], int],
                   **parser_options: Any) -> argparse.ArgumentParser:
    """Add ``omasgan NAME`` (``parser_options``: help, description, ...) whose parsed arguments run
    ``handler(args)``; returns its parser, for its arguments."""
    parser = sub.add_parser(name, **parser_options)
    parser.set_defaults(handler=handler)
    return parser
