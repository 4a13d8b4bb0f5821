"""GET /residents/{pseudonym}/code and /app/resident on a worker's web port, without a broker.

Only the resident with their own token gets their code; anyone else gets the same 401
whether or not the pseudonym exists; limits give 429; any worker answers, forwarding to
the owner of the person's partition; the code is signed at the request for the level at
the worker's scored event time (or now, live) and verifies at a checkpoint.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import datetime, timezone
from pathlib import Path

import orjson
import pytest
from aiohttp.test_utils import TestClient, TestServer

from codes import Algorithm, Level, Reason, SigningKey, TrustList, generate_signing_key, verify
from codes.access import RatePolicy, resident_token
from scoring.events import Ping, Visit, encode_event
from scoring.rules import load_rule_set
from scoring.timeutil import format_rfc3339, parse_rfc3339
from streams.step import WorkerConfig, WorkerView, partition_of
from streams.testing import MemoryLog, StepDriver, resident_web, settle
from streams.topics import Topics
from streams.web import make_app

PARTITIONS = 4
RULES = Path(__file__).resolve().parents[3] / "rules" / "default.yaml"
AT = 1_650_000_000
SECRET = bytes(range(32))
GREEN, RED = "p000001", "p000002"
_PLENTY = RatePolicy(per_minute=6000, burst=1000)


@pytest.fixture(scope="module")
def key() -> SigningKey:
    return generate_signing_key(Algorithm.EDDSA, AT - 3600, AT + 86_400)


def _red_record(rule_set: str) -> dict:
    return {
        "type": "code", "person": RED, "level": "red", "rule_set": rule_set, "assessed_at": format_rfc3339(AT - 3600),
        "reasons": [{"rule": "close_contact", "level": "red", "since": format_rfc3339(AT - 7200),
                     "until": format_rfc3339(AT + 3600),
                     "evidence": [{"signal": "close_contact", "source": "c0ffee0123456789", "minutes": 22.0}]}],
    }


def _desk(key: SigningKey, **overrides) -> tuple[WorkerView, WorkerConfig]:
    view, config = resident_web([key], SECRET, PARTITIONS, AT, [GREEN, RED], **overrides)
    view.codes[RED] = _red_record(config.rules.ref)
    return view, config


@pytest.fixture
async def client(key: SigningKey) -> AsyncIterator[TestClient]:
    async with TestClient(TestServer(make_app(*_desk(key, token_rate=_PLENTY, client_rate=_PLENTY)))) as client:
        yield client


def _auth(person: str, secret: bytes = SECRET) -> dict[str, str]:
    return {"Authorization": f"Bearer {resident_token(secret, person)}"}


async def _get(client: TestClient, path: str, headers: dict[str, str] | None = None) -> tuple[int, bytes, dict]:
    async with client.get(path, headers=headers or {}) as answer:
        return answer.status, await answer.read(), dict(answer.headers)


async def test_a_resident_who_never_changed_level_gets_a_green_code_signed_now_that_verifies(
    client: TestClient, key: SigningKey
) -> None:
    status, body, headers = await _get(client, f"/residents/{GREEN}/code", _auth(GREEN))
    assert status == 200 and headers["Cache-Control"] == "no-store"
    answer = orjson.loads(body)
    assert (answer["person"], answer["level"], answer["reasons"]) == (GREEN, "green", [])
    assert answer["issued_at"] == format_rfc3339(AT)
    assert parse_rfc3339(answer["expires_at"]) - AT == 5 * 60, "the default validity: minutes, not hours"
    verdict = verify(answer["code"], TrustList.of([key.info]), at=AT + 60)
    assert (verdict.reason, verdict.person, verdict.level) == (Reason.OK, GREEN, "green")
    late = verify(answer["code"], TrustList.of([key.info]), at=AT + 5 * 60)
    assert late.reason is Reason.EXPIRED, "a checkpoint refuses it once its minutes are up"


async def test_a_red_resident_reads_their_reasons_in_words_with_no_evidence(client: TestClient, key: SigningKey) -> None:
    status, body, _ = await _get(client, f"/residents/{RED}/code", _auth(RED))
    assert status == 200
    answer = orjson.loads(body)
    assert answer["level"] == "red"
    (reason,) = answer["reasons"]
    assert reason["what"].startswith("a close contact exposure to a case")
    assert (reason["since"], reason["until"]) == (format_rfc3339(AT - 7200), format_rfc3339(AT + 3600))
    assert b"evidence" not in body and b"c0ffee0123456789" not in body and GREEN.encode() not in body
    assert verify(answer["code"], TrustList.of([key.info]), at=AT, admit=tuple(Level)).level == "red"


async def test_a_published_level_holds_until_a_record_lowers_it_and_live_mode_asks_at_the_clock(
    key: SigningKey,
) -> None:
    # The red reason's until has passed at the worker's scored time, but no record has lowered the
    # level yet (a lapse is published once it is certain): the resident is not shown less.
    view, config = _desk(key)
    view.watermark = AT + 2 * 3600
    async with TestClient(TestServer(make_app(view, config))) as client:
        answer = orjson.loads((await _get(client, f"/residents/{RED}/code", _auth(RED)))[1])
    assert (answer["level"], answer["as_of"]) == ("red", format_rfc3339(AT + 2 * 3600))
    view, config = _desk(key, live=True)
    view.watermark = AT + 2 * 3600  # live: the clock (AT) counts, not the watermark
    async with TestClient(TestServer(make_app(view, config))) as client:
        answer = orjson.loads((await _get(client, f"/residents/{RED}/code", _auth(RED)))[1])
    assert (answer["level"], answer["as_of"]) == ("red", format_rfc3339(AT))


async def test_a_second_reason_at_the_same_level_keeps_the_resident_at_it_after_the_first_lapses() -> None:
    # Two fever-clinic visits ten days apart: one yellow record (the level changed once), whose
    # reason lapses on day 14; the second visit holds yellow to day 24 with no record of its own.
    # Read from the latest record alone, the resident was green on day 15 (replay: yellow).
    topics, day, start = Topics(prefix="m."), 86_400, AT - AT % 900
    wall = start + 16 * day  # events are not accepted a day ahead of the clock
    key = generate_signing_key(Algorithm.EDDSA, wall - 3600, wall + day)
    rules = load_rule_set(RULES)
    events = [Visit(event_id=f"v{n}", ts=_utc(start + n * 10 * day), person=RED, facility="h", kind="fever_clinic")
              for n in range(2)]
    events += [Ping(event_id=f"q{n}", ts=_utc(start + n * 6 * 3600), person=GREEN, lat=31.23, lon=121.47,
                    source="gps") for n in range(4 * 16)]  # keeps event time moving past day 15
    log = MemoryLog(topics, PARTITIONS)
    log.publish([encode_event(event) for event in events])
    config = WorkerConfig(bootstrap="memory", topics=topics, group="g", rules=rules, keys=[key],
                          partitions=PARTITIONS, lateness_s=600, idle_s=5.0, clock=lambda: float(wall),
                          resident_secrets=[SECRET], token_rate=_PLENTY, client_rate=_PLENTY,
                          stages=False)  # one unsplit step reads every ping: one driver is the whole worker
    driver = StepDriver(log, config, frozenset(range(PARTITIONS)))
    settle([driver], start + 15 * day, float(wall), step_s=6.0)
    published = [orjson.loads(m.value) for p in range(PARTITIONS) for m in log.logs[(topics.codes, p)]]
    (record,) = [r for r in published if r.get("type") == "code" and r["person"] == RED]
    assert record["level"] == "yellow" and parse_rfc3339(record["reasons"][0]["until"]) < driver.view.watermark
    async with TestClient(TestServer(make_app(driver.view, config))) as client:
        answer = orjson.loads((await _get(client, f"/residents/{RED}/code", _auth(RED)))[1])
    assert answer["level"] == "yellow"
    assert [(r["since"], r["until"]) for r in answer["reasons"]] == [
        (format_rfc3339(start + 10 * day), format_rfc3339(start + 24 * day))
    ]


def _utc(at: int) -> datetime:
    return datetime.fromtimestamp(at, timezone.utc)


async def test_without_the_residents_own_token_the_answer_is_one_401_whether_or_not_the_pseudonym_exists(
    client: TestClient,
) -> None:
    answers = [
        await _get(client, f"/residents/{GREEN}/code"),
        await _get(client, f"/residents/{GREEN}/code", _auth(RED)),
        await _get(client, f"/residents/{GREEN}/code", _auth(GREEN, bytes(32))),
        await _get(client, f"/residents/{GREEN}/code", {"Authorization": "Basic " + resident_token(SECRET, GREEN)}),
        await _get(client, "/residents/nobody-at-all/code", _auth(GREEN)),
        await _get(client, "/residents/nobody-at-all/code"),
        await _get(client, f"/residents/{GREEN}/code?format=png", _auth(RED)),
    ]
    assert {status for status, _, _ in answers} == {401}
    assert len({body for _, body, _ in answers}) == 1
    assert {headers["WWW-Authenticate"] for _, _, headers in answers} == {'Bearer realm="healthcode"'}


@pytest.mark.parametrize("header", [b"Authorization: Bearer \xff\xfe", b"X-Healthcode-Peer: \xff"])
async def test_a_header_that_is_not_utf8_is_refused_like_any_wrong_credential(key: SigningKey, header: bytes) -> None:
    server = TestServer(make_app(*_desk(key, token_rate=_PLENTY, client_rate=_PLENTY)))
    async with server:
        reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
        writer.write(b"GET /residents/" + RED.encode() + b"/code HTTP/1.1\r\nHost: x\r\n" + header
                     + b"\r\nConnection: close\r\n\r\n")
        await writer.drain()
        status_line = (await reader.readline()).strip()
        writer.close()
    assert status_line == b"HTTP/1.1 401 Unauthorized"


async def test_a_resident_with_a_token_but_no_event_yet_is_told_so(client: TestClient) -> None:
    status, body, _ = await _get(client, "/residents/p999999/code", _auth("p999999"))
    assert status == 404 and b"no event" in body


async def test_the_old_route_is_gone(client: TestClient) -> None:
    assert (await _get(client, f"/persons/{GREEN}/code", _auth(GREEN)))[0] == 404


async def test_too_many_requests_per_resident_or_per_address_are_answered_429(key: SigningKey) -> None:
    per_token = RatePolicy(per_minute=1, burst=2)
    async with TestClient(TestServer(make_app(*_desk(key, token_rate=per_token, client_rate=_PLENTY)))) as client:
        statuses = [(await _get(client, f"/residents/{GREEN}/code", _auth(GREEN)))[0] for _ in range(3)]
        assert statuses == [200, 200, 429]
        status, _, headers = await _get(client, f"/residents/{GREEN}/code", _auth(GREEN))
        assert status == 429 and int(headers["Retry-After"]) >= 1
        assert (await _get(client, f"/residents/{RED}/code", _auth(RED)))[0] == 200, "another resident is not held up"
    per_address = RatePolicy(per_minute=1, burst=3)
    async with TestClient(TestServer(make_app(*_desk(key, token_rate=_PLENTY, client_rate=per_address)))) as client:
        # Guessing tokens counts against the address too.
        statuses = [(await _get(client, f"/residents/{GREEN}/code", _auth(f"guess{n}")))[0] for n in range(3)]
        assert statuses == [401, 401, 401]
        assert (await _get(client, f"/residents/{RED}/code", _auth(RED)))[0] == 429


async def test_a_worker_that_does_not_own_the_partition_forwards_to_the_owner(key: SigningKey, tmp_path: Path) -> None:
    owner_view, owner_config = _desk(key, token_rate=_PLENTY, client_rate=_PLENTY, status_dir=tmp_path)
    async with TestClient(TestServer(make_app(owner_view, owner_config))) as owner:
        assert owner.port is not None
        owner_config.web_port = owner.port
        (tmp_path / "worker-owner.json").write_bytes(orjson.dumps(
            {"type": "worker", "worker": "worker-owner", "partitions": list(range(PARTITIONS)), "at": AT,
             "web_port": owner.port}))
        (tmp_path / "worker-stale.json").write_bytes(orjson.dumps(
            {"type": "worker", "partitions": list(range(PARTITIONS)), "at": AT - 600, "web_port": 9}))
        view, config = _desk(key, token_rate=_PLENTY, client_rate=_PLENTY, status_dir=tmp_path)
        view.owned = frozenset()
        async with TestClient(TestServer(make_app(view, config))) as other:
            status, body, _ = await _get(other, f"/residents/{RED}/code", _auth(RED))
            assert status == 200 and orjson.loads(body)["level"] == "red"
            assert (await _get(other, f"/residents/{RED}/code", _auth(GREEN)))[0] == 401
            # A client posing as a worker is neither exempt from limits nor forwarded.
            posing = {**_auth(RED), "X-Healthcode-Peer": "made-up"}
            assert (await _get(other, f"/residents/{RED}/code", posing))[0] == 503
            # A forwarded request the owner no longer owns is not forwarded again.
            owner_view.owned = frozenset(p for p in range(PARTITIONS) if p != partition_of(RED, PARTITIONS))
            status, _, headers = await _get(other, f"/residents/{RED}/code", _auth(RED))
            assert status == 503 and headers["Retry-After"] == "1"


async def test_the_json_can_carry_the_qr_as_svg_for_the_page(client: TestClient) -> None:
    status, body, _ = await _get(client, f"/residents/{GREEN}/code?qr=svg", _auth(GREEN))
    answer = orjson.loads(body)
    assert status == 200 and answer["qr_svg"].startswith("<svg")


async def test_the_page_is_served_with_a_strict_content_security_policy(client: TestClient) -> None:
    for path in ("/app/resident", "/app/resident.js", "/app/resident.css", "/app/sw.js"):
        status, body, headers = await _get(client, path)
        assert status == 200 and body, path
        assert "script-src 'self';" in headers["Content-Security-Policy"]
        assert "unsafe-inline" not in headers["Content-Security-Policy"]
