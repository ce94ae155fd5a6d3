"""Which exceptions and statuses count as failures."""

from __future__ import annotations

import asyncio

import httpx
import pytest

from sloguard.resilience._classify import FailureClassifier
from sloguard.resilience._types import Outcome

S, F, IGN = Outcome.SUCCESS, Outcome.FAILURE, Outcome.IGNORED


class BusinessError(Exception):
    pass


class Rejected(BusinessError):
    pass


@pytest.mark.parametrize(
    ("classifier", "exc", "outcome"),
    [
        pytest.param(FailureClassifier(), RuntimeError("x"), F, id="any-exception-fails"),
        pytest.param(FailureClassifier(), asyncio.CancelledError(), IGN, id="cancelled-ignored"),
        pytest.param(
            FailureClassifier(ignore=()),
            asyncio.CancelledError(),
            IGN,
            id="cancelled-always-ignored",
        ),
        pytest.param(FailureClassifier(), KeyboardInterrupt(), IGN, id="base-exception-ignored"),
        pytest.param(FailureClassifier(), TimeoutError(), F, id="timeout"),
        pytest.param(FailureClassifier(), httpx.ReadTimeout("slow"), F, id="httpx-timeout"),
        pytest.param(
            FailureClassifier(exclude=(BusinessError,)),
            Rejected(),
            S,
            id="excluded-subclass-succeeds",
        ),
        pytest.param(
            FailureClassifier(ignore=(BusinessError,)), Rejected(), IGN, id="ignored-subclass"
        ),
        pytest.param(
            FailureClassifier(failures=(OSError,)), ValueError(), S, id="not-in-failures-succeeds"
        ),
        pytest.param(
            FailureClassifier(failures=(OSError,)), ConnectionError(), F, id="in-failures"
        ),
        pytest.param(
            FailureClassifier(failures=(OSError,)),
            httpx.ConnectTimeout("t"),
            F,
            id="timeouts-always-in-failures",
        ),
        pytest.param(
            FailureClassifier(exclude=(TimeoutError,)),
            TimeoutError(),
            S,
            id="explicit-exclude-wins",
        ),
    ],
)
def test_classify_exception(
    classifier: FailureClassifier, exc: BaseException, outcome: Outcome
) -> None:
    assert classifier.classify_exception(exc) is outcome
    assert classifier.classify_exception(exc) is outcome  # cached answer agrees


@pytest.mark.parametrize(
    ("statuses", "status", "outcome"),
    [
        pytest.param(None, 500, F, id="500"),
        pytest.param(None, 503, F, id="503"),
        pytest.param(None, 429, S, id="429-default-success"),
        pytest.param(None, 404, S, id="404"),
        pytest.param({429, 500}, 429, F, id="429-configured"),
        pytest.param({429, 500}, 502, S, id="502-not-configured"),
    ],
)
def test_classify_status(statuses: set[int] | None, status: int, outcome: Outcome) -> None:
    classifier = (
        FailureClassifier()
        if statuses is None
        else FailureClassifier(failure_statuses=frozenset(statuses))
    )
    assert classifier.classify_status(status) is outcome


def test_a_status_set_becomes_a_frozenset_so_the_classifier_stays_hashable() -> None:
    classifier = FailureClassifier(failure_statuses={500, 429})  # type: ignore[arg-type]
    assert classifier.failure_statuses == frozenset({500, 429})
    assert hash(classifier) == hash(FailureClassifier(failure_statuses=frozenset({429, 500})))


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        pytest.param({"ignore": (ValueError, "x")}, "ignore", id="ignore"),
        pytest.param({"exclude": (int,)}, "exclude", id="exclude"),
        pytest.param({"failures": ("OSError",)}, "failures", id="failures"),
        pytest.param({"failure_statuses": frozenset({700})}, "failure_statuses", id="status"),
    ],
)
def test_bad_fields_are_named(fields: dict[str, object], message: str) -> None:
    with pytest.raises((TypeError, ValueError), match=message):
        FailureClassifier(**fields)  # type: ignore[arg-type]
