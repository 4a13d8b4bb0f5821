"""`healthcode simulate` and `healthcode publish`: the synthetic city and its event streams."""

from __future__ import annotations

import time
from datetime import date
from enum import Enum
from pathlib import Path
from typing import TYPE_CHECKING

import typer
import yaml
from rich.table import Table

from healthcode.cli.common import configured_bootstrap, configured_topics, err, out, progress, require_usable_topics
from healthcode.errors import CheckFailed, EnvironmentProblem
from healthcode.simsettings import load_simulation_config
from simulators.config import ORDER_FAULTS, FaultConfig

if TYPE_CHECKING:
    from simulators.publish import KafkaSink, Publisher

_SHOWN_SKIPPED = 20


class Format(str, Enum):
    jsonl = "jsonl"
    parquet = "parquet"


def _check_speed(text: str) -> str:
    _speed(text)
    return text


def _speed(text: str) -> float | None:
    if text == "max":
        return None
    try:
        value = float(text)
    except ValueError:
        raise typer.BadParameter("a factor such as 60, or `max`") from None
    if value <= 0:
        raise typer.BadParameter("must be positive, or `max`")
    return value


def _first_day(text: str) -> date:
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise typer.BadParameter(f"{text!r} is not a date like 2022-04-01", param_hint="--start") from None


def _connect(speed: float | None) -> tuple[Publisher, KafkaSink]:
    from kafka.errors import KafkaError

    from simulators.publish import kafka_publisher

    bootstrap, topics = configured_bootstrap(), configured_topics()
    # Also fails fast (a few seconds) on an unreachable broker, before any event is simulated or read.
    require_usable_topics(bootstrap, topics, partitions=None)
    try:
        return kafka_publisher(bootstrap, topics, speed)
    except KafkaError as error:
        raise EnvironmentProblem(f"cannot reach the broker at {bootstrap}: {error}") from None


def _unsent(publisher: Publisher, sink: KafkaSink) -> None:
    """Report the lines not published (exit 1): too large to send, or refused by the broker."""
    for skipped in publisher.skipped[:_SHOWN_SKIPPED]:
        err.print(f"line {skipped.line}: skipped: {skipped.reason}", soft_wrap=True, markup=False)
    if len(publisher.skipped) > _SHOWN_SKIPPED:
        err.print(f"... and {len(publisher.skipped) - _SHOWN_SKIPPED} more skipped lines")
    problems = []
    if publisher.skipped:
        problems.append(f"{len(publisher.skipped):,} line(s) skipped")
    if sink.failed:
        problems.append(f"{sink.failed:,} message(s) refused by the broker (last: {sink.last_error})")
    if problems:
        raise CheckFailed(f"not everything was published: {'; '.join(problems)}")


def _summary_table(summary: dict[str, object], extra: dict[str, str]) -> Table:
    table = Table(title="simulation summary", show_header=False, title_justify="left")
    table.add_column(style="bold")
    table.add_column(justify="right")
    for label in ("residents", "days", "seed", "initial_infections", "infections", "cases_detected"):
        table.add_row(label.replace("_", " "), f"{summary[label]:,}")
    for name, count in summary["events"].items():  # type: ignore[union-attr]
        table.add_row(f"events: {name}", f"{count:,}")
    table.add_row("events: total", f"{summary['events_total']:,}")
    for name, count in summary["faults"].items():  # type: ignore[union-attr]
        table.add_row(f"faults: {name}", f"{count:,}")
    for label, value in extra.items():
        table.add_row(label, value)
    return table


def simulate(
    out_dir: Path | None = typer.Option(
        None, "--out", "-o", help="directory for events, faults, truth.parquet and city.json (required)"
    ),
    residents: int | None = typer.Option(None, min=10, help="people living in the city (default 10000)"),
    days: int | None = typer.Option(None, min=1, help="days to simulate (default 14)"),
    seed: int | None = typer.Option(None, min=0, help="random seed; the same seed gives the same bytes (default 7)"),
    start: str | None = typer.Option(None, help="first day, YYYY-MM-DD, from local midnight (default 2022-04-01)"),
    ping_interval: int | None = typer.Option(None, min=1, help="minutes between a device's pings (default 15)"),
    output_format: Format = typer.Option(Format.jsonl, "--format", help="events as JSON lines or Parquet"),
    faults: float | None = typer.Option(None, min=0.0, max=0.5, help="share of events given a fault, e.g. 0.01"),
    config_file: Path | None = typer.Option(
        None, "--config", help="YAML with any simulation setting (see simulators/config.py)"
    ),
    publish: bool = typer.Option(False, "--publish", help="also publish the events to the configured broker"),
    speed: str = typer.Option(
        "max",
        callback=_check_speed,
        help="with --publish: event time runs this many times faster than real time, or `max`",
    ),
    plot_file: Path | None = typer.Option(None, "--plot", help="write a PNG of infections, cases and designations"),
    show_config: bool = typer.Option(
        False, "--show-config", help="print every effective setting as YAML (a start for --config) and exit"
    ),
) -> None:
    """Simulate a city with a known ground truth and write (or publish) its event streams.

    Example: `healthcode simulate --residents 10000 --days 14 --seed 7 --out sim/`
    writes sim/events.jsonl (arrival order), sim/faults.jsonl, sim/truth.parquet and
    sim/city.json. `--show-config > city.yaml` prints every model setting to edit and
    pass back with `--config city.yaml`. Add `--publish --speed 60` to stream the events to the broker at 60x
    real time, `--faults 0.01` to break 1% of them, `--plot sim/run.png` for a picture.
    """
    from simulators.output import write_run
    from simulators.plot import plot, timeline
    from simulators.run import Simulation

    overrides: dict[str, object] = {
        "residents": residents,
        "days": days,
        "seed": seed,
        "start": _first_day(start) if start else None,
        "fault_share": faults,
        "ping_interval": ping_interval,
    }
    config = load_simulation_config(config_file, overrides)
    if show_config:
        out.print(yaml.safe_dump(config.model_dump(mode="json"), sort_keys=False), end="")
        return
    if out_dir is None:
        raise typer.BadParameter("where should the run go? give a directory", param_hint="--out")
    parquet = output_format is Format.parquet
    if parquet and config.faults.share and set(config.faults.kinds) - set(ORDER_FAULTS):
        err.print("note: Parquet columns are typed, so only duplicate, late and out_of_order faults are injected")
        config = config.model_copy(
            update={"faults": FaultConfig(**{**config.faults.model_dump(), "kinds": ORDER_FAULTS})}
        )
    publisher, sink = _connect(_speed(speed)) if publish else (None, None)

    began = time.perf_counter()
    simulation = Simulation(config)
    try:
        with progress("simulating (person-days)", config.residents * config.days) as bar:
            events_file = write_run(
                simulation,
                out_dir,
                parquet=parquet,
                also=publisher.publish_chunk if publisher is not None else None,
                after_block=lambda block: bar.update(0, completed=min(block.day + 1, config.days) * config.residents),
            )
    except OSError as error:
        raise EnvironmentProblem(f"cannot write to {out_dir}: {error.strerror or error}") from None
    finally:
        if sink is not None:
            sink.close()
    if plot_file is not None:
        plot(timeline(simulation), plot_file)
    elapsed = time.perf_counter() - began
    summary = simulation.summary()
    extra = {
        "events file": str(events_file),
        "seconds": f"{elapsed:.1f}",
        "events/s": f"{summary['events_total'] / elapsed:,.0f}",
    }
    if publisher is not None:
        extra.update({f"published to {topic}": f"{count:,}" for topic, count in sorted(publisher.sent.items())})
    if plot_file is not None:
        extra["plot"] = str(plot_file)
    out.print(_summary_table(summary, extra))
    if publisher is not None and sink is not None:
        _unsent(publisher, sink)


def publish_file(
    file: Path = typer.Argument(..., help="events.jsonl written by `healthcode simulate` (or any JSONL feed)"),
    speed: str = typer.Option(
        "max", callback=_check_speed, help="event time runs this many times faster than real time, or `max`"
    ),
) -> None:
    """Publish a recorded JSONL file to the broker, line by line as it is (faults included).

    Each line goes to the topic of its type (pings, visits, areas) keyed by its person
    or area; a line that does not parse still goes out, so the pipeline dead-letters it.
    A line too large for a Kafka message (over 1 MB) is skipped and reported with its
    number, the rest is sent, and the exit status is 1. The topics must exist
    (`healthcode topics create`): a broker would create missing ones with a layout
    workers cannot use.

    Example: `healthcode publish sim/events.jsonl --speed 60`.
    """
    if file.suffix == ".parquet":
        raise EnvironmentProblem("publish reads JSON lines; write them with `healthcode simulate --format jsonl`")
    try:
        total = file.stat().st_size
        handle = file.open("rb")
    except OSError as error:
        raise EnvironmentProblem(f"cannot read {file}: {error.strerror}") from None
    publisher, sink = _connect(_speed(speed))
    began = time.perf_counter()
    try:
        with handle, progress("publishing (bytes)", total) as bar:
            done = 0
            for line in handle:
                publisher.publish((line,))
                done += len(line)
                if publisher.sent.total() % 10_000 == 0:
                    bar.update(0, completed=done)
            bar.update(0, completed=total)
    finally:
        sink.close()
    elapsed = time.perf_counter() - began
    for topic, count in sorted(publisher.sent.items()):
        out.print(f"{topic}: {count:,}")
    sent = publisher.sent.total()
    out.print(f"published {sent:,} messages in {elapsed:.1f} s ({sent / max(elapsed, 1e-9):,.0f}/s)")
    _unsent(publisher, sink)


def register(app: typer.Typer) -> None:
    """Add the `simulate` and `publish` commands."""
    app.command("simulate")(simulate)
    app.command("publish")(publish_file)
