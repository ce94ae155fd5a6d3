"""What the demo's protection did, read from the guard's registry like RED.

Breaker states and refusals by code: the breakers' one-hot state gauge and
rejection counter, the shedder's refusals, the rate limits' ``limited``
decisions. Read at each redraw, so the view shows a breaker opening when a
run's ``--error-rate`` is high and closing again after its probes succeed.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from prometheus_client import CollectorRegistry

__all__ = ["ProtectionSnapshot", "read_protection"]


@dataclass(frozen=True, slots=True)
class ProtectionSnapshot:
    #: breaker name -> its state now (closed, open, half_open)
    breakers: dict[str, str] = field(default_factory=dict)
    #: error code -> requests refused with it so far
    refused: dict[str, int] = field(default_factory=dict)

    def describe(self) -> str:
        if not self.breakers and not self.refused:
            return "protection: off"
        parts = [f"breaker {name}: {state}" for name, state in sorted(self.breakers.items())]
        refused = ", ".join(f"{code} {count}" for code, count in sorted(self.refused.items()))
        parts.append(f"refused: {refused or 'none'}")
        return "protection | " + " | ".join(parts)


def read_protection(registry: CollectorRegistry) -> ProtectionSnapshot:
    breakers: dict[str, str] = {}
    refused: dict[str, int] = {}

    def add(code: str, value: float) -> None:
        if value:
            refused[code] = refused.get(code, 0) + round(value)

    for metric in registry.collect():
        for sample in metric.samples:
            labels = sample.labels
            if sample.name == "sloguard_breaker_state" and sample.value == 1:
                breakers[labels["breaker"]] = labels["state"]
            elif sample.name == "sloguard_breaker_rejected_total":
                add("BRK_503", sample.value)
            elif sample.name == "sloguard_shed_rejected_total":
                add(labels["code"], sample.value)
            elif sample.name == "sloguard_rate_limit_decisions_total" and labels.get("result") in {
                "limited",
                "unavailable",
            }:
                add("RATE_429" if labels["result"] == "limited" else "RATE_503", sample.value)
    return ProtectionSnapshot(breakers, refused)
