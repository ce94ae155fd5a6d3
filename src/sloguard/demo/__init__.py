"""``sloguard demo``: a sample shop, guarded by sloguard, under load, watched live.

:func:`run_demo` is the whole verb (the CLI only maps options onto it):
:mod:`.shop` is the sample service, :mod:`.load` the load generator,
:mod:`.red` reads RED figures out of the guard's registry, :mod:`.view`
draws them with the SLO counts read back from the store, :mod:`.settings`
adapts the user's settings, :mod:`.server` serves the guarded shop, and
:mod:`.run` wires them together in one event loop.
"""

import importlib.util

for _module in ("starlette", "uvicorn"):
    if importlib.util.find_spec(_module) is None:
        raise ImportError(f"sloguard demo needs {_module}: pip install 'sloguard[server]'")

from sloguard.demo.run import DemoResult, run_demo  # noqa: E402  (after the check)
from sloguard.demo.server import DemoError  # noqa: E402
from sloguard.demo.settings import DEMO_SLOS, demo_settings  # noqa: E402

__all__ = ["DEMO_SLOS", "DemoError", "DemoResult", "demo_settings", "run_demo"]
