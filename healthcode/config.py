"""Configuration: `HEALTHCODE_*` environment variables, optionally a file, validated by pydantic."""

from __future__ import annotations

import difflib
import os
from collections.abc import Mapping
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING

from pydantic import Field, ValidationError, field_validator
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict

from healthcode.errors import EnvironmentProblem
from scoring.timeutil import parse_duration, parse_rfc3339
from streams.health import DEFAULT_STALL_TIMEOUT_S

if TYPE_CHECKING:
    from codes.access import RatePolicy
    from scoring.limits import EventLimits

EMBEDDED = "embedded"
KAFKA_SCHEME = "kafka://"
PREFIX = "HEALTHCODE_"
CONFIG_VARIABLE = "HEALTHCODE_CONFIG"
DEFAULT_CONFIG_FILE = "healthcode.env"
# HEALTHCODE_* names that are not settings but are read elsewhere: the config file's
# name, and the key `healthcode code verify --list-key` checks revocation lists with (a typer envvar).
OTHER_NAMES = frozenset({CONFIG_VARIABLE, "HEALTHCODE_LIST_KEY"})


class Settings(BaseSettings):
    """The effective configuration of a healthcode process.

    Values come from `HEALTHCODE_<NAME>` environment variables, then from the
    env-style file named by `HEALTHCODE_CONFIG` (default `healthcode.env` if present).
    """

    model_config = SettingsConfigDict(env_prefix="HEALTHCODE_", extra="ignore")

    broker: str = Field(EMBEDDED, description="`embedded`, or kafka://host:port[,host:port]")
    partitions: int = Field(4, ge=1, le=256, description="partitions of each keyed topic")
    replication: int = Field(1, ge=1, description="replication factor of created topics")
    data_dir: Path = Field(Path(".healthcode"), description="worker stores, broker state, logs")
    topic_prefix: str = Field("hc.", description="prefix of every topic name")
    key_dir: Path | None = Field(None, description="directory of code-signing keys")
    issuer: str = Field("healthcode", description="issuer name written into codes")
    code_validity: str = Field("5m", description="how long a code signed for a resident's request is valid")
    resident_rate_limit: int = Field(
        30, ge=1, description="code requests a minute one resident (token) may make; more are answered 429"
    )
    client_rate_limit: int = Field(
        600, ge=1, description="code requests a minute one client address may make, whoever's; more are answered 429"
    )
    allowed_lateness: str = Field("10m", description="how far behind the newest event time the watermark trails")
    group: str = Field("healthcode-workers", description="consumer group the workers share")
    live: bool = Field(
        False, description="event time is wall time (a real deployment): the wall clock moves quiet watermarks on"
    )
    idle_timeout: float = Field(2.0, gt=0, description="seconds of silence after which a partition stops holding the watermark")
    batch_size: int = Field(5000, ge=1, description="events taken per batch by a worker")
    commit_interval: float = Field(
        5.0, gt=0, description="seconds between commits of the group's positions (lag monitoring; recovery rebuilds)"
    )
    batch_timeout: float = Field(0.05, gt=0, description="seconds a worker waits for input when none is ready")
    session_timeout: float = Field(6.0, gt=0, description="consumer group session timeout, seconds")
    heartbeat_interval: float = Field(1.0, gt=0, description="consumer group heartbeat, seconds")
    stall_timeout: float = Field(
        DEFAULT_STALL_TIMEOUT_S, gt=0, description="seconds without a finished loop turn after which a worker is not ready"
    )
    snapshot_every: float = Field(
        30.0, ge=0, description="seconds between a worker's snapshots of its state (0: none; recovery then rebuilds)"
    )
    stages: bool = Field(
        True, description="presence split by region in stages (pings -> stays -> exposures): each worker does its share of the ping work"
    )
    rules_file: Path = Field(Path("rules/default.yaml"), description="rule set used until one is published")
    web_image_limit: int = Field(
        16, ge=1, description="QR images a worker's web port renders or queues at once; more are answered 429"
    )
    dead_letter_retention: str | None = Field(
        None, description="how long hc.dead-letter keeps rejected messages (raw bytes); default: as long as pings"
    )
    earliest_event_time: str = Field(
        "2000-01-01T00:00:00Z", description="events dated earlier (ts, a test's sampled_at) are dead-lettered"
    )
    event_time_ahead: str = Field("1d", description="events dated further past the intake clock are dead-lettered")
    area_max_vertices: int = Field(1000, ge=4, description="positions a medium or high area designation may have")
    area_max_km2: float = Field(3000.0, gt=0, description="km2 a medium or high area designation may cover")
    area_max_perimeter_km: float = Field(1000.0, gt=0, description="km of edges a medium or high area designation may have")

    @field_validator("earliest_event_time")
    @classmethod
    def _a_moment(cls, value: str) -> str:
        parse_rfc3339(value)
        return value

    @field_validator("code_validity")
    @classmethod
    def _a_validity(cls, value: str) -> str:
        if parse_duration(value) < 1:
            raise ValueError("must be at least a second")
        return value

    @field_validator("event_time_ahead")
    @classmethod
    def _a_duration(cls, value: str) -> str:
        parse_duration(value)
        return value

    def rate_policies(self) -> "tuple[RatePolicy, RatePolicy]":
        """Per resident and per client address: bursts of up to a third of a minute's requests."""
        from codes.access import RatePolicy

        return tuple(  # type: ignore[return-value]
            RatePolicy(per_minute=rate, burst=max(1, -(-rate // 3)))
            for rate in (self.resident_rate_limit, self.client_rate_limit)
        )

    def event_limits(self) -> "EventLimits":
        """What one event may ask of the pipeline (`scoring.limits`), as these settings bound it."""
        from scoring.limits import EventLimits

        return EventLimits(
            parse_rfc3339(self.earliest_event_time), parse_duration(self.event_time_ahead),
            self.area_max_vertices, self.area_max_km2, self.area_max_perimeter_km,
        )

    @field_validator("broker")
    @classmethod
    def _known_broker(cls, value: str) -> str:
        if value != EMBEDDED and not value.startswith(KAFKA_SCHEME):
            raise ValueError(f"must be `{EMBEDDED}` or {KAFKA_SCHEME}host:port[,host:port], got {value!r}")
        if value.startswith(KAFKA_SCHEME) and not value[len(KAFKA_SCHEME):].strip():
            raise ValueError("kafka:// needs at least one host:port")
        return value

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        from pydantic_settings import DotEnvSettingsSource

        file_source = DotEnvSettingsSource(settings_cls, env_file=config_file())
        return init_settings, env_settings, file_source


def config_file() -> Path | None:
    """The env-style file settings are read from: the one `HEALTHCODE_CONFIG` names, which
    must exist, or `healthcode.env` when there is one; None when there is none or when
    `HEALTHCODE_CONFIG` is set empty (no file, whatever the working directory holds)."""
    named = os.environ.get(CONFIG_VARIABLE)
    if named is None:
        default = Path(DEFAULT_CONFIG_FILE)
        return default if default.is_file() else None
    if not named:
        return None
    if not Path(named).is_file():
        raise EnvironmentProblem(f"{CONFIG_VARIABLE} names {named}, which is not a file")
    return Path(named)


def setting_warnings(environ: Mapping[str, str] = os.environ) -> list[str]:
    """One message per `HEALTHCODE_*` name, in the environment or the config file, that is
    no setting (a misspelling is otherwise silently ignored), with the closest known name."""
    from dotenv import dotenv_values

    known = {PREFIX + name.upper() for name in Settings.model_fields} | OTHER_NAMES
    places = [(name, "in the environment") for name in environ]
    try:
        file = config_file()
        if file is not None:
            places += [(name, f"in {file}") for name in dotenv_values(file)]
    except (EnvironmentProblem, OSError, UnicodeDecodeError):
        pass  # reading the settings reports the file's problem as an error
    warnings = []
    for name, where in places:
        upper = name.upper()
        if not upper.startswith(PREFIX) or upper in known:
            continue
        # Compared without the prefix all names share, which would make any two look alike.
        close = difflib.get_close_matches(upper.removeprefix(PREFIX), [k.removeprefix(PREFIX) for k in known], n=1)
        hint = f" (did you mean {PREFIX}{close[0]}?)" if close else ""
        warnings.append(f"{name} {where} is not a setting and is ignored{hint}")
    return warnings


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """The process-wide settings, read once."""
    try:
        return Settings()
    except UnicodeDecodeError:
        raise EnvironmentProblem(f"the config file {config_file()} is not UTF-8 text") from None
    except ValidationError as error:
        problems = "; ".join(
            f"HEALTHCODE_{'_'.join(str(p) for p in item['loc']).upper()}: {item['msg']}"
            for item in error.errors(include_url=False)
        )
        raise EnvironmentProblem(f"invalid configuration: {problems}") from None


def kafka_bootstrap(settings: Settings) -> str:
    """The bootstrap servers (`host:port,...`) that `settings.broker` points at.

    `embedded` resolves to the broker that `healthcode broker start` left running. Any
    `user:password@` before a host is dropped: the Kafka clients take no credentials from
    the address, and an address goes into logs and error messages.
    """
    if settings.broker.startswith(KAFKA_SCHEME):
        hosts = settings.broker[len(KAFKA_SCHEME):].split(",")
        return ",".join(host.rpartition("@")[2] for host in hosts)
    from healthcode.broker import running_broker

    state = running_broker(settings.data_dir)
    if state is None:
        raise EnvironmentProblem(
            "HEALTHCODE_BROKER=embedded but no embedded broker is running here; "
            "start one with `healthcode broker start`, or set HEALTHCODE_BROKER=kafka://host:port"
        )
    return state.bootstrap
