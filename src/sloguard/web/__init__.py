"""The web face of the SLO engine: a JSON API and Prometheus metrics (the dashboard later).

:func:`create_app` serves an :class:`~sloguard.slo._service.SLOService`'s latest
evaluations; with ``interval`` it also runs the service's evaluation loop for
the app's lifetime (what ``sloguard serve`` does).
"""

from sloguard.web.api import SLOCollector, create_app

__all__ = ["SLOCollector", "create_app"]
