"""Trace selectors: ``module_glob:qualname_glob``, parsed once, with errors that name them."""

from __future__ import annotations

import pytest

from sloguard.inject._selectors import SelectorError, SelectorSet, parse_selector


@pytest.mark.parametrize(
    ("selector", "module", "qualname", "expected"),
    [
        pytest.param(
            "myapp.services.*:*", "myapp.services.users", "Repo.get", True, id="star-segment"
        ),
        pytest.param("myapp.services.*:*", "myapp.services", "f", False, id="star-needs-a-segment"),
        pytest.param("myapp.services.*:*", "myapp.services.a.b", "f", False, id="star-one-level"),
        pytest.param("myapp.**:*", "myapp", "f", True, id="double-star-zero-segments"),
        pytest.param("myapp.**:*", "myapp.a.b.c", "f", True, id="double-star-many-segments"),
        pytest.param("**.db:*", "x.y.db", "f", True, id="leading-double-star"),
        pytest.param("a.**.b:*", "a.b", "f", True, id="middle-double-star-zero"),
        pytest.param("a.**.b:*", "ab", "f", False, id="dots-are-literal"),
        pytest.param("myapp.db:Repo.*", "myapp.db", "Repo.get", True, id="methods"),
        pytest.param("myapp.db:Repo.*", "myapp.db", "Repo", False, id="not-the-class-itself"),
        pytest.param("myapp.db:Repo.*", "myapp.db", "Repo.Inner.get", False, id="one-level"),
        pytest.param("myapp.db:Repo.**", "myapp.db", "Repo.Inner.get", True, id="any-depth"),
        pytest.param("m:*", "m", "outer.<locals>.inner", False, id="star-skips-nested-defs"),
        pytest.param("m:**", "m", "outer.<locals>.inner", True, id="double-star-takes-them"),
        pytest.param("m:outer.<locals>.*", "m", "outer.<locals>.inner", True, id="named-locals"),
        pytest.param("m:handle_?", "m", "handle_a", True, id="question-mark"),
        pytest.param("m:handle_*", "m", "Handler.handle_a", False, id="star-stays-in-segment"),
    ],
)
def test_selector_matches(selector: str, module: str, qualname: str, expected: bool) -> None:
    assert parse_selector(selector).matches(module, qualname) is expected


@pytest.mark.parametrize(
    ("selector", "reason"),
    [
        pytest.param("myapp.db", "exactly one ':'", id="no-colon"),
        pytest.param("a:b:c", "exactly one ':'", id="two-colons"),
        pytest.param(":f", "module part is empty", id="empty-module"),
        pytest.param("m:", "qualname part is empty", id="empty-qualname"),
        pytest.param("a..b:f", "empty segment", id="empty-segment"),
        pytest.param("a.b**:f", "whole segment", id="double-star-inside-segment"),
        pytest.param("my-app:f", "not a Python name", id="not-a-name"),
    ],
)
def test_bad_selectors_raise_an_error_naming_them(selector: str, reason: str) -> None:
    with pytest.raises(SelectorError, match=reason) as caught:
        parse_selector(selector)
    assert repr(selector) in str(caught.value)
    assert caught.value.selector == selector


def test_parse_strips_whitespace_and_keeps_the_parts() -> None:
    selector = parse_selector("  myapp.db : Repo.get ")
    assert (selector.text, selector.module_glob, selector.qualname_glob) == (
        "myapp.db : Repo.get",
        "myapp.db",
        "Repo.get",
    )
    assert selector.is_exact


def test_a_glob_is_not_an_exact_target() -> None:
    assert not parse_selector("myapp.db:Repo.*").is_exact
    assert parse_selector("myapp.db:Repo.get").is_exact


def test_selector_set_prefilters_module_names() -> None:
    selectors = SelectorSet(["myapp.services.*:*", "myapp.db:Repo.*"])
    assert selectors.module_may_match("myapp.db")
    assert selectors.module_may_match("myapp.services.users")
    assert not selectors.module_may_match("myapp")
    assert not selectors.module_may_match("json")


def test_selector_set_matches_through_the_module_selectors_only() -> None:
    selectors = SelectorSet(["myapp.services.*:*", "myapp.db:Repo.*"])
    assert selectors.matches("myapp.db", "Repo.get")
    assert not selectors.matches("myapp.db", "helper")
    assert selectors.matches("myapp.services.users", "helper")
    assert [s.text for s in selectors.for_module("myapp.db")] == ["myapp.db:Repo.*"]


def test_an_empty_selector_set_matches_nothing() -> None:
    selectors = SelectorSet([])
    assert not selectors
    assert not selectors.module_may_match("anything")


def test_settings_reject_a_bad_selector_by_name() -> None:
    from pydantic import ValidationError

    from sloguard.settings import Settings

    with pytest.raises(ValidationError, match="invalid trace selector 'myapp.db'"):
        Settings(inject={"trace": {"selectors": ["myapp.db"]}})
