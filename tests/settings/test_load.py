"""Settings: the file, the environment, and errors that say where."""

from __future__ import annotations

from pathlib import Path

import pytest

from sloguard.settings import ConfigError, Settings, load_settings


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "sloguard.yaml"
    path.write_text(text)
    return path


def test_defaults_apply_without_a_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    assert load_settings(env={}) == Settings()


def test_file_values_are_read(tmp_path: Path) -> None:
    path = write(tmp_path, "service:\n  name: shop\ntracing:\n  sample_ratio: 0.25\n")
    settings = load_settings(path, env={})
    assert settings.service.name == "shop"
    assert settings.tracing.sample_ratio == 0.25


def test_environment_overrides_the_file(tmp_path: Path) -> None:
    path = write(tmp_path, "tracing:\n  sample_ratio: 0.25\n")
    env = {
        "SLOGUARD_TRACING__SAMPLE_RATIO": "0.5",
        "SLOGUARD_TRACING__TRUSTED_SOURCES": "['10.0.0.0/8']",
    }
    settings = load_settings(path, env=env)
    assert settings.tracing.sample_ratio == 0.5
    assert settings.tracing.trusted_sources == ("10.0.0.0/8",)


def test_sloguard_config_names_the_file(tmp_path: Path) -> None:
    path = write(tmp_path, "service:\n  name: from-env-file\n")
    assert load_settings(env={"SLOGUARD_CONFIG": str(path)}).service.name == "from-env-file"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        pytest.param(
            "tracing:\n  sample_ratio: 2\n", "sloguard.yaml:2: tracing.sample_ratio:", id="range"
        ),
        pytest.param(
            "metrics:\n  path: metrics\n", "sloguard.yaml:2: metrics.path:", id="validator"
        ),
        pytest.param(
            "tracing:\n  samplerate: 1\n",
            "sloguard.yaml:2: tracing.samplerate:",
            id="unknown-field",
        ),
        pytest.param(
            "sli:\n  slos:\n    - name: ok\n    - name: lat\n      kind: latency\n",
            "sloguard.yaml:4: sli.slos.1:",
            id="list-item",
        ),
        pytest.param("tracing: [\n", "sloguard.yaml:2: -: invalid YAML", id="yaml-syntax"),
        pytest.param(
            "- a\n- b\n", "sloguard.yaml:1: -: the top level must be a mapping", id="not-a-mapping"
        ),
        pytest.param(
            "tracing:\n  trusted_sources: ['not-a-net']\n",
            "sloguard.yaml:2: tracing.trusted_sources:",
            id="cidr",
        ),
    ],
)
def test_file_errors_name_file_line_and_field(tmp_path: Path, text: str, expected: str) -> None:
    with pytest.raises(ConfigError) as info:
        load_settings(write(tmp_path, text), env={})
    assert expected in str(info.value).replace(str(tmp_path) + "/", "")


def test_environment_errors_name_the_variable(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"SLOGUARD_METRICS__PORT: metrics.port: .*integer"):
        load_settings(write(tmp_path, ""), env={"SLOGUARD_METRICS__PORT": "eighty"})


def test_malformed_environment_name_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(
        ConfigError, match="SLOGUARD_TRACING: -: expected SLOGUARD_<SECTION>__<FIELD>"
    ):
        load_settings(write(tmp_path, ""), env={"SLOGUARD_TRACING": "1"})


def test_explicit_missing_file_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="file not found"):
        load_settings(tmp_path / "absent.yaml", env={})


def test_duplicate_slo_names_are_rejected(tmp_path: Path) -> None:
    text = "sli:\n  slos:\n    - name: a\n    - name: a\n"
    with pytest.raises(ConfigError, match="duplicate SLO name 'a'"):
        load_settings(write(tmp_path, text), env={})
