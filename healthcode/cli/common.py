"""Helpers shared by the CLI modules: consoles, progress bars, the configured broker."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

from streams.topics import Topics

out = Console(highlight=False)
err = Console(stderr=True, highlight=False)


@contextmanager
def progress(description: str, total: float | None, min_total: float = 20_000) -> Iterator[Progress]:
    """A progress bar on stderr; yields the Progress with one task (id 0) to advance.

    Work smaller than `min_total` gets no bar: it finishes before a bar would help.
    """
    bar = Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
        console=err,
        transient=False,
        disable=total is not None and total < min_total,
    )
    with bar:
        bar.add_task(description, total=total)
        yield bar


def configured_bootstrap() -> str:
    """The bootstrap servers `HEALTHCODE_BROKER` points at (exit 2 with advice when none)."""
    from healthcode.config import get_settings, kafka_bootstrap

    return kafka_bootstrap(get_settings())


def configured_topics() -> Topics:
    """The topic names under the configured prefix."""
    from healthcode.config import get_settings

    return Topics(get_settings().topic_prefix)
