"""The explain report: ordered, de-duplicated entries rendered as text and JSON."""

from __future__ import annotations

import json
import os

from sloguard.inject._explain import Entry, Outcome, Report


def filled() -> Report:
    report = Report()
    report.instrumented("starlette.applications.Starlette", "observe middleware")
    report.skipped("flask", "imported before the bootstrap ran")
    report.failed("django", "hook raised RuntimeError: boom")
    return report


def test_entries_keep_their_order_and_outcome() -> None:
    assert filled().entries() == (
        Entry(Outcome.INSTRUMENTED, "starlette.applications.Starlette", "observe middleware"),
        Entry(Outcome.SKIPPED, "flask", "imported before the bootstrap ran"),
        Entry(Outcome.FAILED, "django", "hook raised RuntimeError: boom"),
    )


def test_an_exact_repeat_is_recorded_once() -> None:
    report = Report()
    report.skipped("httpx", "switched off")
    report.skipped("httpx", "switched off")
    report.skipped("httpx", "another reason")
    assert [entry.detail for entry in report.entries()] == ["switched off", "another reason"]


def test_text_groups_entries_by_outcome_and_lists_pending_hooks() -> None:
    text = filled().render_text(pending=("aiohttp.web",))
    assert f"pid {os.getpid()}" in text
    assert "instrumented (1):" in text
    assert "flask  imported before the bootstrap ran" in text
    assert "failed (1):" in text
    assert text.rstrip().endswith("aiohttp.web")


def test_json_carries_pid_entries_and_pending() -> None:
    data = json.loads(filled().to_json(pending=("requests",)))
    assert data["pid"] == os.getpid()
    assert data["entries"][1] == {
        "outcome": "skipped",
        "target": "flask",
        "detail": "imported before the bootstrap ran",
    }
    assert data["pending"] == ["requests"]


def test_clear_empties_the_report() -> None:
    report = filled()
    report.clear()
    assert report.entries() == ()
