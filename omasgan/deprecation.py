"""Old names, options and module paths that still work for a while, and the release that removes them.

Each of them, when used, warns once per use with :func:`deprecated`: what is old, what to use instead,
and :data:`REMOVED_IN`, the release from which it is gone.
"""

from __future__ import annotations

import warnings

REMOVED_IN = "omasgan 0.3.0"
"""The release that removes every deprecated name, option and old module path."""


def deprecated(what: str, instead: str, *, stacklevel: int = 2) -> str:
    """Warn (``DeprecationWarning``, attributed ``stacklevel`` frames up from the caller) that ``what``
    works until :data:`REMOVED_IN` and that ``instead`` is what to do; return the message."""
    message = f"{what} is deprecated and will be removed in {REMOVED_IN}; {instead}"
    warnings.warn(message, DeprecationWarning, stacklevel=stacklevel + 1)
    return message
