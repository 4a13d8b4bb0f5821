"""Every file of a simulated run names its city, so a backtest can refuse a truth from another one."""

import json

import orjson
import pyarrow.parquet as pq

from simulators.config import SimulationConfig
from simulators.output import RUN_METADATA_KEY, write_run
from simulators.run import Simulation

CONFIG = SimulationConfig.model_validate({"residents": 60, "days": 1, "seed": 7})


def named(path):
    return orjson.loads(pq.read_schema(path).metadata[RUN_METADATA_KEY])


def test_events_truth_and_city_json_carry_the_same_name(tmp_path):
    write_run(Simulation(CONFIG), tmp_path, parquet=True)
    identity = named(tmp_path / "events.parquet")
    assert identity == named(tmp_path / "truth.parquet") == json.loads((tmp_path / "city.json").read_text())["run"]
    assert identity["seed"] == 7 and identity["residents"] == 60
    assert (identity["start"], identity["end"]) == ("2022-03-31T16:00:00Z", "2022-04-01T16:00:00Z")


def test_another_seed_or_setting_is_another_name():
    base = Simulation(CONFIG).identity()
    assert Simulation(CONFIG.model_copy(update={"seed": 8})).identity()["config_sha256"] != base["config_sha256"]
    assert Simulation(CONFIG.model_copy(update={"days": 2})).identity()["end"] != base["end"]
    assert Simulation(CONFIG).identity() == base
