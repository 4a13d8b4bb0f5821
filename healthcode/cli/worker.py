"""`healthcode worker` and `healthcode codes tail`: run the pipeline and read what it publishes."""

from __future__ import annotations

import signal
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any, Optional, TypeVar

import typer

from healthcode.cli.common import configured_bootstrap, configured_topics, err, json_line, require_usable_topics
from healthcode.rulefiles import load_rules
from healthcode.config import get_settings
from healthcode.errors import EnvironmentProblem
from healthcode.retention import configured_retention
from scoring.timeutil import parse_duration
from streams.reading import NoSuchTopic, TopicUnavailable

if TYPE_CHECKING:
    from codes import SigningKey
    from streams.step import WorkerConfig

Record = TypeVar("Record")
LOG_REPEAT_S = 10.0
"""At most one log line of a kind per this many seconds (an unreachable broker made about 150 a second)."""

codes_app = typer.Typer(
    help="Read the signed codes the workers publish.\n\nExample: `healthcode codes tail --out codes.jsonl`.",
    no_args_is_help=True,
)


def worker(
    data_dir: Optional[Path] = typer.Option(
        None, help="directory whose workers/ holds this worker's status file, <worker name>.json (default: HEALTHCODE_DATA_DIR)"
    ),
    web_port: int = typer.Option(0, help="port of /healthz, /metrics, /residents/{pseudonym}/code and the page /app/resident (0: none)"),
    rules: Optional[Path] = typer.Option(None, help="rule set until one is published (default: config)"),
) -> None:
    """Run one pipeline worker (a Faust worker) on the broker HEALTHCODE_BROKER names, until Ctrl-C or SIGTERM.

    Example: `HEALTHCODE_KEY_DIR=keys healthcode worker --web-port 8080`. Start more
    workers with the same settings to share the partitions. `faust -A streams.app worker`
    runs the same worker with Faust's own command line.
    """
    from streams.app import run_worker

    config = configured_worker(web_port=web_port, rules=rules, data_dir=data_dir)
    if web_port:
        _check_port(web_port)
    err.print(f"worker starting under {config.rules.ref}; Ctrl-C stops it")
    if web_port:
        err.print(f"web: http://127.0.0.1:{web_port}/healthz")
    code = run_worker(config, _log_config())
    if code == 0:
        err.print("worker stopped")
    raise typer.Exit(code)


def configured_worker(web_port: int = 0, rules: Path | None = None, data_dir: Path | None = None) -> WorkerConfig:
    """The worker's configuration from `HEALTHCODE_*`, checked before any work (`EnvironmentProblem` if unusable)."""
    from streams.step import WorkerConfig

    settings = get_settings()
    keys = _signing_keys(settings.key_dir)
    assert settings.key_dir is not None
    secrets, reference = _secrets(settings.key_dir)
    token_rate, client_rate = settings.rate_policies()
    require_usable_topics(configured_bootstrap(), configured_topics(), settings.partitions)
    return WorkerConfig(
        bootstrap=configured_bootstrap(),
        topics=configured_topics(),
        group=settings.group,
        rules=load_rules(rules or settings.rules_file),
        keys=keys,
        resident_secrets=secrets,
        reference_secret=reference,
        token_rate=token_rate,
        client_rate=client_rate,
        partitions=settings.partitions,
        issuer=settings.issuer,
        code_validity_s=parse_duration(settings.code_validity),
        lateness_s=parse_duration(settings.allowed_lateness),
        idle_s=settings.idle_timeout,
        live=settings.live,
        limits=settings.event_limits(),
        batch_size=settings.batch_size,
        batch_timeout_s=settings.batch_timeout,
        commit_interval_s=settings.commit_interval,
        session_timeout_ms=int(settings.session_timeout * 1000),
        heartbeat_interval_ms=int(settings.heartbeat_interval * 1000),
        dead_letter_retention_s=configured_retention(settings).dead_letters_s,
        status_dir=_status_dir(data_dir or settings.data_dir),
        stall_timeout_s=settings.stall_timeout,
        web_port=web_port,
        web_image_limit=settings.web_image_limit,
        data_dir=data_dir or settings.data_dir,
        snapshot_every_s=settings.snapshot_every,
        stages=settings.stages,
    )


def _check_port(port: int) -> None:
    """Refuse a port that is taken now, with a one-line reason, rather than a Faust traceback later."""
    import socket

    with socket.socket() as probe:
        try:
            probe.bind(("127.0.0.1", port))
        except OSError as error:
            raise EnvironmentProblem(f"cannot serve on port {port}: {error.strerror}") from None


def _signing_keys(key_dir: Path | None) -> list[SigningKey]:
    """The keys in `key_dir`, checked before any work: one must be able to sign now."""
    from codes import KeyProblem, KeyStoreError, load_signing_keys, signing_key_at

    if key_dir is None:
        raise EnvironmentProblem("set HEALTHCODE_KEY_DIR to a key directory (`healthcode keys generate --out DIR`)")
    try:
        keys = load_signing_keys(key_dir)
    except KeyStoreError as error:
        raise EnvironmentProblem(f"cannot use the signing keys: {error}") from None
    if not keys:
        raise EnvironmentProblem(f"no signing key in {key_dir}: run `healthcode keys generate --out {key_dir}`")
    try:
        signing_key_at(keys, int(time.time()))
    except KeyProblem as error:
        raise EnvironmentProblem(f"{key_dir}: {error}") from None
    return keys


def _secrets(key_dir: Path) -> tuple[list[bytes], bytes]:
    """The resident secrets and the reference secret kept with the keys (made on first use)."""
    from codes.keystore import KeyStoreError, reference_secret, resident_secrets

    try:
        return resident_secrets(key_dir), reference_secret(key_dir)
    except (KeyStoreError, OSError) as error:
        raise EnvironmentProblem(f"cannot use the secrets in {key_dir}: {error}") from None


def _status_dir(directory: Path) -> Path:
    """`directory`/workers, where each worker keeps a status file of its own (workers share data directories)."""
    try:
        (directory / "workers").mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise EnvironmentProblem(f"cannot use {directory} as the worker's directory: {error.strerror}") from None
    return directory / "workers"


def _log_config() -> dict[str, Any]:
    """Warnings and errors to stderr, at most one line of a kind per `LOG_REPEAT_S` (see `Throttle`),
    as a `logging.config.dictConfig` for the Faust worker (which sets up logging itself)."""
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "filters": {"throttle": {"()": "streams.logthrottle.Throttle", "interval_s": LOG_REPEAT_S}},
        "formatters": {"line": {"format": "%(asctime)s %(levelname)s %(name)s: %(message)s"}},
        "handlers": {"stderr": {"class": "logging.StreamHandler", "stream": "ext://sys.stderr",
                                "formatter": "line", "filters": ["throttle"]}},
        "root": {"level": "WARNING", "handlers": ["stderr"]},
    }


@codes_app.command()
def tail(
    follow: bool = typer.Option(False, "--follow", "-f", help="keep reading new codes until Ctrl-C"),
    out: Optional[Path] = typer.Option(None, help="write the code records as JSON lines to this file"),
    idle: float = typer.Option(3.0, help="without --follow: stop after this many seconds with nothing new"),
) -> None:
    """Print the code records on the codes topic as JSON lines (without --follow: everything so far, then exit).

    Example: `healthcode codes tail --follow | jq .level`. Exit 2 when the topic or the
    broker cannot be read.
    """
    from streams.codes_reader import read_codes

    # Ctrl-C ends the read between polls: a KeyboardInterrupt at an arbitrary point inside
    # the Kafka client could leave it unable to close.
    interrupted = threading.Event()
    signal.signal(signal.SIGINT, lambda *_: interrupted.set())
    records = readable(read_codes(
        configured_bootstrap(), configured_topics(), follow=follow, idle_s=idle, stop=interrupted.is_set
    ))
    try:
        sink = open(out, "wb") if out else sys.stdout.buffer
    except OSError as error:
        raise EnvironmentProblem(f"cannot write {out}: {error.strerror}") from None
    try:
        for record in records:
            sink.write(json_line(record))
            sink.flush()
    finally:
        if out:
            sink.close()


def readable(records: Iterator[Record]) -> Iterator[Record]:
    """`records` of a topic, with a topic that cannot be read an `EnvironmentProblem` (exit 2)."""
    try:
        yield from records
    except NoSuchTopic as error:
        raise EnvironmentProblem(
            f"{error}: create the topics with `healthcode topics create`, or check HEALTHCODE_TOPIC_PREFIX"
        ) from None
    except TopicUnavailable as error:
        raise EnvironmentProblem(str(error)) from None


def register(app: typer.Typer) -> None:
    """Add `worker` and the `codes` group."""
    app.command("worker")(worker)
    app.add_typer(codes_app, name="codes")
