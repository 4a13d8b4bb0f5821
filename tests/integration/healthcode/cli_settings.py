"""What the pipeline CLI tests share: the settings a `healthcode` command runs with."""

from __future__ import annotations

from pathlib import Path

from healthcode.broker import EmbeddedBroker
from streams.topics import Topics

RULES = Path(__file__).resolve().parents[3] / "rules"


def cli_settings(broker: EmbeddedBroker, topics: Topics, partitions: int, group: str, key_dir: Path,
                 data_dir: Path) -> dict[str, str]:
    """`HEALTHCODE_*` for a command on `topics` of the test's own broker, group, keys and data directory."""
    return {
        # Empty: no config file, so no stray healthcode.env in the working directory changes what is tested.
        "HEALTHCODE_CONFIG": "",
        "HEALTHCODE_BROKER": f"kafka://{broker.bootstrap}",
        "HEALTHCODE_TOPIC_PREFIX": topics.prefix,
        "HEALTHCODE_PARTITIONS": str(partitions),
        "HEALTHCODE_GROUP": group,
        "HEALTHCODE_KEY_DIR": str(key_dir),
        "HEALTHCODE_RULES_FILE": str(RULES / "default.yaml"),
        "HEALTHCODE_DATA_DIR": str(data_dir),
    }
