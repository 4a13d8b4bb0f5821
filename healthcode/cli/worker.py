"""`healthcode worker` and `healthcode codes tail`: run the pipeline and read what it publishes."""

from __future__ import annotations

import asyncio
import signal
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Optional

import orjson
import typer

from healthcode.cli.common import configured_bootstrap, configured_topics, err
from healthcode.cli.rules import load_rules
from healthcode.config import get_settings
from healthcode.errors import EnvironmentProblem
from scoring.timeutil import parse_duration

if TYPE_CHECKING:
    from streams.worker import Worker

codes_app = typer.Typer(
    help="Read the signed codes the workers publish.\n\nExample: `healthcode codes tail --out codes.jsonl`.",
    no_args_is_help=True,
)


def worker(
    data_dir: Optional[Path] = typer.Option(
        None, help="directory for this worker's status file, worker.json (default: HEALTHCODE_DATA_DIR)"
    ),
    web_port: int = typer.Option(0, help="port of /healthz, /metrics and /persons/{pseudonym}/code (0: none)"),
    rules: Optional[Path] = typer.Option(None, help="rule set until one is published (default: config)"),
) -> None:
    """Run one pipeline worker on the broker HEALTHCODE_BROKER names, until Ctrl-C or SIGTERM.

    Example: `HEALTHCODE_KEY_DIR=keys healthcode worker --web-port 8080`. Start more
    workers with the same settings to share the partitions.
    """
    from codes import load_signing_keys
    from streams.worker import Worker, WorkerConfig

    settings = get_settings()
    if settings.key_dir is None:
        raise EnvironmentProblem("set HEALTHCODE_KEY_DIR to a key directory (`healthcode keys generate --out DIR`)")
    keys = load_signing_keys(settings.key_dir)
    if not keys:
        raise EnvironmentProblem(f"no signing key in {settings.key_dir}: run `healthcode keys generate --out {settings.key_dir}`")
    config = WorkerConfig(
        bootstrap=configured_bootstrap(),
        topics=configured_topics(),
        group=settings.group,
        rules=load_rules(rules or settings.rules_file),
        keys=keys,
        partitions=settings.partitions,
        issuer=settings.issuer,
        code_validity_s=parse_duration(settings.code_validity),
        lateness_s=parse_duration(settings.allowed_lateness),
        idle_s=settings.idle_timeout,
        batch_size=settings.batch_size,
        session_timeout_ms=int(settings.session_timeout * 1000),
        heartbeat_interval_ms=int(settings.heartbeat_interval * 1000),
        status_file=_status_file(data_dir or settings.data_dir),
    )
    asyncio.run(_serve(Worker(config), web_port, settings.partitions))


def _status_file(directory: Path) -> Path:
    try:
        directory.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise EnvironmentProblem(f"cannot use {directory} as the worker's directory: {error.strerror}") from None
    return directory / "worker.json"


async def _serve(running: Worker, web_port: int, partitions: int) -> None:
    from aiohttp import web

    from streams.web import make_app

    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    runner = None
    if web_port:
        runner = web.AppRunner(make_app(running.view, partitions))
        await runner.setup()
        await web.TCPSite(runner, "127.0.0.1", web_port).start()
        err.print(f"web: http://127.0.0.1:{web_port}/healthz")
    err.print(f"worker started under {running.config.rules.ref}; Ctrl-C stops it")
    try:
        await running.run(stop)
    finally:
        if runner is not None:
            await runner.cleanup()
    err.print("worker stopped")


@codes_app.command()
def tail(
    follow: bool = typer.Option(False, "--follow", "-f", help="keep reading new codes until Ctrl-C"),
    out: Optional[Path] = typer.Option(None, help="write the code records as JSON lines to this file"),
    idle: float = typer.Option(3.0, help="without --follow: stop after this many seconds with nothing new"),
) -> None:
    """Print the code records on the codes topic (without --follow: everything so far, then exit)."""
    from streams.codes_reader import read_codes

    sink = open(out, "wb") if out else sys.stdout.buffer
    try:
        for record in read_codes(configured_bootstrap(), configured_topics(), follow=follow, idle_s=idle):
            sink.write(orjson.dumps(record) + b"\n")
            sink.flush()
    except KeyboardInterrupt:
        pass
    finally:
        if out:
            sink.close()


def register(app: typer.Typer) -> None:
    """Add `worker` and the `codes` group."""
    app.command("worker")(worker)
    app.add_typer(codes_app, name="codes")
