"""Fixtures shared by every test package."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from healthcode.broker import EmbeddedBroker

REPO = Path(__file__).resolve().parent.parent

# The CLI lays its tables out for the width COLUMNS names, and pytest-xdist's workers export
# COLUMNS=80: tests read the output a pipe gets (no COLUMNS) however the suite is run.
os.environ.pop("COLUMNS", None)


@pytest.fixture(scope="session")
def broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmbeddedBroker]:
    """One embedded broker on a free loopback port for the whole run; always stopped.

    It dies with the test process even when that is killed (PR_SET_PDEATHSIG).
    """
    log_dir = tmp_path_factory.mktemp("broker")
    with EmbeddedBroker(log_dir=log_dir) as running:
        yield running


@pytest.fixture
def unique() -> str:
    """A short unique suffix for topic names and group ids, so tests never share data."""
    return uuid.uuid4().hex[:10]
