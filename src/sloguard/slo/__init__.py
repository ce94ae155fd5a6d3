"""Service level objectives: specs, exact budget math, burn-rate alerting, gates.

* specs: :func:`load_slo_files` reads sloguard's native YAML, OpenSLO v1 and
  Sloth ``prometheus/v1`` into :class:`SLODefinition`; :class:`SLOSpec` is the
  minimal request selector the SLI recorder classifies with;
* math (``_budget``, ``_windows``): integer counts and ``Fraction``s only —
  SLI, budget, burn rate, time to exhaustion, the three OpenSLO budgeting
  methods, exclusions, calendar windows;
* alerting (``_alerting``): multi-window multi-burn-rate tiers scaled to the
  period, lint, the alert state machine, an O(1)-per-step history scan;
* :func:`evaluate` turns a definition and a bucket series into an
  :class:`SLOStatus` (what ``sloguard slo status`` and ``sloguard gate`` use).

Exceptions::

    SpecError        invalid spec files; ``problems`` lists file:line:field messages
"""

from sloguard.slo._alerting import (
    DEFAULT_TIERS,
    AlertPhase,
    AlertState,
    BurnRateTier,
    TierResult,
    evaluate_tiers,
    lint_tiers,
    step,
)
from sloguard.slo._budget import BudgetReport, budget_report, burn_rate, time_to_exhaustion
from sloguard.slo._engine import SLOStatus, definition_from_spec, evaluate
from sloguard.slo._history import scan_history
from sloguard.slo._model import SLODefinition, parse_duration, to_selector
from sloguard.slo._specload import SpecError, load_slo_files, validate_paths
from sloguard.slo._windows import CalendarWindow, MaintenanceWindow, RollingWindow
from sloguard.slo.spec import SLOKind, SLOSpec

__all__ = [
    "DEFAULT_TIERS",
    "AlertPhase",
    "AlertState",
    "BudgetReport",
    "BurnRateTier",
    "CalendarWindow",
    "MaintenanceWindow",
    "RollingWindow",
    "SLODefinition",
    "SLOKind",
    "SLOSpec",
    "SLOStatus",
    "SpecError",
    "TierResult",
    "budget_report",
    "burn_rate",
    "definition_from_spec",
    "evaluate",
    "evaluate_tiers",
    "lint_tiers",
    "load_slo_files",
    "parse_duration",
    "scan_history",
    "step",
    "time_to_exhaustion",
    "to_selector",
    "validate_paths",
]
