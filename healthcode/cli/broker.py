"""`healthcode broker start|stop|status`: the embedded Kafka-protocol broker."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from healthcode.broker import EmbeddedBroker, record_state, running_broker, stop_recorded
from healthcode.cli.common import out, shown
from healthcode.config import get_settings
from healthcode.errors import EnvironmentProblem

broker_app = typer.Typer(
    help=(
        "Run the embedded broker (Tansu, memory only) for development, tests and the demo.\n\n"
        "Example: `healthcode broker start --port 19092`, then "
        "`export HEALTHCODE_BROKER=kafka://127.0.0.1:19092`."
    ),
    no_args_is_help=True,
)


def _print_state(verb: str, bootstrap: str, setting: str, pid: int, log_path: str) -> None:
    out.print(f"{verb} embedded broker (pid {pid})")
    out.print(f"bootstrap: {shown(bootstrap)}")
    out.print(f"HEALTHCODE_BROKER={shown(setting)}")
    out.print(f"log: {shown(log_path)}")


@broker_app.command()
def start(
    port: Optional[int] = typer.Option(None, help="loopback port; a free one when omitted"),
    log: Optional[Path] = typer.Option(None, help="log file (default DATA_DIR/broker-PORT.log)"),
    timeout: float = typer.Option(30.0, help="seconds to wait until it answers a metadata request"),
) -> None:
    """Start the broker in the background; returns once it answers Kafka metadata requests.

    Example: `healthcode broker start --port 19092`, then
    `export HEALTHCODE_BROKER=kafka://127.0.0.1:19092` (or leave HEALTHCODE_BROKER=embedded).
    """
    data_dir = get_settings().data_dir
    existing = running_broker(data_dir)
    if existing is not None:
        raise EnvironmentProblem(
            f"an embedded broker is already running at {existing.bootstrap} (pid {existing.pid}); "
            "stop it first with `healthcode broker stop`"
        )
    broker = EmbeddedBroker(port=port, log_path=log, attached=False, log_dir=data_dir)
    state = broker.start(timeout=timeout)
    record_state(data_dir, state)
    _print_state("started", state.bootstrap, state.broker_setting, state.pid, state.log_path)


@broker_app.command()
def status() -> None:
    """Show the running broker's address; exit 1 when none is running.

    Example: `healthcode broker status || healthcode broker start`
    """
    state = running_broker(get_settings().data_dir)
    if state is None:
        out.print("no embedded broker is running")
        raise typer.Exit(1)
    _print_state("running", state.bootstrap, state.broker_setting, state.pid, state.log_path)


@broker_app.command()
def stop(timeout: float = typer.Option(5.0, help="seconds between SIGTERM and SIGKILL")) -> None:
    """Stop the broker that `start` left running (SIGTERM, then SIGKILL).

    Example: `healthcode broker stop --timeout 10`
    """
    state = stop_recorded(get_settings().data_dir, timeout)
    if state is None:
        out.print("no embedded broker is running")
        return
    out.print(f"stopped embedded broker at {state.bootstrap} (pid {state.pid})")


def register(app: typer.Typer) -> None:
    """Add the `broker` group."""
    app.add_typer(broker_app, name="broker")
