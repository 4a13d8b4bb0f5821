"""`python -m bench.scale`'s table: one row a run, rates from its times, replay's verdict spelt out."""

from __future__ import annotations

from bench.scale import Run, table


def test_each_run_is_a_row_with_per_worker_figures_and_a_failed_replay_check_stands_out() -> None:
    equal = Run(pipeline="staged", events=100_000, ready_s=5.0, publish_s=4.0, settled_s=22.0,
                pings=(40_000.0, 50_000.0), taken=(45_000.0, 55_000.0), cpu_s=(3.0, 5.0), equal=True, redundant=0,
                codes=321)
    unequal = Run(pipeline="unsplit", events=100_000, ready_s=4.0, publish_s=3.5, settled_s=12.0, pings=(90_000.0,),
                  taken=(100_000.0,), cpu_s=(4.0,), equal=False, redundant=3, codes=330)

    header, rule, *rows = table([equal, unequal]).splitlines()

    assert header.count("|") == rule.count("|")
    assert rows[0] == "| staged | 2 | 40,000 / 50,000 | 4,545 (5,000) | 15,000 / 11,000 | 5.0 / 4.0 / 22.0 | 321 | yes |"
    assert rows[1] == ("| unsplit | 1 | 90,000 | 8,333 (10,000) | 25,000 | 4.0 / 3.5 / 12.0 | 330 "
                       "| **NO**, 3 records sent twice |")
