"""Configuration comes from HEALTHCODE_* variables or a file, and is validated."""

from __future__ import annotations

import pytest

from healthcode.config import Settings, kafka_bootstrap
from healthcode.errors import EnvironmentProblem


def test_kafka_urls_resolve_to_bootstrap_servers(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HEALTHCODE_BROKER", "kafka://k1:9092,k2:9092")
    assert kafka_bootstrap(Settings()) == "k1:9092,k2:9092"


def test_credentials_in_a_broker_url_never_reach_the_bootstrap_address_that_logs_and_errors_show(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("HEALTHCODE_BROKER", "kafka://alice:s3cret@k1:9092,bob:p%40ss@k2:9092")
    bootstrap = kafka_bootstrap(Settings())
    assert bootstrap == "k1:9092,k2:9092"
    assert "s3cret" not in bootstrap and "ss" not in bootstrap


def test_an_unknown_broker_setting_is_rejected(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HEALTHCODE_BROKER", "localhost:9092")
    with pytest.raises(ValueError, match="must be `embedded` or kafka://"):
        Settings()


def test_embedded_without_a_running_broker_explains_what_to_do(tmp_path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HEALTHCODE_DATA_DIR", str(tmp_path))
    with pytest.raises(EnvironmentProblem, match="healthcode broker start"):
        kafka_bootstrap(Settings())


def test_a_config_file_is_read_when_named(tmp_path, monkeypatch: pytest.MonkeyPatch) -> None:
    config = tmp_path / "hc.env"
    config.write_text("HEALTHCODE_PARTITIONS=12\n")
    monkeypatch.setenv("HEALTHCODE_CONFIG", str(config))
    assert Settings().partitions == 12
