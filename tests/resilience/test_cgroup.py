"""Memory readers against fixture trees in the kernel's real formats (``fixtures/``)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from sloguard.resilience._cgroup import (
    CgroupV1Reader,
    CgroupV2Reader,
    MemoryReader,
    MemoryReading,
    ProcessRSSReader,
    detect_memory_source,
)

FIXTURES = Path(__file__).parent / "fixtures"
MiB = 1 << 20


@pytest.mark.parametrize(
    ("tree", "kind", "directory"),
    [
        pytest.param("cgroup_v2/container", "cgroup_v2", "sys/fs/cgroup", id="v2-container"),
        pytest.param(
            "cgroup_v2/systemd_service",
            "cgroup_v2",
            "sys/fs/cgroup/system.slice/app.service",
            id="v2-host-service",
        ),
        pytest.param(
            "cgroup_v1/docker", "cgroup_v1", "sys/fs/cgroup/memory", id="v1-docker-mount-root"
        ),
        pytest.param(
            "cgroup_v1/hybrid_unlimited",
            "cgroup_v1",
            "sys/fs/cgroup/memory/jobs/3c85254b88dfc9ac62b9864f97971bf2",
            id="v1-beside-an-empty-unified-tree",
        ),
    ],
)
def test_detect_picks_the_cgroup_that_holds_the_memory_controller(
    tree: str, kind: str, directory: str
) -> None:
    reader = detect_memory_source(FIXTURES / tree)
    assert isinstance(reader, CgroupV2Reader | CgroupV1Reader)
    assert reader.kind == kind
    assert reader.directory == FIXTURES / tree / directory
    assert str(reader.directory) in reader.describe()


def test_detect_falls_back_to_process_rss_with_the_configured_limit() -> None:
    reader = detect_memory_source(FIXTURES / "no_cgroup", limit_bytes=512 * MiB)
    assert isinstance(reader, ProcessRSSReader)
    assert reader.read() == MemoryReading(25600 * os.sysconf("SC_PAGE_SIZE"), 512 * MiB)
    assert "limit of 536870912 bytes" in reader.describe()


def test_v2_working_set_is_current_minus_inactive_file() -> None:
    reading = detect_memory_source(FIXTURES / "cgroup_v2/container").read()
    assert reading == MemoryReading(367001600 - 52428800, 512 * MiB)


def test_v2_raw_usage_is_memory_current() -> None:
    reader = detect_memory_source(FIXTURES / "cgroup_v2/container", working_set=False)
    assert reader.read().usage_bytes == 367001600


def test_v2_limit_comes_from_the_nearest_limited_ancestor() -> None:
    reading = detect_memory_source(FIXTURES / "cgroup_v2/systemd_service").read()
    assert reading == MemoryReading(805306368 - 100663296, 1024 * MiB)


def test_v2_max_everywhere_means_no_limit() -> None:
    reading = detect_memory_source(FIXTURES / "cgroup_v2/unlimited").read()
    assert reading.limit_bytes is None


def test_v1_reads_usage_and_limit_and_subtracts_inactive_file() -> None:
    reading = detect_memory_source(FIXTURES / "cgroup_v1/docker").read()
    assert reading == MemoryReading(230686720 - 33554432, 256 * MiB)


def test_v1_page_rounded_long_max_means_no_limit() -> None:
    reading = detect_memory_source(FIXTURES / "cgroup_v1/hybrid_unlimited").read()
    assert reading.limit_bytes is None
    assert reading.usage_bytes > 0


def test_v1_hierarchical_limit_binds_a_cgroup_without_its_own(tmp_path: Path) -> None:
    (tmp_path / "memory.usage_in_bytes").write_text("1000\n")
    (tmp_path / "memory.limit_in_bytes").write_text("9223372036854771712\n")
    (tmp_path / "memory.stat").write_text("cache 0\nhierarchical_memory_limit 4096\n")
    assert CgroupV1Reader(tmp_path).read() == MemoryReading(1000, 4096)


def test_prefer_forces_a_kind_even_where_a_cgroup_is_found() -> None:
    reader = detect_memory_source(FIXTURES / "cgroup_v1/docker", prefer="process_rss")
    assert reader.kind == "process_rss"


def test_mount_points_with_escaped_spaces_are_resolved(tmp_path: Path) -> None:
    proc = tmp_path / "proc/self"
    proc.mkdir(parents=True)
    (proc / "cgroup").write_text("0::/\n")
    (proc / "mountinfo").write_text(
        "30 23 0:26 / /cgroup\\040root rw,relatime shared:9 - cgroup2 cgroup2 rw,nsdelegate\n"
    )
    (tmp_path / "cgroup root").mkdir()
    (tmp_path / "cgroup root/memory.current").write_text("10\n")
    (tmp_path / "cgroup root/memory.max").write_text("100\n")
    assert detect_memory_source(tmp_path).read() == MemoryReading(10, 100)


def test_a_cgroup_path_outside_the_namespace_falls_back_to_the_mount_point(
    tmp_path: Path,
) -> None:
    proc = tmp_path / "proc/self"
    proc.mkdir(parents=True)
    (proc / "cgroup").write_text("0::/../../system.slice/other.scope\n")
    (proc / "mountinfo").write_text(
        "30 23 0:26 / /sys/fs/cgroup rw - cgroup2 cgroup2 rw,nsdelegate\n"
    )
    cgroup = tmp_path / "sys/fs/cgroup"
    cgroup.mkdir(parents=True)
    (cgroup / "memory.current").write_text("7\n")
    assert detect_memory_source(tmp_path).read() == MemoryReading(7, None)


def test_a_vanished_cgroup_file_raises_for_the_guard_to_handle(tmp_path: Path) -> None:
    reader = CgroupV2Reader(tmp_path)
    with pytest.raises(FileNotFoundError):
        reader.read()


def test_rss_without_proc_uses_getrusage(tmp_path: Path) -> None:
    reading = ProcessRSSReader(root=tmp_path).read()
    assert reading.usage_bytes > 1 * MiB
    assert reading.limit_bytes is None


@pytest.mark.parametrize(
    "reader",
    [
        pytest.param(CgroupV2Reader(FIXTURES / "cgroup_v2/container/sys/fs/cgroup"), id="v2"),
        pytest.param(CgroupV1Reader(FIXTURES / "cgroup_v1/docker/sys/fs/cgroup/memory"), id="v1"),
        pytest.param(ProcessRSSReader(1), id="rss"),
    ],
)
def test_every_reader_is_a_memory_reader(reader: object) -> None:
    assert isinstance(reader, MemoryReader)


def test_this_machine_is_detected_and_readable() -> None:
    reader = detect_memory_source()
    assert reader.read().usage_bytes > 0
