"""How much memory this process's container uses, and how much it may use.

The memory guard needs a usage and a limit. Where they come from depends on
the machine, so this module finds out (``detect_memory_source``) and says
which it picked:

cgroup v2
    ``/proc/self/cgroup`` has a ``0::/path`` line; the unified hierarchy is
    mounted where ``/proc/self/mountinfo`` lists a ``cgroup2`` filesystem
    (usually ``/sys/fs/cgroup``). Usage is ``memory.current``; the limit is
    the smallest ``memory.max`` from the cgroup up to the mount point
    (``max`` means none), since a parent's limit binds its children.
cgroup v1
    ``/proc/self/cgroup`` has an ``N:memory:/path`` line (the controller may
    share a line with others: ``N:cpu,memory:/path``); the hierarchy is the
    ``cgroup`` mount whose super options include ``memory``. Usage is
    ``memory.usage_in_bytes``; the limit is the smaller of
    ``memory.limit_in_bytes`` and ``hierarchical_memory_limit`` from
    ``memory.stat``, where a value near 2**63 (page-rounded LONG_MAX) means
    unlimited.
process RSS
    neither: resident pages from ``/proc/self/statm`` times the page size
    (or, without ``/proc``, the peak RSS from ``getrusage``) against a
    configured limit.

Cgroup usage counts page cache, which the kernel reclaims before it kills
anything, so by default usage is the *working set*: usage minus inactive
file pages (what kubelet and ``docker stats`` show). Inside a container the
cgroup path in ``/proc/self/cgroup`` is relative to the mount's root (it may
also be ``/`` under a cgroup namespace); the path is resolved against the
mount's root field, and a path that does not exist falls back to the mount
point itself. Every reader takes a ``root`` so tests run on fixture trees.
"""

from __future__ import annotations

import os
import re
import resource
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Literal, Protocol, runtime_checkable

__all__ = [
    "CgroupV1Reader",
    "CgroupV2Reader",
    "MemoryReader",
    "MemoryReading",
    "ProcessRSSReader",
    "detect_memory_source",
]

#: cgroup v1 reports "no limit" as LONG_MAX rounded down to a page; anything
#: this large is no limit a machine has.
_V1_UNLIMITED = 1 << 60

_ESCAPE = re.compile(r"\\([0-7]{3})")

SourceKind = Literal["cgroup_v2", "cgroup_v1", "process_rss"]


@dataclass(frozen=True, slots=True)
class MemoryReading:
    usage_bytes: int
    #: None: the source has no limit (cgroup ``max``, or RSS without a configured limit)
    limit_bytes: int | None


@runtime_checkable
class MemoryReader(Protocol):
    """Where the memory guard gets its numbers; tests feed synthetic series."""

    @property
    def kind(self) -> str: ...

    def describe(self) -> str: ...

    def read(self) -> MemoryReading: ...


def _read_int(path: Path) -> int:
    return int(path.read_text().strip())


def _read_stat(path: Path) -> dict[str, int]:
    stats: dict[str, int] = {}
    try:
        text = path.read_text()
    except OSError:
        return stats
    for line in text.splitlines():
        key, _, value = line.partition(" ")
        if value.strip().isdigit():
            stats[key] = int(value)
    return stats


class CgroupV2Reader:
    """``memory.current`` / ``memory.max`` of one cgroup v2 directory."""

    __slots__ = ("_current", "_limit_files", "_stat", "_working_set", "directory")

    def __init__(self, directory: Path, *, mount: Path | None = None, working_set: bool = True):
        self.directory = directory
        self._current = directory / "memory.current"
        self._stat = directory / "memory.stat"
        self._working_set = working_set
        # the cgroup and its ancestors up to the mount point: each may set memory.max
        top = mount if mount is not None else directory
        chain = [directory]
        while chain[-1] != top and top in chain[-1].parents:
            chain.append(chain[-1].parent)
        self._limit_files = tuple(d / "memory.max" for d in chain)

    @property
    def kind(self) -> str:
        return "cgroup_v2"

    def describe(self) -> str:
        usage = "working set" if self._working_set else "memory.current"
        return f"cgroup v2 at {self.directory} ({usage} against memory.max)"

    def read(self) -> MemoryReading:
        usage = _read_int(self._current)
        if self._working_set:
            usage = max(0, usage - _read_stat(self._stat).get("inactive_file", 0))
        limit: int | None = None
        for path in self._limit_files:
            try:
                text = path.read_text().strip()
            except FileNotFoundError:
                continue
            if text != "max":
                value = int(text)
                limit = value if limit is None else min(limit, value)
        return MemoryReading(usage, limit)


class CgroupV1Reader:
    """``memory.usage_in_bytes`` / ``memory.limit_in_bytes`` of one v1 memory cgroup."""

    __slots__ = ("_limit", "_stat", "_usage", "_working_set", "directory")

    def __init__(self, directory: Path, *, working_set: bool = True) -> None:
        self.directory = directory
        self._usage = directory / "memory.usage_in_bytes"
        self._limit = directory / "memory.limit_in_bytes"
        self._stat = directory / "memory.stat"
        self._working_set = working_set

    @property
    def kind(self) -> str:
        return "cgroup_v1"

    def describe(self) -> str:
        usage = "working set" if self._working_set else "memory.usage_in_bytes"
        return f"cgroup v1 at {self.directory} ({usage} against memory.limit_in_bytes)"

    def read(self) -> MemoryReading:
        usage = _read_int(self._usage)
        stats = _read_stat(self._stat)
        if self._working_set:
            usage = max(0, usage - stats.get("total_inactive_file", 0))
        limits = [_read_int(self._limit), stats.get("hierarchical_memory_limit", _V1_UNLIMITED)]
        limit = min(limits)
        return MemoryReading(usage, None if limit >= _V1_UNLIMITED else limit)


class ProcessRSSReader:
    """This process's resident set size against ``limit_bytes`` (None: no limit)."""

    __slots__ = ("_page_size", "_statm", "limit_bytes")

    def __init__(self, limit_bytes: int | None = None, *, root: str | os.PathLike[str] = "/"):
        if limit_bytes is not None and limit_bytes < 1:
            raise ValueError("memory guard 'limit_bytes': must be at least 1")
        self.limit_bytes = limit_bytes
        self._statm = Path(root) / "proc" / "self" / "statm"
        self._page_size = os.sysconf("SC_PAGE_SIZE") if hasattr(os, "sysconf") else 4096

    @property
    def kind(self) -> str:
        return "process_rss"

    def describe(self) -> str:
        limit = "no limit" if self.limit_bytes is None else f"a limit of {self.limit_bytes} bytes"
        return f"process RSS ({self._statm} or getrusage) against {limit}"

    def read(self) -> MemoryReading:
        try:
            pages = int(self._statm.read_text().split()[1])
            usage = pages * self._page_size
        except (OSError, IndexError, ValueError):
            # peak, not current, RSS: the best this platform offers
            peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
            usage = peak if sys.platform == "darwin" else peak * 1024
        return MemoryReading(usage, self.limit_bytes)


@dataclass(frozen=True, slots=True)
class _Mount:
    root: str
    point: str
    fstype: str
    super_options: frozenset[str]


def _unescape(field: str) -> str:
    # mountinfo escapes space, tab, newline and backslash as \ooo
    return _ESCAPE.sub(lambda match: chr(int(match.group(1), 8)), field)


def _mounts(mountinfo: Path) -> list[_Mount]:
    try:
        lines = mountinfo.read_text().splitlines()
    except OSError:
        return []
    mounts = []
    for line in lines:
        head, sep, tail = line.partition(" - ")
        fields, after = head.split(), tail.split()
        if not sep or len(fields) < 5 or len(after) < 3:
            continue
        options = frozenset(after[2].split(","))
        mounts.append(_Mount(_unescape(fields[3]), _unescape(fields[4]), after[0], options))
    return mounts


def _cgroup_paths(proc_cgroup: Path) -> tuple[str | None, str | None]:
    """(the v2 path, the v1 memory controller's path) from ``/proc/self/cgroup``."""
    try:
        lines = proc_cgroup.read_text().splitlines()
    except OSError:
        return None, None
    unified = memory = None
    for line in lines:
        parts = line.split(":", 2)
        if len(parts) != 3:
            continue
        hierarchy, controllers, path = parts
        if hierarchy == "0" and controllers == "":
            unified = path
        elif "memory" in controllers.split(","):
            memory = path
    return unified, memory


def _cgroup_dir(root: Path, mount: _Mount, path: str) -> Path:
    point = root / mount.point.lstrip("/")
    relative = path
    if mount.root != "/" and (path == mount.root or path.startswith(mount.root + "/")):
        relative = path[len(mount.root) :]
    if relative.startswith("/.."):
        return point
    directory = point / relative.lstrip("/")
    return directory if directory.is_dir() else point


def detect_memory_source(
    root: str | os.PathLike[str] = "/",
    *,
    limit_bytes: int | None = None,
    working_set: bool = True,
    prefer: SourceKind | None = None,
) -> MemoryReader:
    """The reader for this machine: cgroup v2, else v1, else process RSS.

    ``limit_bytes`` is the RSS reader's limit (with a cgroup it is unused;
    the memory guard applies it as a cap on top of any source). ``prefer``
    forces one kind when it is available. ``reader.describe()`` says which
    was picked, for the start-up log and ``explain``.
    """
    base = Path(root)
    proc = base / "proc" / "self"
    unified, memory = _cgroup_paths(proc / "cgroup")
    mounts = _mounts(proc / "mountinfo")
    if unified is not None and prefer in (None, "cgroup_v2"):
        mount = next(
            (m for m in mounts if m.fstype == "cgroup2"),
            _Mount("/", "/sys/fs/cgroup", "cgroup2", frozenset()),
        )
        directory = _cgroup_dir(base, mount, unified)
        if (directory / "memory.current").is_file():
            point = base / mount.point.lstrip("/")
            return CgroupV2Reader(directory, mount=point, working_set=working_set)
    if memory is not None and prefer in (None, "cgroup_v1"):
        mount = next(
            (m for m in mounts if m.fstype == "cgroup" and "memory" in m.super_options),
            _Mount("/", "/sys/fs/cgroup/memory", "cgroup", frozenset({"memory"})),
        )
        directory = _cgroup_dir(base, mount, memory)
        if (directory / "memory.usage_in_bytes").is_file():
            return CgroupV1Reader(directory, working_set=working_set)
    return ProcessRSSReader(limit_bytes, root=base)
