"""A rebuild dead-letters each rejected input once, also after retention deleted old letters.

The dead-letter topic keeps letters for a bounded time; visits are kept for good. A
rebuild that finds no letter for a bad visit must not send it again (and again after
every expiry) when that letter may have been deleted by retention: when the topic has
lost its oldest messages and the input arrived more than the retention ago.
"""

from __future__ import annotations

from prometheus_client import REGISTRY

from streams.letters import LetterLedger

DAY_S = 86_400
RETENTION_S = 16 * DAY_S
NOW_S = 1_700_000_000.0
BAD_VISIT = ("hc.visits", 2, 41)
LATER_VISIT = ("hc.visits", 2, 97)


def _ms(seconds: float) -> int:
    return int(seconds * 1000)


def _expired_count() -> float:
    return REGISTRY.get_sample_value("healthcode_dead_letters_expired_total") or 0.0


def _rebuilt(
    letters_found: list[tuple[str, int, int]], truncated: bool, retention_s: int | None = RETENTION_S
) -> LetterLedger:
    """The ledger a rebuild has after reading the dead-letter topic at NOW_S."""
    ledger = LetterLedger(retention_s)
    for position in letters_found:
        ledger.found(position)
    ledger.loaded(truncated, NOW_S)
    return ledger


def test_a_first_run_letters_each_bad_input_once() -> None:
    ledger = _rebuilt([], truncated=False)
    assert ledger.due(BAD_VISIT, _ms(NOW_S - DAY_S))
    assert not ledger.due(BAD_VISIT, _ms(NOW_S - DAY_S)), "read again in the same run: not twice"


def test_a_rebuild_skips_inputs_whose_letters_it_found() -> None:
    ledger = _rebuilt([BAD_VISIT], truncated=True)
    assert not ledger.due(BAD_VISIT, _ms(NOW_S - DAY_S))
    assert ledger.due(LATER_VISIT, _ms(NOW_S - DAY_S)), "a recent bad input without a letter was never reported"


def test_a_rebuild_does_not_letter_again_an_input_whose_letter_retention_deleted() -> None:
    # The visit arrived 20 days ago and was lettered then; the topic keeps 16 days and has
    # lost its oldest messages, that letter among them.
    before = _expired_count()
    ledger = _rebuilt([LATER_VISIT], truncated=True)
    assert not ledger.due(BAD_VISIT, _ms(NOW_S - 20 * DAY_S))
    assert not ledger.due(BAD_VISIT, _ms(NOW_S - 20 * DAY_S))
    assert _expired_count() == before + 1, "counted once per rebuild, not per read"


def test_only_inputs_older_than_the_retention_can_have_lost_their_letter() -> None:
    # A letter is written after its input arrived, and Kafka deletes only letters older than
    # the retention: an input that arrived within it still has its letter if it ever had one.
    ledger = _rebuilt([], truncated=True)
    assert ledger.due(BAD_VISIT, _ms(NOW_S - RETENTION_S + 60))
    assert not ledger.due(LATER_VISIT, _ms(NOW_S - RETENTION_S - 60))


def test_an_old_input_is_lettered_when_the_topic_has_lost_nothing() -> None:
    # Nothing deleted (retention not reached yet, or a broker that keeps everything):
    # a bad input without a letter was never reported, however old.
    assert _rebuilt([], truncated=False).due(BAD_VISIT, _ms(NOW_S - 400 * DAY_S))


def test_letters_kept_for_good_are_never_assumed_expired() -> None:
    assert _rebuilt([], truncated=True, retention_s=None).due(BAD_VISIT, _ms(NOW_S - 400 * DAY_S))
