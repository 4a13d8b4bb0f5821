"""Event contract v1: the pydantic models every data source publishes.

One JSON object per Kafka message. Validation is strict: unknown fields, bad
coordinates, naive datetimes, empty or oversize ids are errors, each reported
with the field path and what is wrong (`decode_event`).
"""

from __future__ import annotations

import json
import math
import unicodedata
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


UNPRINTABLE = frozenset(("Cc", "Cf", "Zl", "Zp", "Co", "Cs"))
"""Unicode categories no identifier may hold: control, format (zero-width, bidi), line and
paragraph separators, private use, surrogates. Identifiers that look alike must be alike."""
PRINTABLE = r"^[^\p{Cc}\p{Cf}\p{Zl}\p{Zp}\p{Co}]*$"
"""The same as a regular expression (RE2 and Rust syntax; surrogates cannot occur in UTF-8)."""
_PRINTABLE_NOTE = "no control, format (zero-width), separator or private-use characters"
EventId = Annotated[str, StringConstraints(min_length=1, max_length=64), Field(description=_PRINTABLE_NOTE)]
Pseudonym = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9_-]{1,64}$")]
Name = Annotated[str, StringConstraints(min_length=1, max_length=128), Field(description=_PRINTABLE_NOTE)]
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
_IDENTIFIERS: dict[type, tuple[str, ...]] = {
    Ping: ("event_id",), Visit: ("event_id", "facility"), TestResult: ("event_id",), AreaRisk: ("event_id", "area")
}
"""Each event's free-text identifiers, checked by `decode_event` (pseudonyms are ASCII by pattern)."""
_FLAT: dict[type, tuple[int, str | None]] = {Ping: (2, "accuracy_m"), Visit: (0, None), TestResult: (0, None)}
"""Flat events (one object, no nesting), and of their fields whose JSON value is a number
(or null): how many are required (`lat`, `lon`), and the optional one. Every other
field's value is a string."""


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
    return kind, printable("; ".join(parts))


def printable(text: str) -> str:
    """`text` with control, format, separator, private-use and surrogate characters escaped.

    Reasons quote input (an unknown field's name, say); a terminal or log must never
    receive its control characters raw. Escaping is idempotent: a backslash is printable.
    """
    if text.isprintable():
        return text
    return "".join(
        char.encode("unicode_escape").decode("ascii") if unicodedata.category(char) in UNPRINTABLE else char
        for char in text
    )


def decode_event(raw: bytes | str) -> Ping | Visit | TestResult | AreaRisk:
    """Parse and validate one JSON message; raises `EventError` with a precise reason.

    A key given twice is an error (JSON parsers keep the last; the sender may have meant
    the first), and so is an identifier with a character of `UNPRINTABLE`. Both are
    checked after validation, cheaply for the usual message: ASCII without escapes.
    """
    try:
        event = _ADAPTER.validate_json(raw)
    except ValidationError as error:
        kind, reason = _describe(error)
        raise EventError(kind, reason) from None
    flat = _FLAT.get(type(event))
    if flat is not None and type(raw) is bytes and raw.isascii() and raw.find(b"\\") < 0 and _surely_fine(raw, event, flat):
        return event  # the usual message, told apart without a second parse
    repeated = _repeated_key(raw)
    if repeated:
        raise EventError("duplicate_key", printable(repeated))
    for name in _IDENTIFIERS[type(event)]:
        if any(unicodedata.category(char) in UNPRINTABLE for char in getattr(event, name)):
            raise EventError("invalid_field", f"{event.type}.{name}: must not contain {_PRINTABLE_NOTE[3:]}")
    return event


def _surely_fine(raw: bytes, event: BaseModel, flat: tuple[int, str | None]) -> bool:
    """True when `raw`, ASCII without a backslash, repeats no key and has printable identifiers.

    False means: check it the slow way. Without a backslash every `"` delimits a
    string, so the quotes count the strings: the keys, and the string values. A flat
    event (all but areas) is one object whose keys are all fields (unknown ones are
    errors); with D distinct keys, S of them string-valued, it has 2 (D + S) quotes
    when no key repeats, and more when one does (a repeat adds a key, and perhaps
    strings in the value it lost). In ASCII without escapes `isprintable` (C) is exact.
    """
    required, optional = flat
    given = event.__pydantic_fields_set__  # model_fields_set, without the property's cost (this is hot)
    strings = len(given) - required - (optional in given)
    if raw.count(b'"') != 2 * (len(given) + strings):
        return False
    for name in _IDENTIFIERS[type(event)]:
        if not getattr(event, name).isprintable():
            return False
    return True


def _repeated_key(raw: bytes | str) -> str:
    """The reason naming the first key repeated in an object of `raw`; empty when none is."""
    def pairs(items: list[tuple[str, Any]]) -> dict[str, Any]:
        seen: dict[str, Any] = {}
        for key, value in items:
            if key in seen:
                raise _Repeated(key)
            seen[key] = value
        return seen

    try:
        json.loads(raw, object_pairs_hook=pairs)
    except _Repeated as repeated:
        return f"duplicate key: {repeated.args[0]!r} is given more than once in an object"
    except ValueError:
        return "duplicate key check: not parseable as standard JSON"
    return ""


class _Repeated(Exception):
    pass


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
