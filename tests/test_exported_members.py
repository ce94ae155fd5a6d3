"""The public surface is exactly what ``sloguard.__all__`` lists (httpx's habit)."""

from __future__ import annotations

import sloguard


def test_all_names_exist_and_nothing_public_is_unlisted() -> None:
    for name in sloguard.__all__:
        assert hasattr(sloguard, name), name
    public = {
        name
        for name, value in vars(sloguard).items()
        if not name.startswith("_") and getattr(value, "__module__", "").startswith("sloguard")
    }
    assert public <= set(sloguard.__all__), public - set(sloguard.__all__)


def test_exported_members_say_they_belong_to_sloguard() -> None:
    for name in sloguard.__all__:
        value = getattr(sloguard, name)
        module = getattr(value, "__module__", "sloguard")
        assert module.startswith("sloguard"), (name, module)
