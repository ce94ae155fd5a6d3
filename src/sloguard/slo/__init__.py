"""Service level objectives: specs, budget math, alerting, gates.

This first cut holds the minimal SLO selector the SLI recorder classifies
requests against; the SLO engine issue grows the rest of the package.
"""

from sloguard.slo.spec import SLOKind, SLOSpec

__all__ = ["SLOKind", "SLOSpec"]
