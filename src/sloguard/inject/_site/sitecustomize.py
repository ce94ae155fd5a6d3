"""sloguard's ``sitecustomize``: bootstrap sloguard, then run the user's own ``sitecustomize``.

``sloguard run`` puts this directory first on ``PYTHONPATH``, so Python's
``site`` module imports this file while every interpreter of the command
starts (the server, its spawned workers, a reload child, ``python -m pkg``).
It is not part of the sloguard package; it only calls into it.

The ``sitecustomize`` this one shadows -- the next one on ``sys.path`` after
this directory, from the user's ``PYTHONPATH``, the virtualenv or the
distribution -- still runs, after the bootstrap (so whatever it imports is
already seen by the post-import hooks), as the module ``sitecustomize``; an
error in it reaches ``site`` exactly as it would without sloguard.
``usercustomize`` is left to ``site``: this directory has none.

An interpreter that cannot import sloguard (another Python started by the
application) runs untouched; it says so on stderr only with ``--explain``.
"""

from __future__ import annotations

import importlib.machinery
import importlib.util
import os
import sys


def _bootstrap() -> None:
    try:
        from sloguard.inject._bootstrap import bootstrap
    except Exception as exc:
        if os.environ.get("SLOGUARD_INJECT__EXPLAIN", "").lower() in {"1", "true", "yes", "on"}:
            print(
                f"sloguard: not importable by {sys.executable}, running uninstrumented: {exc}",
                file=sys.stderr,
            )
        return
    bootstrap()


def _chain() -> None:
    here = os.path.realpath(os.path.dirname(__file__))
    rest = [entry for entry in sys.path if os.path.realpath(entry or os.curdir) != here]
    spec = importlib.machinery.PathFinder.find_spec("sitecustomize", rest)
    if spec is None or spec.loader is None:
        return
    module = importlib.util.module_from_spec(spec)
    # Whoever imports ``sitecustomize`` later gets the user's module, not this one.
    sys.modules["sitecustomize"] = module
    spec.loader.exec_module(module)


_bootstrap()
_chain()
