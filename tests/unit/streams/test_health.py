"""Why a worker is not ready: the verdicts behind /healthz, from what the worker observed."""

from __future__ import annotations

from streams.health import Health

STALL = 10.0


def _fresh(at: float = 100.0) -> Health:
    return Health(stall_timeout_s=STALL, last_progress=at)


def test_a_worker_that_turns_its_loop_with_a_broker_and_its_state_built_is_ready() -> None:
    health = _fresh()
    health.progressed(105.0)
    assert health.reason(110.0, built=True) is None


def test_a_worker_without_its_partitions_state_is_not_ready() -> None:
    assert "waiting for partitions" in (_fresh().reason(101.0, built=False) or "")


def test_a_loop_that_finished_no_turn_for_longer_than_the_stall_timeout_is_not_ready() -> None:
    health = _fresh()
    health.progressed(200.0)
    assert health.reason(200.0 + STALL, built=True) is None
    reason = health.reason(200.0 + STALL + 2, built=True)
    assert reason == "no progress for 12 s (stall timeout 10 s)"


def test_progress_reported_out_of_order_never_moves_the_last_turn_back() -> None:
    health = _fresh()
    health.progressed(200.0)
    health.progressed(150.0)
    assert health.reason(200.0 + STALL, built=True) is None


def test_an_unreachable_broker_makes_the_worker_not_ready_until_it_answers_and_says_since_when() -> None:
    health = _fresh()
    assert health.broker_failed(120.0, "connection refused") is True
    assert health.broker_failed(121.0, "still refused") is False, "the same outage is not new"
    assert health.reason(125.0, built=True) == "broker unreachable for 5 s: still refused"
    assert health.broker_answered() == 120.0
    assert health.broker_answered() is None, "no outage to end"
    health.progressed(125.0)
    assert health.reason(125.0, built=True) is None


def test_an_unreachable_broker_is_the_reason_given_before_a_stall_it_causes() -> None:
    health = _fresh()
    health.broker_failed(101.0, "connection refused")
    assert (health.reason(100.0 + 3 * STALL, built=False) or "").startswith("broker unreachable")


def test_lost_broker_data_keeps_the_worker_not_ready_until_it_has_rebuilt() -> None:
    health = _fresh()
    health.lost_data("topic hc.pings gone")
    assert health.reason(101.0, built=True) == (
        "the broker lost data (topic hc.pings gone): not ready until rebuilt from what it has"
    )
    health.rebuilt()
    assert health.reason(101.0, built=True) is None
