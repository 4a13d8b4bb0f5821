"""README's Configuration table lists every setting with its real default."""

import re
from pathlib import Path

from healthcode.config import Settings

README = Path(__file__).resolve().parents[3] / "README.md"


def _table() -> dict[str, str]:
    section = README.read_text().split("## Configuration", 1)[1].split("\n## ", 1)[0]
    return dict(re.findall(r"^\| `(HEALTHCODE_\w+)` \| ([^|]+?) \|", section, re.MULTILINE))


def _shown(default: object) -> str:
    if default is None:
        return "none"
    if isinstance(default, bool):
        return str(default).lower()
    return str(default)


def test_every_setting_is_in_the_table_with_its_default() -> None:
    table = _table()
    for name, field in Settings.model_fields.items():
        variable = f"HEALTHCODE_{name.upper()}"
        assert variable in table, f"{variable} is missing from README's Configuration table"
        cell = table[variable]
        if field.default is None:
            assert not cell.startswith("`"), f"{variable}: no default, README says {cell}"
        elif isinstance(field.default, (int, float)) and not isinstance(field.default, bool):
            assert float(cell.strip("`")) == field.default, f"{variable}: default {field.default}, README says {cell}"
        else:
            assert cell == f"`{_shown(field.default)}`", f"{variable}: default {field.default}, README says {cell}"


def test_the_table_names_no_setting_that_does_not_exist() -> None:
    known = {f"HEALTHCODE_{name.upper()}" for name in Settings.model_fields}
    assert set(_table()) - known == set()
