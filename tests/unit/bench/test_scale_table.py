"""`python -m bench.scale`'s table: one row a run, rates from its times, replay's verdict spelt out."""

from __future__ import annotations

from bench.scale import Run, lines_differing, table


def test_each_run_is_a_row_with_per_worker_figures_and_a_failed_replay_check_stands_out_with_what_differs() -> None:
    equal = Run(pipeline="staged", events=100_000, ready_s=5.0, publish_s=4.0, settled_s=22.0,
                pings=(40_000.0, 50_000.0), taken=(45_000.0, 55_000.0), cpu_s=(3.0, 5.0), equal=True, differing=0,
                late=0, redundant=0, codes=321)
    unequal = Run(pipeline="unsplit", events=100_000, ready_s=4.0, publish_s=3.5, settled_s=12.0, pings=(90_000.0,),
                  taken=(100_000.0,), cpu_s=(4.0,), equal=False, differing=5, late=18, redundant=3,
                  codes=330)

    header, rule, *rows = table([equal, unequal]).splitlines()

    assert header.count("|") == rule.count("|")
    assert rows[0] == "| staged | 2 | 40,000 / 50,000 | 4,545 (5,000) | 15,000 / 11,000 | 5.0 / 4.0 / 22.0 | 321 | yes |"
    assert rows[1] == ("| unsplit | 1 | 90,000 | 8,333 (10,000) | 25,000 | 4.0 / 3.5 / 12.0 | 330 "
                       "| **NO**, 5 lines differ, 18 late events, 3 records sent twice |")


def test_lines_differing_counts_lines_missing_extra_and_changed_whatever_the_order() -> None:
    replay = [{"person": "a", "assessed_at": "t1", "level": "yellow"}, {"person": "b", "assessed_at": "t2", "level": "red"}]

    assert lines_differing(list(reversed(replay)), replay) == 0
    assert lines_differing(replay[:1], replay) == 1
    assert lines_differing(replay + [{"person": "c", "assessed_at": "t3", "level": "red"}], replay) == 1
    assert lines_differing([replay[0], {**replay[1], "level": "yellow"}], replay) == 2
