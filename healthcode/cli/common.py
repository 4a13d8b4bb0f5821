"""Helpers shared by the CLI modules: consoles, safe echoing of input, progress bars, the configured broker.

Everything the CLI prints goes through `out` or `err`. They never let input steer the
terminal: control characters are shown as escapes (`\\u001b`), emoji codes are left as
typed, and text from input is put into markup only through `shown()`. When output
goes to a file or a pipe it is not wrapped at a made-up width.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

import orjson
from rich.console import Console, ConsoleDimensions
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn
from rich.text import Text

from streams.topics import Topics

if TYPE_CHECKING:
    from scoring.eventfile import Inputs

# Lines written to a file or pipe are as long as they are: the width only bounds tables.
UNWRAPPED_WIDTH = 10_000
# C0 controls but newline and tab, DEL, C1 controls, and the bidirectional overrides and
# isolates that reorder what a terminal shows ("Trojan Source").
_CONTROLS = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u200e\u200f\u202a-\u202e\u2066-\u2069]")


def controls_escaped(text: str) -> str:
    """`text` with every control character written as an escape, `\\u001b`: readable, and
    still valid inside a JSON string."""
    return _CONTROLS.sub(lambda found: f"\\u{ord(found.group()):04x}", text)


def json_line(value: object) -> bytes:
    """`value` as one line of JSON for a terminal or a file: orjson escapes C0 controls inside
    strings but leaves C1 and bidirectional ones raw; they become `\\u` escapes too."""
    return controls_escaped(orjson.dumps(value).decode()).encode() + b"\n"


def shown(value: object) -> str:
    """Input as it may be put into a markup string: controls escaped, `[...]` taken literally."""
    return escape(controls_escaped(str(value)))


class SafeConsole(Console):
    """A rich Console that shows control characters as escapes and does not wrap non-terminals.

    Control characters never form markup, so escaping them before markup is parsed
    keeps the command's own styles and disarms the input's.
    """

    def render_str(self, text: str, **options: Any) -> Text:
        return super().render_str(controls_escaped(text), **options)

    @property
    def size(self) -> ConsoleDimensions:
        size = super().size
        if self._width is None and "COLUMNS" not in os.environ and not self.is_terminal:
            return ConsoleDimensions(UNWRAPPED_WIDTH, size.height)
        return size

    @size.setter
    def size(self, new_size: tuple[int, int]) -> None:
        self._width, self._height = new_size


out = SafeConsole(highlight=False, emoji=False)
err = SafeConsole(stderr=True, highlight=False, emoji=False)


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


def read_event_file(source: str, shown_malformed: int, now: int | None = None) -> Inputs:
    """The events of a JSONL file, `-` (stdin) or a `.parquet` file, as replay reads them.

    Events beyond the configured limits (`HEALTHCODE_EARLIEST_EVENT_TIME`, the area bounds,
    and `HEALTHCODE_EVENT_TIME_AHEAD` past `now` when given) are skipped as intake
    dead-letters them. Malformed lines (rows) are reported on stderr, the first
    `shown_malformed` of them with their numbers and reasons; a file that cannot be read
    is exit 2.
    """
    import pyarrow as pa

    from healthcode.config import get_settings
    from healthcode.errors import EnvironmentProblem
    from scoring.eventfile import input_size, read_events

    limits = get_settings().event_limits()

    try:
        total = input_size(source)
        # Progress counts rows of Parquet but bytes of JSONL: show a bar for about 200k events or more.
        smallest = 200_000 if source.endswith(".parquet") else 200_000 * 150
        with progress("reading", total, min_total=smallest) as bar:
            inputs = read_events(source, lambda done: bar.update(0, completed=done), limits, now)
    except OSError as error:
        raise EnvironmentProblem(f"cannot read {source}: {error.strerror or error}") from None
    except pa.ArrowException as error:
        raise EnvironmentProblem(f"cannot read {source} as Parquet: {error}") from None
    for bad in inputs.malformed[:shown_malformed]:
        err.print(f"line {bad.line}: skipped: {bad.reason}", soft_wrap=True, markup=False)
    if len(inputs.malformed) > shown_malformed:
        err.print(f"... and {len(inputs.malformed) - shown_malformed} more malformed lines")
    return inputs


def configured_bootstrap() -> str:
    """The bootstrap servers `HEALTHCODE_BROKER` points at (exit 2 with advice when none)."""
    from healthcode.config import get_settings, kafka_bootstrap

    return kafka_bootstrap(get_settings())


def configured_topics() -> Topics:
    """The topic names under the configured prefix."""
    from healthcode.config import get_settings

    return Topics(get_settings().topic_prefix)


def require_usable_topics(bootstrap: str, topics: Topics, partitions: int | None) -> None:
    """Refuse (exit 2) unless every topic exists, with the layout workers need for `partitions`
    (None: whatever layout, for a publisher, whose keyed messages find their partition anyway).

    Checked before a worker starts or a publisher writes, because writing to a missing
    topic makes the broker create it with its default layout (the embedded broker does so
    even when the client asks it not to), which workers then cannot use.
    """
    from healthcode.errors import EnvironmentProblem
    from streams.admin import describe_layout, layout_problems
    from streams.reading import TopicUnavailable

    try:
        layout = describe_layout(bootstrap, topics)
    except TopicUnavailable as error:
        raise EnvironmentProblem(str(error)) from None
    if not layout:
        raise EnvironmentProblem(
            f"no topic {topics.prefix}* exists on {bootstrap}: create the topics with `healthcode topics create`, "
            "or check HEALTHCODE_TOPIC_PREFIX"
        )
    problems = layout_problems(layout, topics, partitions)
    if problems:
        raise EnvironmentProblem(
            f"the topics cannot be used: {'; '.join(problems)}. Run `healthcode topics create` "
            "(a topic with the wrong layout must be deleted first), or check HEALTHCODE_TOPIC_PREFIX and HEALTHCODE_PARTITIONS"
        )
