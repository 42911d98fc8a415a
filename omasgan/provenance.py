"""Library versions and the code-version tag recorded with every checkpoint and result."""

from __future__ import annotations

import platform
import sys
from importlib import metadata

from . import __version__

CODE_VERSION = f"omasgan-{__version__}"
"""Bumped with every change to what a stage computes; part of every cache key and result row."""


def library_versions() -> dict[str, str]:
    """Versions of Python and of the libraries a result depends on."""
    versions = {"python": sys.version.split()[0], "omasgan": __version__, "platform": platform.platform()}
    for name in ("torch", "torchvision", "numpy", "scikit-learn"):
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = "absent"
    return versions
