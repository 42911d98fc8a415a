"""The study subcommands of ``omasgan`` (registered through the ``omasgan.commands`` entry point)."""

from __future__ import annotations

import argparse


def register(sub: argparse._SubParsersAction) -> None:
    """Add every study subcommand this package has to the ``omasgan`` parser."""
    from . import studies_cli

    studies_cli.add_commands(sub)
