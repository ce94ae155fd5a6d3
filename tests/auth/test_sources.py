import logging
import os
import time
from pathlib import Path

import pytest

from sloguard.auth._errors import PolicyError
from sloguard.auth._principal import Principal
from sloguard.auth._sources import FilePolicySource, PolicyHolder, backoff_delay

GRANTS_X = "version: 1\nroles:\n  r: {permissions: ['GET /x']}\n"
GRANTS_Y = "version: 1\nroles:\n  r: {permissions: ['GET /y']}\n"
BROKEN = "version: 1\nroles:\n  r: {inherits: [nobody]}\n"
R = Principal("p", frozenset({"r"}))


def allows(holder: PolicyHolder, route: str) -> bool:
    return holder.decide(R, "GET", route, route, tenant=None).allowed


def test_an_empty_holder_denies_everything_until_a_policy_loads() -> None:
    holder = PolicyHolder()
    assert not holder.loaded
    assert holder.decide(None, "GET", "/x", "/x", tenant=None).code == "AUTH_101"
    assert holder.load(GRANTS_X, source="test")
    assert (holder.loaded, holder.reloads_ok, allows(holder, "/x")) == (True, 1, True)


def test_an_invalid_policy_is_rejected_logged_and_counted_and_the_old_one_stays(
    caplog: pytest.LogCaptureFixture,
) -> None:
    holder = PolicyHolder()
    holder.load(GRANTS_X, source="test")
    before = holder.snapshot
    with caplog.at_level(logging.ERROR, logger="sloguard.auth"):
        assert not holder.load(BROKEN, source="policy.yaml")
    assert holder.snapshot is before
    assert (holder.reloads_ok, holder.reloads_failed) == (1, 1)
    assert holder.last_error is not None
    assert holder.last_error.problems[0][:2] == ("policy.yaml:3", "roles.r.inherits.0")
    assert "policy.yaml:3: roles.r.inherits.0: unknown role 'nobody'" in caplog.text


def test_a_later_good_policy_clears_the_last_error() -> None:
    holder = PolicyHolder()
    holder.load(BROKEN, source="test")
    holder.load(GRANTS_Y, source="test")
    assert holder.last_error is None
    assert allows(holder, "/y")


def test_reloading_the_same_content_changes_nothing() -> None:
    holder = PolicyHolder()
    holder.load(GRANTS_X, source="test")
    snapshot = holder.snapshot
    assert not holder.load(GRANTS_X + "# a comment\n", source="test")
    assert holder.snapshot is snapshot
    assert holder.reloads_ok == 1


def test_a_new_snapshot_takes_force_for_the_next_decision() -> None:
    holder = PolicyHolder()
    holder.load(GRANTS_X, source="test")
    assert allows(holder, "/x")
    holder.load(GRANTS_Y, source="test")
    assert (allows(holder, "/x"), allows(holder, "/y")) == (False, True)


@pytest.fixture
def policy_file(tmp_path: Path) -> Path:
    path = tmp_path / "policy.yaml"
    path.write_text(GRANTS_X)
    return path


class FakeClock:
    def __init__(self) -> None:
        self.now = time.time() + 3600.0  # long after any mtime: nothing looks racy

    def __call__(self) -> float:
        return self.now


def test_check_now_loads_the_file_and_then_only_changes(policy_file: Path) -> None:
    holder = PolicyHolder()
    source = FilePolicySource(policy_file, holder, clock=FakeClock())
    assert source.check_now()
    assert not source.check_now()
    policy_file.write_text(GRANTS_Y + "\n")
    assert source.check_now()
    assert allows(holder, "/y")
    assert holder.reloads_ok == 2


def test_a_broken_edit_is_counted_once_and_a_fix_takes_force(policy_file: Path) -> None:
    holder = PolicyHolder()
    source = FilePolicySource(policy_file, holder, clock=FakeClock())
    source.check_now()
    policy_file.write_text(BROKEN)
    for _ in range(3):
        assert not source.check_now()
    assert (holder.reloads_failed, allows(holder, "/x")) == (1, True)
    policy_file.write_text(GRANTS_Y)
    assert source.check_now()
    assert holder.last_error is None


def test_a_deleted_file_keeps_the_policy_and_is_reported_once(policy_file: Path) -> None:
    holder = PolicyHolder()
    source = FilePolicySource(policy_file, holder, clock=FakeClock())
    source.check_now()
    policy_file.unlink()
    assert not source.check_now()
    assert not source.check_now()
    assert holder.reloads_failed == 1
    assert holder.last_error is not None
    assert holder.last_error.problems == [
        (str(policy_file), "-", "cannot read: No such file or directory")
    ]
    assert allows(holder, "/x")


def test_an_edit_hidden_by_an_unchanged_stat_is_seen_while_the_file_is_fresh(
    policy_file: Path,
) -> None:
    clock = FakeClock()
    holder = PolicyHolder()
    source = FilePolicySource(policy_file, holder, clock=clock)
    clock.now = policy_file.stat().st_mtime + 0.5  # read right after the write: racy
    source.check_now()
    stat = policy_file.stat()
    policy_file.write_text(GRANTS_Y)  # same size, and the old timestamps put back
    os.utime(policy_file, ns=(stat.st_atime_ns, stat.st_mtime_ns))
    assert source.check_now()
    assert allows(holder, "/y")


def test_start_refuses_a_broken_file_when_no_policy_is_loaded(policy_file: Path) -> None:
    policy_file.write_text(BROKEN)
    source = FilePolicySource(policy_file, PolicyHolder())
    with pytest.raises(PolicyError, match="unknown role 'nobody'"):
        source.start()
    source.stop()


def test_the_watcher_thread_reloads_a_changed_file(policy_file: Path) -> None:
    holder = PolicyHolder()
    source = FilePolicySource(policy_file, holder, poll_interval_s=0.01)
    source.start()
    try:
        policy_file.write_text(GRANTS_Y + "\n")
        deadline = time.monotonic() + 5.0
        while not allows(holder, "/y") and time.monotonic() < deadline:
            time.sleep(0.01)
        assert allows(holder, "/y")
    finally:
        source.stop()


@pytest.mark.parametrize(
    ("attempt", "rand", "expected"),
    [
        pytest.param(0, 0.0, 0.05, id="first-retry-least"),
        pytest.param(0, 1.0, 0.1, id="first-retry-most"),
        pytest.param(3, 0.5, 0.6, id="doubles-each-attempt"),
        pytest.param(10, 0.0, 2.5, id="capped-least"),
        pytest.param(10_000, 1.0, 5.0, id="capped-most-without-overflow"),
    ],
)
def test_backoff_doubles_with_jitter_up_to_the_cap(
    attempt: int, rand: float, expected: float
) -> None:
    delay = backoff_delay(attempt, initial_s=0.1, max_s=5.0, rand=lambda: rand)
    assert delay == pytest.approx(expected)
