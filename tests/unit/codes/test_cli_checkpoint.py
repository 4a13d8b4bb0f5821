"""`healthcode checkpoint serve`: what it refuses to serve (exit 2), and what it serves."""

from __future__ import annotations

import base64
import shutil
from pathlib import Path

import orjson
import pytest
from aiohttp.test_utils import TestClient, TestServer
from yarl import URL

from healthcode.cli.checkpoint import make_app
from tests.unit.codes.cli_runner import healthcode

LISTS = Path(__file__).resolve().parents[2] / "vectors" / "lists"


@pytest.fixture
def lists(tmp_path: Path) -> Path:
    for name in ("trust.json", "revoked.json", "list-key.json"):
        shutil.copy(LISTS / name, tmp_path / name)
    return tmp_path


def _serve(*args: str) -> tuple[int, str]:
    run = healthcode("checkpoint", "serve", "--port", "0", *args)
    return run.exit_code, run.stderr


def test_a_missing_tampered_or_foreign_list_stops_the_server_with_exit_2(lists: Path, tmp_path: Path) -> None:
    trust, revoked, pin = str(lists / "trust.json"), str(lists / "revoked.json"), str(lists / "list-key.json")
    assert _serve("--trust", str(lists / "trust.jsn"))[0] == 2
    code, said = _serve("--trust", trust, "--revoked", str(lists / "revokd.json"))
    assert code == 2 and "cannot read revocation list" in said
    envelope = orjson.loads((lists / "trust.json").read_bytes())
    envelope["list"] = base64.b64encode(base64.b64decode(envelope["list"]).replace(b'"active"', b'"revoked"')).decode()
    (tmp_path / "tampered.json").write_bytes(orjson.dumps(envelope))
    code, said = _serve("--trust", str(tmp_path / "tampered.json"))
    assert code == 2 and "signature does not match" in said
    healthcode("keys", "generate", "--out", str(tmp_path / "keys"))
    healthcode("keys", "trust-list", str(tmp_path / "keys"), "--out", str(tmp_path / "theirs.json"))
    code, said = _serve("--trust", str(tmp_path / "theirs.json"), "--revoked", revoked, "--list-key", pin)
    assert code == 2 and "not by the pinned list-signing key" in said
    assert _serve("--trust", trust, "--admit", "purple")[0] == 2


async def test_the_page_the_lists_and_the_policy_are_served(lists: Path) -> None:
    app = make_app(lists / "trust.json", None, None, ["green", "yellow"])
    async with TestClient(TestServer(app)) as client:
        page = await client.get("/checkpoint/")
        assert page.status == 200 and "code-input" in await page.text()
        assert "default-src 'self'" in page.headers["Content-Security-Policy"]
        assert (await client.get("/checkpoint", allow_redirects=False)).headers["Location"] == "/checkpoint/"
        assert await (await client.get("/checkpoint/config.json")).json() == {"admit": ["green", "yellow"]}
        assert (await client.get("/checkpoint/vendor/zxing-wasm/reader/zxing_reader.wasm")).headers["Content-Type"] == "application/wasm"
        assert await (await client.get("/checkpoint/lists/trust.json")).read() == (lists / "trust.json").read_bytes()
        # A new list is published by replacing the file.
        (lists / "trust.json").write_bytes(b"{}")
        assert await (await client.get("/checkpoint/lists/trust.json")).read() == b"{}"
        assert (await client.get("/checkpoint/lists/revoked.json")).status == 404
        assert (await client.get("/checkpoint/lists/list-key.json")).status == 404
        # Sent as written (not normalised by the client): nothing outside the page and the decoder.
        for escape in ("/checkpoint/vendor/zxing-wasm/../../package.json", "/checkpoint/vendor/zxing-wasm/%2e%2e/%2e%2e/package.json"):
            assert (await client.get(URL(escape, encoded=True))).status in (403, 404)


async def test_the_pinned_key_is_served_when_given(lists: Path) -> None:
    pin = (lists / "list-key.json").read_bytes()
    app = make_app(lists / "trust.json", lists / "revoked.json", pin, ["green"])
    async with TestClient(TestServer(app)) as client:
        assert await (await client.get("/checkpoint/lists/list-key.json")).read() == pin
        assert await (await client.get("/checkpoint/lists/revoked.json")).read() == (lists / "revoked.json").read_bytes()
