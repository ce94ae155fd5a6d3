"""The shedding benchmark still runs, and every chain and simulated limiter does its work.

Speed is not asserted here (``make bench`` measures it); behaviour is: each
admission chain holds the stages its row names and admits and releases every
request of a round (no refusal, no leak), and in the overload simulation the
unlimited server queues past the SLO while every limiter refuses the excess,
low classes first, and keeps latency inside it.
"""

from __future__ import annotations

import io
from typing import Any

import pytest
from rich.console import Console

from benchmarks import shedding
from sloguard.resilience._adaptive import AIMDLimit, Gradient2Limit
from sloguard.resilience._priority import Priority

OPS = 400
# chain: (memory guard, static limit, adaptive algorithm)
STAGES: dict[str, tuple[bool, bool, type | None]] = {
    "empty": (False, False, None),
    "static": (False, True, None),
    "gradient2": (False, False, Gradient2Limit),
    "aimd": (False, False, AIMDLimit),
    "memory": (True, False, None),
    "full": (True, True, Gradient2Limit),
}
SIM_S = 5.0


@pytest.fixture(scope="module")
def quick() -> dict[str, Any]:
    """The quick run's code path, with fewer operations and one timed round."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(shedding, "QUICK_OPS", OPS)
        patch.setattr(shedding, "QUICK_ROUNDS", 1)
        return shedding.run(quick=True, progress=lambda _: None)


def _overloaded(variant: str) -> dict[str, Any]:
    return shedding.simulate(variant, load=1.5, duration_s=SIM_S)


@pytest.mark.parametrize("name", list(STAGES))
def test_each_chain_holds_the_stages_its_row_names(name: str) -> None:
    memory, static, algorithm = STAGES[name]
    shedder = shedding.CHAINS[name][1]()
    assert (shedder.memory is not None, shedder.concurrency is not None) == (memory, static)
    adaptive = shedder.adaptive
    assert (None if adaptive is None else type(adaptive.algorithm)) is algorithm


@pytest.mark.parametrize("name", list(STAGES))
def test_each_chain_admits_and_releases_every_request_of_a_round(name: str) -> None:
    shedder = shedding.CHAINS[name][1]()
    assert shedding._chain_round(shedder, OPS) > 0
    stats = shedder.stats()
    assert stats.admitted == dict.fromkeys(Priority, OPS // 4)
    assert (stats.in_flight, sum(stats.shed.values())) == (0, 0)
    if shedder.memory is not None:
        assert shedder.memory.status.usage_bytes > 0


def test_without_a_limit_overload_queues_past_the_slo_and_nothing_is_refused() -> None:
    result = _overloaded("none")
    assert result["refused_share"] == 0.0
    assert result["p99_ms"] > shedding.SLO_S * 1000
    assert result["goodput_per_s"] < 0.7 * result["capacity_per_s"]
    assert result["median_limit"] is None


@pytest.mark.parametrize("variant", ["static-64", "gradient2", "aimd"])
def test_each_limiter_refuses_the_excess_low_classes_first_and_keeps_the_slo(
    variant: str,
) -> None:
    result, unlimited = _overloaded(variant), _overloaded("none")
    shares = result["goodput_share_by_class"]
    assert result["refused_share"] > 0.2
    assert result["p99_ms"] < shedding.SLO_S * 1000
    assert result["goodput_per_s"] > 1.5 * unlimited["goodput_per_s"]
    assert shares["critical"] > 0.9 > 0.5 > shares["low"]
    assert (result["median_limit"] is None) is (variant == "static-64")


def test_a_simulation_repeats_exactly_for_its_seed() -> None:
    assert _overloaded("gradient2") == _overloaded("gradient2")
    assert shedding.simulate("aimd", load=1.5, duration_s=SIM_S, seed=8) != _overloaded("aimd")


def test_quick_run_reports_every_chain_and_simulated_case(quick: dict[str, Any]) -> None:
    rounds = quick["method"]["rounds"]
    chains = quick["admission"]["chains"]
    assert set(chains) == {*STAGES, "semaphore"}
    assert all(len(chain["rounds_ns"]) == rounds for chain in chains.values())
    cases = [(row["variant"], row["load"]) for row in quick["simulation"]]
    assert cases == [(v, load) for load in (0.8, 1.5) for v in shedding.SIM_VARIANTS]
    assert quick["goals"][0]["value_ns"] == chains["full"]["median_ns"]


def test_tables_print_every_chain_and_simulated_case(quick: dict[str, Any]) -> None:
    out = io.StringIO()
    for table in shedding.tables(quick):
        Console(file=out, width=250).print(table)
    text = out.getvalue()
    assert all(chain["label"] in text for chain in quick["admission"]["chains"].values())
    assert all(f"{v} @ 1.5x" in text for v in shedding.SIM_VARIANTS)
