"""Trace and span ids come from a private generator, not the global ``random``."""

from __future__ import annotations

import os
import random

from sloguard.telemetry.tracing import ForcedTraceIdGenerator


def test_generating_ids_leaves_the_applications_random_sequence_alone() -> None:
    random.seed(1234)
    expected = [random.random() for _ in range(3)]
    random.seed(1234)
    generator = ForcedTraceIdGenerator()
    for _ in range(10):
        generator.generate_trace_id()
        generator.generate_span_id()
    assert [random.random() for _ in range(3)] == expected


def test_a_forced_trace_id_is_used_once() -> None:
    generator = ForcedTraceIdGenerator()
    ForcedTraceIdGenerator.force_next(0xABC)
    assert generator.generate_trace_id() == 0xABC
    assert generator.generate_trace_id() != 0xABC


def test_a_forked_child_draws_different_ids_from_its_parent() -> None:
    generator = ForcedTraceIdGenerator()
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # child
        os.write(write, generator.generate_trace_id().to_bytes(16, "big"))
        os._exit(0)
    os.close(write)
    os.waitpid(pid, 0)
    child_id = int.from_bytes(os.read(read, 16), "big")
    os.close(read)
    assert child_id != generator.generate_trace_id()
