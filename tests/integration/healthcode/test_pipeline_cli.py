"""`healthcode rules publish|active`, `healthcode codes tail` and `healthcode worker` on the real broker.

Every command runs as the operator runs it: a `healthcode` process configured by
`HEALTHCODE_*` variables, under a topic prefix of its own.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import orjson
import pytest
import yaml
from kafka import KafkaProducer

from codes import Algorithm, SigningKey, generate_signing_key
from codes.keystore import save_key
from healthcode.broker import EmbeddedBroker, free_port
from healthcode.workers import WorkerProcess
from scoring.rules import load_rule_set
from streams.admin import create_topics
from streams.issuing import signed
from streams.reading import read_from_start
from streams.rulebook import read_rule_set
from streams.topics import Topics
from tests.integration.healthcode.cli_settings import RULES, cli_settings

PARTITIONS = 3


@dataclass(frozen=True)
class Run:
    exit_code: int
    stdout: str
    stderr: str


@dataclass(frozen=True)
class Pipeline:
    """A broker with this test's topics, and `healthcode` configured for them."""

    broker: EmbeddedBroker
    topics: Topics
    settings: dict[str, str]

    def healthcode(self, *args: str, **overrides: str | None) -> Run:
        """Run `healthcode ARGS`; an override of None unsets that variable."""
        env = {**os.environ, **self.settings, **overrides, "COLUMNS": "200"}
        env = {name: value for name, value in env.items() if value is not None}
        done = subprocess.run(
            [sys.executable, "-m", "healthcode.cli.main", *args],
            env=env, capture_output=True, text=True, timeout=60, stdin=subprocess.DEVNULL,
        )
        return Run(done.returncode, done.stdout, done.stderr)

    def on_topic(self, topic: str) -> list:
        return list(read_from_start(self.broker.bootstrap, topic, idle_s=1.0))


@pytest.fixture(scope="module")
def signing_key() -> SigningKey:
    now = int(time.time())
    return generate_signing_key(Algorithm.EDDSA, now - 3600, now + 86400)


@pytest.fixture
def key_dir(signing_key: SigningKey, tmp_path: Path) -> Path:
    save_key(tmp_path / "keys", signing_key)
    return tmp_path / "keys"


@pytest.fixture
def pipeline(broker: EmbeddedBroker, unique: str, tmp_path: Path, key_dir: Path) -> Pipeline:
    topics = Topics(prefix=f"cli{unique}.")
    create_topics(broker.bootstrap, topics, partitions=PARTITIONS)
    settings = cli_settings(broker, topics, PARTITIONS, f"g{unique}", key_dir, tmp_path / "data")
    return Pipeline(broker, topics, settings)


@pytest.fixture
def running_worker(pipeline: Pipeline, tmp_path: Path) -> Iterator[WorkerProcess]:
    """One `healthcode worker` on the (empty) topics, once it has announced itself."""
    worker = WorkerProcess(pipeline.settings, tmp_path / "worker.log")
    announced = tmp_path / "data" / "workers"
    try:
        deadline = time.monotonic() + 30
        while not list(announced.glob("worker-*.json")):
            assert worker.process.poll() is None, worker.log.read_text()
            assert time.monotonic() < deadline, f"the worker never announced itself\n{worker.log.read_text()}"
            time.sleep(0.2)
        yield worker
    finally:
        worker.stop()


def _invalid_rule_set(tmp_path: Path) -> Path:
    bad = tmp_path / "bad.yaml"
    bad.write_text((RULES / "default.yaml").read_text().replace("signal: fever_clinic", "signal: cough"))
    return bad


def test_rules_publish_refuses_an_invalid_rule_set_and_publishes_nothing(pipeline: Pipeline, tmp_path: Path) -> None:
    run = pipeline.healthcode("rules", "publish", str(_invalid_rule_set(tmp_path)))
    assert run.exit_code == 1
    assert "cough" in run.stdout + run.stderr
    assert "Traceback" not in run.stderr
    assert pipeline.on_topic(pipeline.topics.rules) == []


def test_rules_publish_puts_a_valid_rule_set_on_the_rules_topic_once(pipeline: Pipeline) -> None:
    points = load_rule_set(RULES / "points.yaml")
    first = pipeline.healthcode("rules", "publish", str(RULES / "points.yaml"), "--idle", "1")
    assert first.exit_code == 0, first.stderr
    assert f"published {points.ref}" in first.stdout
    again = pipeline.healthcode("rules", "publish", str(RULES / "points.yaml"), "--idle", "1")
    assert again.exit_code == 0, again.stderr
    assert "already published" in again.stdout

    (message,) = pipeline.on_topic(pipeline.topics.rules)
    assert message.key == points.ref.encode()
    assert read_rule_set(message.value).content_hash == points.content_hash


def test_rules_publish_refuses_other_content_under_a_published_id_and_version(
    pipeline: Pipeline, tmp_path: Path
) -> None:
    assert pipeline.healthcode("rules", "publish", str(RULES / "points.yaml"), "--idle", "1").exit_code == 0
    changed = tmp_path / "points.yaml"
    document = yaml.safe_load((RULES / "points.yaml").read_text())
    document["description"] = f"{document['description']} (edited, same version)"
    changed.write_text(yaml.safe_dump(document, sort_keys=False))

    run = pipeline.healthcode("rules", "publish", str(changed), "--idle", "1")
    assert run.exit_code == 1
    assert "already published with other content" in run.stderr
    assert "new version" in run.stderr
    assert len(pipeline.on_topic(pipeline.topics.rules)) == 1


def test_rules_active_exits_1_when_no_worker_runs(pipeline: Pipeline) -> None:
    run = pipeline.healthcode("rules", "active")
    assert run.exit_code == 1
    assert "no worker" in run.stdout


def test_rules_active_shows_a_running_worker_its_rule_sets_and_partitions(
    pipeline: Pipeline, running_worker: WorkerProcess
) -> None:
    run = pipeline.healthcode("rules", "active")
    assert run.exit_code == 0, run.stdout + run.stderr
    row = next(line for line in run.stdout.splitlines() if "worker-" in line)
    assert "default@1.0.0" in row and "0,1,2" in row

    assert pipeline.healthcode("rules", "publish", str(RULES / "points.yaml"), "--idle", "1").exit_code == 0
    deadline = time.monotonic() + 20
    while "points@1.0.0" not in run.stdout:
        assert time.monotonic() < deadline, f"the worker never showed the published rule set:\n{run.stdout}"
        time.sleep(1.0)
        run = pipeline.healthcode("rules", "active")
    assert "default@1.0.0, points@1.0.0" in run.stdout


def test_a_worker_stops_cleanly_on_sigterm(running_worker: WorkerProcess) -> None:
    running_worker.process.terminate()
    assert running_worker.process.wait(timeout=15) == 0
    log = running_worker.log.read_text()
    assert "worker stopped" in log
    assert "Traceback" not in log


def _publish_codes(pipeline: Pipeline, key: SigningKey, count: int) -> list[dict]:
    issued_at = int(time.time())
    records = [
        {"type": "code", **signed(
            {"change_id": f"change-{n}", "person": f"p-{n}", "level": ("green", "yellow", "red")[n % 3],
             "reasons": [], "rule_set": "default@1.0.0", "assessed_at": "2022-04-01T08:00:00Z"},
            key, issuer="healthcode", issued_at=issued_at, validity_s=3600,
        )}
        for n in range(count)
    ]
    producer = KafkaProducer(bootstrap_servers=pipeline.broker.bootstrap)
    for record in records:
        producer.send(pipeline.topics.codes, key=record["person"].encode(), value=orjson.dumps(record))
    # Fences the workers write, and a stranger's bytes: neither is a code.
    producer.send(pipeline.topics.codes, value=b'{"type": "fence", "id": "f"}', partition=0)
    producer.send(pipeline.topics.codes, value=b"\xff not json", partition=1)
    producer.flush()
    producer.close()
    return records


def _by_change(records: list[dict]) -> dict[str, dict]:
    return {record["change_id"]: record for record in records}


def test_codes_tail_prints_every_code_on_the_topic_and_exits(pipeline: Pipeline, signing_key: SigningKey) -> None:
    published = _publish_codes(pipeline, signing_key, 7)
    run = pipeline.healthcode("codes", "tail", "--idle", "1")
    assert run.exit_code == 0, run.stderr
    printed = [orjson.loads(line) for line in run.stdout.splitlines()]
    assert len(printed) == len(published)
    assert _by_change(printed) == _by_change(published)


def test_codes_tail_out_writes_the_codes_as_json_lines(
    pipeline: Pipeline, signing_key: SigningKey, tmp_path: Path
) -> None:
    published = _publish_codes(pipeline, signing_key, 4)
    out = tmp_path / "codes.jsonl"
    run = pipeline.healthcode("codes", "tail", "--idle", "1", "--out", str(out))
    assert run.exit_code == 0, run.stderr
    assert run.stdout == ""
    written = [orjson.loads(line) for line in out.read_bytes().splitlines()]
    assert _by_change(written) == _by_change(published)


def test_codes_tail_follow_prints_codes_published_after_it_started_until_interrupted(
    pipeline: Pipeline, signing_key: SigningKey
) -> None:
    env = {**os.environ, **pipeline.settings}
    follower = subprocess.Popen(
        [sys.executable, "-m", "healthcode.cli.main", "codes", "tail", "--follow", "--idle", "0.5"],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, stdin=subprocess.DEVNULL,
    )
    try:
        time.sleep(3.0)
        assert follower.poll() is None, "tail --follow keeps running through silence"
        published = _publish_codes(pipeline, signing_key, 3)
        printed = [orjson.loads(follower.stdout.readline()) for _ in published]
        assert _by_change(printed) == _by_change(published)
        follower.send_signal(signal.SIGINT)
        assert follower.wait(timeout=15) == 0
        assert b"Traceback" not in follower.stderr.read()
    finally:
        if follower.poll() is None:
            follower.kill()
            follower.wait()


def test_codes_tail_and_rules_active_exit_2_when_the_topics_do_not_exist(pipeline: Pipeline, unique: str) -> None:
    for command in (("codes", "tail", "--idle", "1"), ("rules", "active")):
        run = pipeline.healthcode(*command, HEALTHCODE_TOPIC_PREFIX=f"missing{unique}.")
        assert run.exit_code == 2, command
        assert f"no topic missing{unique}." in run.stderr
        assert "healthcode topics create" in run.stderr
        assert "Traceback" not in run.stderr


def test_codes_tail_exits_2_when_the_broker_does_not_answer(pipeline: Pipeline) -> None:
    run = pipeline.healthcode("codes", "tail", HEALTHCODE_BROKER=f"kafka://127.0.0.1:{free_port()}")
    assert run.exit_code == 2
    assert "cannot reach the broker" in run.stderr
    assert "Traceback" not in run.stderr


def test_codes_tail_exits_2_when_it_cannot_write_its_file(pipeline: Pipeline, tmp_path: Path) -> None:
    run = pipeline.healthcode("codes", "tail", "--idle", "1", "--out", str(tmp_path / "no" / "such" / "dir.jsonl"))
    assert run.exit_code == 2
    assert "cannot write" in run.stderr
    assert "Traceback" not in run.stderr


def _key_dir(kind: str, tmp_path: Path) -> Path | None:
    """A key directory that cannot sign: not set, absent, empty, or holding only an expired key."""
    directory = tmp_path / kind
    if kind == "empty":
        directory.mkdir()
    if kind == "expired":
        now = int(time.time())
        save_key(directory, generate_signing_key(Algorithm.EDDSA, now - 7200, now - 3600))
    return None if kind == "unset" else directory


@pytest.mark.parametrize(
    ("kind", "says"),
    [
        ("unset", "set HEALTHCODE_KEY_DIR"),
        ("absent", "no key directory at"),
        ("empty", "no signing key in"),
        ("expired", "no active signing key is valid"),
    ],
)
def test_worker_without_a_usable_key_dir_exits_2_with_a_clear_message_and_no_traceback(
    pipeline: Pipeline, tmp_path: Path, kind: str, says: str
) -> None:
    keys = _key_dir(kind, tmp_path)
    run = pipeline.healthcode("worker", HEALTHCODE_KEY_DIR=str(keys) if keys else None)
    assert run.exit_code == 2
    assert says in " ".join(run.stderr.split())
    assert "Traceback" not in run.stderr


def test_worker_exits_2_when_the_broker_does_not_answer(pipeline: Pipeline) -> None:
    run = pipeline.healthcode("worker", HEALTHCODE_BROKER=f"kafka://127.0.0.1:{free_port()}")
    assert run.exit_code == 2
    assert "the broker at 127.0.0.1:" in run.stderr
    assert "Traceback" not in run.stderr


def test_worker_exits_2_when_its_web_port_is_taken(pipeline: Pipeline) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        run = pipeline.healthcode("worker", "--web-port", str(port))
    assert run.exit_code == 2
    assert f"cannot serve on port {port}" in run.stderr
    assert "Traceback" not in run.stderr

