"""The ``sloguard`` command: one typer app, one module per verb group.

Exit codes: 0 fine, 1 a check failed (a gate said no), 2 usage or input error.
"""

from sloguard.cli.app import app, main

__all__ = ["app", "main"]
