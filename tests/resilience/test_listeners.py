"""The listener set both breaker backends share: stamping, order, failures dropped."""

from __future__ import annotations

import logging

import pytest

from sloguard.resilience._clock import ManualClock
from sloguard.resilience._listeners import ListenerSet
from sloguard.resilience._types import BreakerState, Transition

TRIP = Transition("dep", BreakerState.CLOSED, BreakerState.OPEN, "consecutive_failures", 0.0)


def test_emit_stamps_the_transition_with_the_wall_clock() -> None:
    clock = ManualClock(wall_start=1_700_000_123.0)
    listeners = ListenerSet(clock)
    seen: list[Transition] = []
    listeners.add(seen.append)
    listeners.emit(TRIP)
    assert seen == [Transition("dep", TRIP.old, TRIP.new, TRIP.reason, 1_700_000_123.0)]


def test_listeners_are_called_in_the_order_they_were_added() -> None:
    listeners = ListenerSet(ManualClock())
    calls: list[str] = []
    listeners.add(lambda t: calls.append("first"))
    listeners.add(lambda t: calls.append("second"))
    listeners.emit(TRIP)
    assert calls == ["first", "second"]


def test_emit_of_no_transition_calls_nobody() -> None:
    listeners = ListenerSet(ManualClock())
    seen: list[Transition] = []
    listeners.add(seen.append)
    listeners.emit(None)
    assert seen == []


def explode(transition: Transition) -> None:
    raise RuntimeError("listener bug")


def test_a_raising_listener_is_logged_and_the_next_one_still_hears(
    caplog: pytest.LogCaptureFixture,
) -> None:
    listeners = ListenerSet(ManualClock())
    seen: list[Transition] = []
    listeners.add(explode)
    listeners.add(seen.append)
    with caplog.at_level(logging.ERROR, logger="sloguard.resilience"):
        listeners.emit(TRIP)
    assert [t.new for t in seen] == [BreakerState.OPEN]
    assert "closed -> open" in caplog.records[0].getMessage()
    assert caplog.records[0].breaker == "dep"  # type: ignore[attr-defined]


def test_a_listener_added_while_emitting_hears_only_later_transitions() -> None:
    listeners = ListenerSet(ManualClock())
    late: list[Transition] = []
    listeners.add(lambda t: listeners.add(late.append))
    listeners.emit(TRIP)
    assert late == []
    listeners.emit(TRIP)
    assert len(late) == 1
