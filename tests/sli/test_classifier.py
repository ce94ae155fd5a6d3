"""Which SLOs count a request: route globs and methods, cached per (route, method)."""

from __future__ import annotations

import pytest

from sloguard.routing import UNMATCHED
from sloguard.sli import SLIClassifier
from sloguard.slo.spec import SLOKind, SLOSpec

SLOS = (
    SLOSpec(name="availability"),
    SLOSpec(
        name="api-latency",
        kind=SLOKind.LATENCY,
        threshold_ms=300,
        routes=("/api/**",),
        methods=("GET",),
    ),
    SLOSpec(name="checkout", routes=("/checkout", "/cart/*"), methods=("POST",)),
)


@pytest.mark.parametrize(
    ("route", "method", "expected"),
    [
        pytest.param(
            "/api/items/{id}", "GET", ("availability", "api-latency"), id="glob-and-method"
        ),
        pytest.param("/api", "GET", ("availability", "api-latency"), id="double-star-matches-root"),
        pytest.param("/api/items/{id}", "POST", ("availability",), id="method-excluded"),
        pytest.param("/checkout", "POST", ("availability", "checkout"), id="literal-route"),
        pytest.param("/checkout", "post", ("availability", "checkout"), id="method-any-case"),
        pytest.param("/cart/{cart_id}", "POST", ("availability", "checkout"), id="single-star"),
        pytest.param("/cart/{cart_id}/items", "POST", ("availability",), id="star-stops-at-slash"),
        pytest.param(UNMATCHED, "DELETE", ("availability",), id="star-counts-unmatched"),
    ],
)
def test_a_request_counts_for_the_slos_whose_routes_and_methods_select_it(
    route: str, method: str, expected: tuple[str, ...]
) -> None:
    assert SLIClassifier(SLOS).names(route, method) == expected


def test_a_route_no_slo_selects_counts_for_none() -> None:
    classifier = SLIClassifier(SLOS[1:])
    assert classifier.match("/health", "GET") == ()
    assert classifier.match("/health", "GET") == ()


def test_no_slos_select_nothing() -> None:
    assert SLIClassifier([]).match("/api/x", "GET") == ()


def test_the_cache_stays_bounded_and_answers_stay_right() -> None:
    classifier = SLIClassifier(SLOS, max_cached=2)
    routes = [f"/api/r{i}" for i in range(5)]
    first = [classifier.match(route, "GET") for route in routes]
    again = [classifier.match(route, "GET") for route in reversed(routes)]
    assert classifier.cached() == 2
    assert first == list(reversed(again)) == [(0, 1)] * 5


def test_answers_are_indices_into_the_slos_in_order() -> None:
    classifier = SLIClassifier(SLOS)
    assert classifier.match("/cart/{id}", "POST") == (0, 2)
    assert classifier.slos == SLOS
