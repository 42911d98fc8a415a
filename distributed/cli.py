"""The study subcommands of ``omasgan`` (registered through the ``omasgan.commands`` entry point)."""

from __future__ import annotations

import argparse


def register(sub: argparse._SubParsersAction) -> None:
    """Add every study subcommand this package has to the ``omasgan`` parser."""
    from .commands.cache import add_cache_parser
    from .commands.doctor import add_doctor_parser
    from .commands.reproduce import add_reproduce_parser
    from .commands.studies import add_commands

    add_commands(sub)
    add_reproduce_parser(sub)
    add_doctor_parser(sub)
    add_cache_parser(sub)
