"""Reading a simulation settings file (YAML) with command-line overrides, for every command
that simulates a city (`simulate`, `rules compare --sim-config`): the same errors, the same
defaults."""

from __future__ import annotations

from pathlib import Path

import yaml
from pydantic import ValidationError

from healthcode.errors import EnvironmentProblem
from simulators.config import SimulationConfig


def load_simulation_config(path: Path | None, overrides: dict[str, object]) -> SimulationConfig:
    """The settings in `path` (none: the defaults) with each override that is not None on top;
    a file that cannot be read, is not YAML or holds invalid settings is an EnvironmentProblem."""
    base: dict[str, object] = {}
    if path is not None:
        try:
            loaded = yaml.safe_load(path.read_text())
        except OSError as error:
            raise EnvironmentProblem(f"cannot read {path}: {error.strerror}") from None
        except UnicodeDecodeError as error:
            raise EnvironmentProblem(f"{path} is not UTF-8 text (byte {error.start})") from None
        except yaml.YAMLError as error:
            raise EnvironmentProblem(f"{path} is not YAML: {error}") from None
        if not isinstance(loaded, dict):
            raise EnvironmentProblem(f"{path} must hold a mapping of settings")
        base = loaded
    merged = {**base, **{k: v for k, v in overrides.items() if v is not None}}
    faults = merged.pop("fault_share", None)
    if faults is not None:
        merged["faults"] = {**dict(base.get("faults") or {}), "share": faults}
    interval = merged.pop("ping_interval", None)
    if interval is not None:
        merged["mobility"] = {**dict(base.get("mobility") or {}), "ping_interval_minutes": interval}
    try:
        return SimulationConfig.model_validate(merged)
    except ValidationError as error:
        raise EnvironmentProblem(f"invalid simulation settings: {error}") from None
