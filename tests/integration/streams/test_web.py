"""The worker's web port, as an operator and a resident use it.

Two `healthcode worker` processes share a small published city; once they have
settled, their /healthz, /metrics and /residents/{pseudonym}/code are asked over HTTP.
"""

from __future__ import annotations

import io
import time
import uuid
import xml.etree.ElementTree as ElementTree
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.error import HTTPError
from urllib.request import Request, urlopen

import orjson
import pytest
from aiohttp.test_utils import TestClient, TestServer
from kafka import KafkaProducer
from PIL import Image
from prometheus_client.parser import text_string_to_metric_families

from codes import Level, Reason, SigningKey, TrustList, read_qr, verify
from codes.access import resident_token
from codes.keystore import resident_secrets, save_key
from healthcode.broker import EmbeddedBroker
from healthcode.workers import WorkerProcess, settled, wait_until
from scoring.replay import ReplayResult, replay_file
from scoring.people import PersonChange
from scoring.rules import load_rule_set
from scoring.timeline import Line, change_key, level_at
from scoring.timeutil import format_rfc3339, parse_rfc3339
from streams.codes_reader import read_codes
from streams.topics import Topics
from streams.web import make_app
from streams.app import Pipeline
from streams.step import WorkerConfig, partition_of

RULES = Path(__file__).resolve().parents[3] / "rules" / "default.yaml"
PARTITIONS = 3
# Words that would betray a place or an identity in what a resident is shown.
_PRIVATE_KEYS = {"lat", "lon", "cell", "geometry", "facility", "name", "area"}


@dataclass
class Answer:
    status: int
    content_type: str
    """The media type, without parameters."""
    body: bytes

    def json(self) -> Any:
        return orjson.loads(self.body)


@dataclass
class Deployment:
    """Two settled workers on one published city, and what replay makes of that city."""

    topics: Topics
    workers: list[WorkerProcess]
    replayed: ReplayResult
    secret: bytes
    persons: set[str]
    """Everyone the city's events name."""

    def token(self, person: str) -> str:
        return resident_token(self.secret, person)

    def code(self, worker: WorkerProcess, person: str, query: str = "") -> Answer:
        """`person` asks `worker` for their code with their own token."""
        return self.ask(worker, f"/residents/{person}/code{query}", token=self.token(person))

    def ask(self, worker: WorkerProcess, path: str, method: str = "GET", token: str | None = None) -> Answer:
        headers = {} if token is None else {"Authorization": f"Bearer {token}"}
        request = Request(f"http://127.0.0.1:{worker.port}{path}", method=method, headers=headers)
        try:
            with urlopen(request, timeout=10) as answer:
                return Answer(answer.status, answer.headers.get_content_type(), answer.read())
        except HTTPError as error:
            return Answer(error.code, error.headers.get_content_type(), error.read())

    def owner(self, person: str) -> WorkerProcess:
        partition = partition_of(person, PARTITIONS)
        (found,) = [w for w in self.workers if partition in w.status()["partitions"]]
        return found

    def other_than(self, worker: WorkerProcess) -> WorkerProcess:
        (found,) = [w for w in self.workers if w is not worker]
        return found

    def latest_codes(self) -> dict[str, PersonChange]:
        """Each restricted-at-some-time person's last level change in the replay timeline."""
        return {change.person: change for change in self.replayed.timeline}

    def metrics(self, worker: WorkerProcess) -> dict[str, dict[tuple, float]]:
        """Sample values by metric sample name, then by sorted label pairs."""
        samples: dict[str, dict[tuple, float]] = {}
        for family in text_string_to_metric_families(self.ask(worker, "/metrics").body.decode()):
            for sample in family.samples:
                samples.setdefault(sample.name, {})[tuple(sorted(sample.labels.items()))] = sample.value
        return samples


@pytest.fixture(scope="module")
def deployment(
    broker: EmbeddedBroker, tmp_path_factory: pytest.TempPathFactory, signing_key: SigningKey,
    city_publisher, settings_for,
) -> Iterator[Deployment]:
    directory = tmp_path_factory.mktemp("web")
    unique = uuid.uuid4().hex[:10]
    city = city_publisher(broker.bootstrap, directory, Topics(prefix=f"w{unique}."))
    topics, events = city.topics, city.events
    save_key(directory / "keys", signing_key)
    (secret, *_) = resident_secrets(directory / "keys")
    settings = settings_for(broker.bootstrap, topics, f"g{unique}", directory / "keys")
    settings["HEALTHCODE_DATA_DIR"] = str(directory / "data")
    workers = [WorkerProcess(settings, directory / f"worker-{n}.log") for n in range(2)]
    try:
        replayed = replay_file(events, load_rule_set(RULES))
        through = format_rfc3339(max(c.at for c in replayed.timeline))
        wait_until(
            workers,
            lambda states: all(s["partitions"] for s in states) and settled(states, PARTITIONS, through),
            90,
            "split the partitions and settle",
        )
        persons = {person for person in map(_person_of, events.read_bytes().splitlines()) if person}
        yield Deployment(topics, workers, replayed, secret, persons)
    finally:
        for worker in workers:
            worker.stop()


async def test_a_worker_not_yet_assigned_partitions_answers_healthz_with_503(signing_key: SigningKey) -> None:
    rules = load_rule_set(RULES)
    config = WorkerConfig(
        bootstrap="127.0.0.1:9", topics=Topics(prefix="never."), group="never", rules=rules,
        keys=[signing_key], partitions=PARTITIONS,
    )
    async with TestClient(TestServer(make_app(Pipeline(config).view, config))) as client:
        answer = await client.get("/healthz")
        assert answer.status == 503
        body = await answer.json()
    assert body["ready"] is False
    assert body["partitions"] == []
    assert body["watermark"] is None
    assert body["rule_set"] == rules.ref


def test_ready_workers_answer_healthz_with_their_rule_set_disjoint_partitions_and_watermark(
    deployment: Deployment,
) -> None:
    last_change = format_rfc3339(max(c.at for c in deployment.replayed.timeline))
    answers = [deployment.ask(worker, "/healthz") for worker in deployment.workers]
    assert [a.status for a in answers] == [200, 200]
    bodies = [a.json() for a in answers]
    assert all(b["ready"] and b["rule_set"] == load_rule_set(RULES).ref for b in bodies)
    owned = [p for b in bodies for p in b["partitions"]]
    assert sorted(owned) == list(range(PARTITIONS)), "each partition has exactly one owner"
    assert all(b["watermark"] >= last_change for b in bodies)


def test_metrics_count_events_by_type_dead_letters_by_reason_and_codes_by_level(
    deployment: Deployment, broker: EmbeddedBroker
) -> None:
    scraped = [deployment.metrics(worker) for worker in deployment.workers]

    def total(name: str, **labels: str) -> float:
        return sum(
            value for samples in scraped for key, value in samples.get(name, {}).items()
            if set(labels.items()) <= set(key)
        )

    for event_type in ("ping", "visit", "test_result"):
        assert total("healthcode_events_in_total", type=event_type) > 0, event_type
    dead_kinds = {dict(key)["kind"] for s in scraped for key in s.get("healthcode_dead_lettered_total", {})}
    assert dead_kinds and total("healthcode_dead_lettered_total") > 0
    # Every record on the codes topic is counted by the worker that sent it: the change records,
    # and (timeline contract 2) early escalations and corrections, which replay's timeline folds away.
    per_level = Counter(record["level"] for record in read_codes(broker.bootstrap, deployment.topics))
    assert per_level["red"] > 0
    for level in ("green", "yellow", "red"):
        assert total("healthcode_codes_issued_total", level=level) == per_level[level], level
    assert total("healthcode_event_to_code_seconds_count") == sum(per_level.values())
    for samples in scraped:
        assert "healthcode_late_events_total" in samples
        assert "healthcode_watermark_lag_seconds" in samples
        assert any(key == (("le", "+Inf"),) for key in samples["healthcode_event_to_code_seconds_bucket"])


def test_a_resident_gets_a_code_for_their_level_from_either_worker_that_verifies_and_names_no_place(
    deployment: Deployment, signing_key: SigningKey
) -> None:
    latest = deployment.latest_codes()
    assert latest, "the city must restrict someone"
    trust = TrustList.of([signing_key.info])
    for person, change in sorted(latest.items())[:6]:
        owner = deployment.owner(person)
        through = parse_rfc3339(owner.status()["watermark"])
        # Settled through its watermark: the resident's level is replay's there.
        expected = level_at([Line(change_key(c), c) for c in deployment.replayed.timeline if c.person == person], through)
        for worker in deployment.workers:  # the owner signs; the other forwards to it
            answer = deployment.code(worker, person)
            assert answer.status == 200
            assert answer.content_type == "application/json"
            record = answer.json()
            assert (record["person"], record["level"], record["as_of"]) == (person, expected, format_rfc3339(through))
            verdict = verify(record["code"], trust, at=int(time.time()), admit=tuple(Level))
            assert verdict.reason is Reason.OK
            assert (verdict.person, verdict.level) == (person, expected)
            assert not _keys_of(record) & (_PRIVATE_KEYS | {"evidence", "source"})
            assert not (deployment.persons - {person}) & set(_strings_of(record)), "another person's pseudonym"


def test_a_resident_who_never_changed_level_gets_a_green_code_that_verifies(
    deployment: Deployment, signing_key: SigningKey
) -> None:
    never = sorted(deployment.persons - {c.person for c in deployment.replayed.timeline})
    assert never, "the city must have residents who were never restricted"
    for person in never[:4]:
        for worker in deployment.workers:
            answer = deployment.code(worker, person)
            assert answer.status == 200, answer.body
            record = answer.json()
            assert (record["level"], record["reasons"]) == ("green", [])
            verdict = verify(record["code"], TrustList.of([signing_key.info]), at=int(time.time()))
            assert (verdict.reason, verdict.person, verdict.level) == (Reason.OK, person, "green")


def test_a_resident_gets_their_code_as_an_svg_and_as_a_png_that_reads_back_to_the_same_code(
    deployment: Deployment,
) -> None:
    person = min(deployment.latest_codes())
    owner = deployment.owner(person)
    code = deployment.code(owner, person).json()["code"]

    svg = deployment.code(owner, person, "?format=svg")
    assert (svg.status, svg.content_type) == (200, "image/svg+xml")
    assert ElementTree.fromstring(svg.body).tag == "{http://www.w3.org/2000/svg}svg"

    png = deployment.code(deployment.other_than(owner), person, "?format=png")
    assert (png.status, png.content_type) == (200, "image/png")
    assert read_qr(Image.open(io.BytesIO(png.body))) == [code], "the same code, as it is given again for a while"


def test_without_the_residents_own_token_every_worker_answers_the_same_401(deployment: Deployment) -> None:
    person = min(deployment.latest_codes())
    stranger = next(f"nobody-{n}" for n in range(100) if f"nobody-{n}" not in deployment.persons)
    other = min(deployment.persons - {person})
    answers = [
        deployment.ask(worker, f"/residents/{asked}/code", token=token)
        for worker in deployment.workers
        for asked, token in ((person, None), (person, deployment.token(other)), (stranger, None),
                             (stranger, deployment.token(person)), (person, "x" * 43))
    ]
    assert {a.status for a in answers} == {401}
    assert len({a.body for a in answers}) == 1


@pytest.mark.parametrize("query", ["?format=gif", "?format=SVG", "?format="])
def test_an_unknown_image_format_is_a_bad_request_whoever_is_asked_for(deployment: Deployment, query: str) -> None:
    person = min(deployment.latest_codes())
    owner = deployment.owner(person)
    for asked in (person, "nobody-at-all"):
        answer = deployment.ask(owner, f"/residents/{asked}/code{query}", token=deployment.token(asked))
        assert answer.status == 400
        assert answer.json() == {"error": "format must be json, svg or png"}


@pytest.mark.parametrize("path", ["/persons", "/persons/{person}/code", "/residents", "/residents/", "/residents/{person}",
                                  "/tables", "/table/persons", "/"])
def test_no_route_lists_or_browses_persons(deployment: Deployment, path: str) -> None:
    person = min(deployment.latest_codes())
    for worker in deployment.workers:
        answer = deployment.ask(worker, path.format(person=person))
        assert answer.status in (404, 405), path
        assert person.encode() not in answer.body


def test_codes_cannot_be_written_through_the_web_port(deployment: Deployment) -> None:
    person = min(deployment.latest_codes())
    for method in ("POST", "PUT", "DELETE"):
        answer = deployment.ask(deployment.owner(person), f"/residents/{person}/code", method, deployment.token(person))
        assert answer.status == 405


def test_an_event_older_than_the_watermark_is_applied_and_counted_late(
    deployment: Deployment, broker: EmbeddedBroker
) -> None:
    before = [deployment.metrics(w)["healthcode_late_events_total"][()] for w in deployment.workers]
    first_change = min(c.at for c in deployment.replayed.timeline)
    # Far from the city, so it changes nobody's level: only the count may move.
    ping = {
        "event_id": f"late-{uuid.uuid4().hex}", "type": "ping", "ts": format_rfc3339(first_change),
        "person": "late-visitor", "lat": -45.0, "lon": 170.0, "source": "gps",
    }
    producer = KafkaProducer(bootstrap_servers=broker.bootstrap)
    producer.send(deployment.topics.pings, key=b"late-visitor", value=orjson.dumps(ping))
    producer.flush()
    producer.close()
    # The stays stage of the ping's partition takes it, in its owner: only that worker counts it.
    owner = deployment.workers.index(deployment.owner("late-visitor"))
    expected = [count + (index == owner) for index, count in enumerate(before)]
    deadline = time.monotonic() + 15
    while True:
        after = [deployment.metrics(w)["healthcode_late_events_total"][()] for w in deployment.workers]
        if after == expected:
            break
        assert time.monotonic() < deadline, f"late events went from {before} to {after}"
        time.sleep(0.3)


def _person_of(line: bytes) -> str | None:
    try:
        event = orjson.loads(line)
    except orjson.JSONDecodeError:
        return None  # one of the city's injected faults
    person = event.get("person") if isinstance(event, dict) else None
    return person if isinstance(person, str) else None


def _strings_of(value: Any) -> list[str]:
    if isinstance(value, dict):
        return [s for item in value.values() for s in _strings_of(item)]
    if isinstance(value, list):
        return [s for item in value for s in _strings_of(item)]
    return [value] if isinstance(value, str) else []


def _keys_of(value: Any) -> set[str]:
    if isinstance(value, dict):
        return set(value) | {k for item in value.values() for k in _keys_of(item)}
    if isinstance(value, list):
        return {k for item in value for k in _keys_of(item)}
    return set()


def test_every_worker_serves_the_resident_page_under_a_strict_content_security_policy(deployment: Deployment) -> None:
    for worker in deployment.workers:
        with urlopen(f"http://127.0.0.1:{worker.port}/app/resident", timeout=10) as page:
            assert page.status == 200 and page.headers.get_content_type() == "text/html"
            assert "default-src 'none'" in page.headers["Content-Security-Policy"]
            assert b'<main id="code"' in page.read()
