"""Everything a simulation run can be told, with defaults that model a 2022 Chinese city.

Durations are given in hours or days as floats and turned into simulation slots by
the modules that use them; every figure is validated once, here, at the edge.
"""

from __future__ import annotations

from datetime import date

from pydantic import BaseModel, ConfigDict, Field, model_validator


class _Frozen(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class CityConfig(_Frozen):
    """The map: a bounding box, its districts, and how many places of each kind it holds."""

    name: str = "Wuhan"
    south: float = Field(30.45, ge=-89.0, le=89.0)
    west: float = Field(114.15, ge=-179.0, le=179.0)
    north: float = Field(30.70, ge=-89.0, le=89.0)
    east: float = Field(114.45, ge=-179.0, le=179.0)
    utc_offset_hours: int = Field(8, ge=-12, le=14, description="local time = UTC + this; schedules run on local time")
    district_rows: int = Field(4, ge=1, le=20)
    district_cols: int = Field(4, ge=1, le=20)
    residents_per_workplace: float = Field(25.0, gt=0)
    residents_per_school: float = Field(600.0, gt=0)
    residents_per_venue: float = Field(120.0, gt=0)
    residents_per_hospital: float = Field(25_000.0, gt=0)
    favourite_venues: int = Field(3, ge=1, le=10)

    @model_validator(mode="after")
    def _box_is_a_box(self) -> CityConfig:
        if self.south >= self.north or self.west >= self.east:
            raise ValueError("the bounding box needs south < north and west < east")
        return self


class MobilityConfig(_Frozen):
    """How people move and how their devices report it."""

    ping_interval_minutes: int = Field(15, ge=1, le=240, description="one ping per device per interval")
    gps_share: float = Field(
        0.65, ge=0, le=1, description="devices reporting GPS fixes; the rest are seen by cell towers"
    )
    gps_accuracy_m: float = Field(15.0, gt=0, description="median GPS accuracy radius")
    cell_accuracy_m: float = Field(600.0, gt=0, description="median cell-tower accuracy radius")
    missing_ping: float = Field(0.05, ge=0, le=1, description="chance a single ping is never sent")
    night_off: float = Field(0.10, ge=0, le=1, description="chance a device is switched off overnight (23:00-07:00)")
    day_off: float = Field(0.01, ge=0, le=1, description="chance a device is off for a whole day")
    delayed_ping: float = Field(
        0.02, ge=0, le=1, description="chance a ping is buffered on the device and arrives late"
    )
    delayed_ping_mean_minutes: float = Field(20.0, gt=0)
    weekday_evening_venue: float = Field(0.25, ge=0, le=1)
    retired_daytime_venue: float = Field(0.5, ge=0, le=1)
    weekend_venue: float = Field(0.6, ge=0, le=1)
    saturday_work: float = Field(0.1, ge=0, le=1)

    @model_validator(mode="after")
    def _interval_divides_day(self) -> MobilityConfig:
        if 1440 % self.ping_interval_minutes:
            raise ValueError("ping_interval_minutes must divide a day (1440 minutes)")
        return self


class DiseaseConfig(_Frozen):
    """The course of an infection and how readily it passes between people sharing a place."""

    initial_infections: int = Field(
        0, ge=0, description="infected at the start; 0 means one per 1,000 residents (at least 3)"
    )
    beta_home: float = Field(
        1.5e-4, ge=0, le=1, description="per-minute infection chance per infectious household member"
    )
    beta_work: float = Field(3.5e-5, ge=0, le=1)
    beta_school: float = Field(2e-5, ge=0, le=1)
    beta_venue: float = Field(3e-4, ge=0, le=1)
    asymptomatic_share: float = Field(0.4, ge=0, le=1)
    asymptomatic_infectiousness: float = Field(0.5, ge=0, le=1)
    latent_days: float = Field(3.0, gt=0, description="mean time from infection to infectiousness")
    presymptomatic_days: float = Field(2.0, gt=0)
    symptomatic_infectious_days: float = Field(7.0, gt=0)
    asymptomatic_infectious_days: float = Field(6.0, gt=0)
    symptoms_after_infectious_days: float = Field(
        2.0, ge=0, description="mean time symptoms last after infectiousness ends"
    )
    stay_home_when_sick: float = Field(0.5, ge=0, le=1)


class HealthConfig(_Frozen):
    """Fever clinics, tests, diagnoses, discharge and routine screening."""

    clinic_visit: float = Field(0.7, ge=0, le=1, description="chance a symptomatic person visits a fever clinic")
    clinic_delay_days: float = Field(1.0, ge=0, description="mean delay from symptom onset to the clinic visit")
    background_fever_per_day: float = Field(
        0.0005, ge=0, le=1, description="daily chance an uninfected person visits with a fever"
    )
    pcr_sensitivity: float = Field(0.9, ge=0, le=1)
    pcr_specificity: float = Field(0.998, ge=0, le=1)
    antigen_sensitivity: float = Field(0.7, ge=0, le=1)
    antigen_specificity: float = Field(0.99, ge=0, le=1)
    pcr_delay_hours: tuple[float, float] = (6.0, 24.0)
    antigen_delay_minutes: tuple[float, float] = (15.0, 30.0)
    diagnosis_delay_hours: tuple[float, float] = (1.0, 6.0)
    minimum_stay_days: float = Field(7.0, ge=0, description="a diagnosed case stays isolated at least this long")
    screening_share: float = Field(0.2, ge=0, le=1, description="share of residents tested in each screening round")
    screening_every_days: int = Field(3, ge=1)
    screening_test: str = Field("pcr", pattern="^(pcr|antigen)$")


class AuthorityConfig(_Frozen):
    """District designations in the manner of the 9th-edition protocol (June 2022)."""

    decision_hour: int = Field(10, ge=0, le=23, description="local hour the daily designations take effect")
    window_days: int = Field(7, ge=1, description="cases counted over this many days")
    high_cases: int = Field(5, ge=1, description="cases in the window that make a district high risk")
    medium_cases: int = Field(1, ge=1, description="cases in the window that make a district medium risk")
    high_clear_days: int = Field(7, ge=1, description="days without a new case before high is lowered to medium")
    medium_clear_days: int = Field(3, ge=1, description="days without a new case before medium is lowered to low")

    @model_validator(mode="after")
    def _high_above_medium(self) -> AuthorityConfig:
        if self.high_cases < self.medium_cases:
            raise ValueError("high_cases must be at least medium_cases")
        return self


FAULT_KINDS: tuple[str, ...] = ("malformed_json", "wrong_type", "unknown_field", "duplicate", "late", "out_of_order")
ORDER_FAULTS: tuple[str, ...] = ("duplicate", "late", "out_of_order")


class FaultConfig(_Frozen):
    """Faults injected into the event stream, each recorded in the faults file."""

    share: float = Field(0.0, ge=0, le=0.5, description="share of events that get a fault")
    kinds: tuple[str, ...] = FAULT_KINDS
    late_hours: tuple[float, float] = (1.0, 12.0)
    out_of_order_minutes: tuple[float, float] = (1.0, 8.0)

    @model_validator(mode="after")
    def _known_kinds(self) -> FaultConfig:
        unknown = set(self.kinds) - set(FAULT_KINDS)
        if unknown or not self.kinds:
            raise ValueError(f"fault kinds must be a non-empty subset of {', '.join(FAULT_KINDS)}")
        return self


class SimulationConfig(_Frozen):
    """One run: population, period, seed and every sub-model's settings."""

    residents: int = Field(10_000, ge=10, le=10_000_000)
    days: int = Field(14, ge=1, le=366)
    seed: int = Field(7, ge=0)
    start: date = Field(date(2022, 4, 1), description="first simulated day, starting at local midnight")
    city: CityConfig = CityConfig()
    mobility: MobilityConfig = MobilityConfig()
    disease: DiseaseConfig = DiseaseConfig()
    health: HealthConfig = HealthConfig()
    authority: AuthorityConfig = AuthorityConfig()
    faults: FaultConfig = FaultConfig()

    @property
    def slots_per_day(self) -> int:
        """Simulation steps per day: one per ping interval."""
        return 1440 // self.mobility.ping_interval_minutes

    @property
    def slot_seconds(self) -> int:
        """Length of one simulation step."""
        return self.mobility.ping_interval_minutes * 60
