"""Event contract v1: the pydantic models every data source publishes.

One JSON object per Kafka message. Validation is strict: unknown fields, bad
coordinates, naive datetimes, empty or oversize ids are errors, each reported
with the field path and what is wrong (`decode_event`).
"""

from __future__ import annotations

import math
from datetime import datetime, timezone
from typing import Annotated, Any, Literal, Union

from pydantic import (
    AfterValidator,
    AwareDatetime,
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    TypeAdapter,
    ValidationError,
    model_validator,
)

CONTRACT_VERSION = 1


def _to_utc(moment: datetime) -> datetime:
    return moment.astimezone(timezone.utc)


EventId = Annotated[str, StringConstraints(min_length=1, max_length=64)]
Pseudonym = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9_-]{1,64}$")]
Name = Annotated[str, StringConstraints(min_length=1, max_length=128)]
UtcTime = Annotated[AwareDatetime, AfterValidator(_to_utc)]
Latitude = Annotated[float, Field(ge=-90.0, le=90.0, allow_inf_nan=False)]
Longitude = Annotated[float, Field(ge=-180.0, le=180.0, allow_inf_nan=False)]
Position = Annotated[tuple[Longitude, Latitude], Field(description="[lon, lat] as GeoJSON orders it")]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)


class _Event(_Strict):
    event_id: EventId
    ts: UtcTime


class Ping(_Event):
    """A device seen at a place: the raw material of presence and contacts."""

    type: Literal["ping"] = "ping"
    person: Pseudonym
    lat: Latitude
    lon: Longitude
    accuracy_m: Annotated[float, Field(ge=0.0, le=100_000.0, allow_inf_nan=False)] | None = None
    source: Literal["cell", "gps", "venue"]


class Visit(_Event):
    """A hospital visit: a fever clinic, a confirmed diagnosis, or a recovery (discharge)."""

    type: Literal["visit"] = "visit"
    person: Pseudonym
    facility: Name
    kind: Literal["fever_clinic", "diagnosis", "recovery"]


class TestResult(_Event):
    """A test result, known at `ts`, for a sample taken at `sampled_at`."""

    __test__ = False  # a domain name, not a pytest test class

    type: Literal["test_result"] = "test_result"
    person: Pseudonym
    sampled_at: UtcTime
    test: Literal["pcr", "antigen"]
    result: Literal["positive", "negative"]

    @model_validator(mode="after")
    def _sampled_before_known(self) -> "TestResult":
        if self.sampled_at > self.ts:
            raise ValueError("sampled_at is after ts: a result cannot be known before its sample is taken")
        return self


def _closed_ring(ring: list[Position]) -> list[Position]:
    if len(ring) < 4:
        raise ValueError(f"a linear ring needs at least 4 positions, got {len(ring)}")
    if ring[0] != ring[-1]:
        raise ValueError("a linear ring must be closed (first position equal to last)")
    return ring


Ring = Annotated[list[Position], AfterValidator(_closed_ring)]


class Polygon(_Strict):
    """A GeoJSON Polygon: an outer ring then holes, positions as [lon, lat]."""

    type: Literal["Polygon"]
    coordinates: Annotated[list[Ring], Field(min_length=1)]


class MultiPolygon(_Strict):
    """A GeoJSON MultiPolygon."""

    type: Literal["MultiPolygon"]
    coordinates: Annotated[list[Annotated[list[Ring], Field(min_length=1)]], Field(min_length=1)]


Geometry = Annotated[Union[Polygon, MultiPolygon], Field(discriminator="type")]


class AreaRisk(_Event):
    """An authority's risk designation of an area, in effect from `ts` until `valid_until`."""

    type: Literal["area_risk"] = "area_risk"
    area: Name
    level: Literal["low", "medium", "high"]
    geometry: Geometry
    valid_until: UtcTime | None = None

    @model_validator(mode="after")
    def _ends_after_start(self) -> "AreaRisk":
        if self.valid_until is not None and self.valid_until <= self.ts:
            raise ValueError("valid_until must be after ts")
        return self


Event = Annotated[Union[Ping, Visit, TestResult, AreaRisk], Field(discriminator="type")]
PersonEvent = Union[Ping, Visit, TestResult]
EVENT_TYPES: tuple[str, ...] = ("ping", "visit", "test_result", "area_risk")
PING_FIELDS: frozenset[str] = frozenset(Ping.model_fields)

_ADAPTER: TypeAdapter[Any] = TypeAdapter(Event)


class EventError(ValueError):
    """A message that is not a valid v1 event; `reason` says precisely why."""

    def __init__(self, kind: str, reason: str) -> None:
        super().__init__(reason)
        self.kind = kind
        self.reason = reason


def _describe(error: ValidationError) -> tuple[str, str]:
    first = error.errors(include_url=False)
    parts = []
    kind = "invalid_field"
    for item in first:
        location = ".".join(str(p) for p in item["loc"])
        if item["type"] == "json_invalid":
            return "invalid_json", f"not valid JSON: {item['msg'].removeprefix('Invalid JSON: ')}"
        if item["type"] in ("union_tag_invalid", "union_tag_not_found") and len(item["loc"]) == 0:
            kind = "unknown_type"
            expected = ", ".join(EVENT_TYPES)
            parts.append(f"type: must be one of {expected}")
            continue
        if not item["loc"] and item["type"] in ("model_type", "model_attributes_type", "dict_type"):
            return "not_an_object", "an event must be a JSON object"
        if item["type"] == "extra_forbidden":
            kind = "unknown_field"
            parts.append(f"{location}: unknown field")
            continue
        message = item["msg"].removeprefix("Value error, ")
        parts.append(f"{location}: {message}" if location else message)
    return kind, "; ".join(parts)


def decode_event(raw: bytes | str) -> Ping | Visit | TestResult | AreaRisk:
    """Parse and validate one JSON message; raises `EventError` with a precise reason."""
    try:
        return _ADAPTER.validate_json(raw)
    except ValidationError as error:
        kind, reason = _describe(error)
        raise EventError(kind, reason) from None


def encode_event(event: BaseModel) -> bytes:
    """The canonical JSON bytes of an event (RFC 3339 UTC times with a `Z`)."""
    return event.model_dump_json(exclude_none=True).replace("+00:00", "Z").encode()


def event_json_schema() -> dict[str, Any]:
    """The JSON Schema of contract v1 (a discriminated union on `type`)."""
    schema = _ADAPTER.json_schema()
    schema["title"] = f"healthcode event contract v{CONTRACT_VERSION}"
    return schema


def event_key(event: Ping | Visit | TestResult | AreaRisk) -> str:
    """The Kafka key DESIGN.md gives each event: the person, or the area for designations."""
    return event.area if isinstance(event, AreaRisk) else event.person


def is_finite(value: float) -> bool:
    """True for a real number (not NaN or infinite)."""
    return math.isfinite(value)
