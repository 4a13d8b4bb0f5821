"""The topic catalogue names every topic once, under a prefix."""

from __future__ import annotations

import pytest

from streams.topics import SPECS, Topics, partitions_of


def test_default_names_match_the_design() -> None:
    topics = Topics()
    assert {topics.name(s.role) for s in SPECS} == {
        "hc.pings", "hc.visits", "hc.areas", "hc.rules", "hc.cases", "hc.codes", "hc.dead-letter",
        "hc.stays", "hc.exposures",
    }


def test_events_route_to_their_input_topic() -> None:
    assert Topics().for_event("ping") == "hc.pings"
    assert Topics().for_event("test_result") == "hc.visits"
    assert Topics("t1.").for_event("area_risk") == "t1.areas"
    with pytest.raises(ValueError):
        Topics().for_event("hug")


def test_only_keyed_topics_are_partitioned() -> None:
    counts = {s.role: partitions_of(s, 8) for s in SPECS}
    assert counts["pings"] == counts["codes"] == counts["stays"] == counts["exposures"] == 8
    assert counts["areas"] == counts["rules"] == counts["cases"] == counts["dead-letter"] == 1
