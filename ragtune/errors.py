"""The user-facing error: a message that says what to change.

Stages raise RagtuneError (or a subclass) for bad input; `ragtune.cli.main` prints it as
`error: ...` with exit status 2 and no traceback. The server maps it to a 4xx.
"""

from __future__ import annotations


class RagtuneError(Exception):
    """Raise with a message that names the bad value and the fix."""
