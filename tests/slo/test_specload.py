"""Loading spec files: formats per document, directories, duplicates, and where problems are."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import pytest

from sloguard.slo._model import FileSource, PrometheusSource, StoreSource
from sloguard.slo._specload import SpecError, SpecProblem, load_slo_files, validate_paths

EXAMPLES = Path(__file__).parents[2] / "examples" / "slo"


def native(name: str, objective: str = "99.9") -> str:
    return (
        "apiVersion: sloguard.dev/v1\nkind: SLO\n"
        f"metadata: {{name: {name}, service: shop}}\n"
        f"spec: {{objective: {objective}, sli: {{requests: {{routes: ['/{name}']}}}}}}\n"
    )


SLOTH = """version: prometheus/v1
service: api
slos:
  - {name: errors, objective: 99, sli: {raw: {error_ratio_query: 'e[{{.window}}]'}}}
"""
OPENSLO = """apiVersion: openslo/v1
kind: SLO
metadata: {name: cart}
spec:
  service: shop
  budgetingMethod: Occurrences
  objectives: [{target: 0.99}]
  indicator:
    metadata: {name: cart}
    spec:
      ratioMetric:
        rawType: success
        raw: {metricSource: {type: sloguard, spec: {routes: [/cart]}}}
"""


def names(paths: list[str | Path]) -> list[str]:
    return [definition.name for definition in load_slo_files(paths)]


def test_every_example_file_validates_and_loads() -> None:
    assert validate_paths([EXAMPLES]) == []
    assert names([EXAMPLES]) == [
        "checkout-availability",
        "checkout-latency",
        "search-errors",
        "cart-availability",
        "checkout-page",
        "myservice-requests-availability",
        "home-wifi-wifi-client-satisfaction",
        "home-wifi-requests-availability",
    ]


def test_one_file_may_mix_formats_document_by_document() -> None:
    Path("mixed.yaml").write_text("\n---\n".join([native("checkout"), SLOTH, OPENSLO]))
    checkout, errors, cart = load_slo_files(["mixed.yaml"])
    assert (checkout.name, checkout.source) == ("checkout", StoreSource())
    assert (errors.name, errors.source) == ("api-errors", PrometheusSource())
    assert (cart.name, cart.objective) == ("cart", Decimal(99))


def test_definitions_remember_where_they_were_written() -> None:
    Path("mixed.yaml").write_text(native("a") + "---\n" + OPENSLO)
    assert [d.origin for d in load_slo_files(["mixed.yaml"])] == ["mixed.yaml:3", "mixed.yaml:8"]


def test_directories_are_searched_for_yaml_files_in_name_order() -> None:
    Path("specs/team").mkdir(parents=True)
    Path("specs/b.yml").write_text(native("b"))
    Path("specs/team/a.yaml").write_text(native("a"))
    Path("specs/notes.txt").write_text("not a spec")
    Path("specs/.hidden.yaml").write_text("broken: [")
    assert names(["specs"]) == ["b", "a"]


def test_a_history_file_is_found_next_to_the_spec_that_names_it() -> None:
    Path("specs").mkdir()
    text = native("a").replace("sli:", "source: {file: {path: history.csv}}, sli:")
    Path("specs/a.yaml").write_text(text)
    [definition] = load_slo_files(["specs/a.yaml"])
    assert definition.source == FileSource(str(Path("specs/history.csv")))


def test_duplicate_names_across_files_are_rejected_where_repeated() -> None:
    Path("one.yaml").write_text(native("checkout"))
    Path("two.yaml").write_text("# again\n" + native("checkout", "99.5"))
    with pytest.raises(SpecError) as caught:
        load_slo_files(["one.yaml", "two.yaml"])
    assert caught.value.problems == (
        SpecProblem(
            "two.yaml", 4, "metadata.name", "duplicate SLO name 'checkout' (also at one.yaml:3)"
        ),
    )


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        pytest.param(
            "apiVersion: sloguard.dev/v1\nspec: [\n",
            "slo.yaml:3: -: invalid YAML: expected the node content, but found '<stream end>'",
            id="syntax",
        ),
        pytest.param(
            native("a").replace("kind: SLO", "kind: SLO\nkind: SLO"),
            "slo.yaml:3: -: invalid YAML: duplicate key 'kind'",
            id="duplicate-key",
        ),
        pytest.param(
            "apiVersion: v1\nkind: ConfigMap\n",
            "slo.yaml:1: -: unknown spec format: expected apiVersion sloguard.dev/v1,"
            " apiVersion openslo/v1 or version prometheus/v1",
            id="unknown-format",
        ),
        pytest.param("just text\n", "slo.yaml:1: -: a document must be a mapping", id="scalar"),
    ],
)
def test_unreadable_documents_are_reported_with_their_line(text: str, expected: str) -> None:
    Path("slo.yaml").write_text(text)
    assert [str(p) for p in validate_paths(["slo.yaml"])] == [expected]


def test_a_bad_document_does_not_hide_the_good_ones_next_to_it() -> None:
    Path("slo.yaml").write_text(native("a") + "---\n" + native("b", "101") + "---\n" + native("c"))
    assert [str(p) for p in validate_paths(["slo.yaml"])] == [
        "slo.yaml:9: spec.objective: must be between 0 and 100 (exclusive)"
    ]


def test_missing_paths_and_empty_directories_are_problems() -> None:
    Path("empty").mkdir()
    assert [str(p) for p in validate_paths(["nowhere.yaml", "empty"])] == [
        "empty: -: no *.yaml or *.yml files",
        "nowhere.yaml: -: no such file or directory",
    ]


def test_empty_documents_are_skipped() -> None:
    Path("slo.yaml").write_text("---\n# nothing yet\n---\n" + native("a") + "---\n")
    assert names(["slo.yaml"]) == ["a"]


def test_spec_error_lists_every_problem_one_per_line() -> None:
    Path("slo.yaml").write_text(native("a", "0") + "---\n" + native("Bad"))
    with pytest.raises(SpecError) as caught:
        load_slo_files(["slo.yaml"])
    assert str(caught.value).splitlines() == [
        "slo.yaml:4: spec.objective: must be between 0 and 100 (exclusive)",
        "slo.yaml:8: metadata.name: must be 1-64 lowercase letters, digits, '-', '_' or '.',"
        " starting and ending with a letter or digit",
    ]
