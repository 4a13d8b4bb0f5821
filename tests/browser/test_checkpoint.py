"""The checkpoint scanner page in real Chromium against `healthcode checkpoint serve`:
the page reaches the Python verifier's reason on every conformance vector, shows ADMIT
and REFUSE full screen, works offline after the first load, and refuses tampered lists."""

from __future__ import annotations

import base64
from collections.abc import Iterator
from pathlib import Path

import orjson
import pytest
from playwright.sync_api import Page

from codes import Algorithm, generate_signing_key, sign_list
from tests.browser.checkpoint_helpers import (
    VECTORS,
    Server,
    checkpoint_server,
    conformance_table,
    enter,
    moment,
    open_page,
    vector,
)

CLOCK = moment("2022-04-11T09:00:00Z")
# The vectors' lists are issued 2022-03-31 with their next update due 2022-05-31.
STALE_CLOCK = moment("2022-06-02T12:00:00Z")
GREEN = "rgb(10, 125, 50)"
RED = "rgb(179, 0, 27)"


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    with checkpoint_server(tmp_path_factory.mktemp("checkpoint")) as running:
        yield running


def test_every_vector_gets_the_python_verifiers_reason_on_the_page(page: Page, server: Server) -> None:
    table = conformance_table(page, server.url)
    mismatches = [row for row in table if row[1] != row[2]]
    assert mismatches == [], "\n".join(f"{name}: python {py} page {pg}" for name, py, pg in mismatches)
    assert {python[0] for _, python, _ in table} >= {"OK", "KEY_REVOKED", "KEY_NOT_VALID", "REVOKED", "SIGNATURE_INVALID"}
    assert len(table) == len(list(VECTORS.glob("*.json"))) > 40


def _background(page: Page) -> str:
    return page.eval_on_selector("#verdict", "e => getComputedStyle(e).backgroundColor")


def test_admit_and_refuse_fill_the_screen_and_a_refusal_shows_no_unverified_claims(page: Page, server: Server, tmp_path: Path) -> None:
    page.clock.set_fixed_time(CLOCK)
    open_page(page, server.url)
    assert enter(page, vector("ok_eddsa")["code"]) == ("OK", "green")
    assert _background(page) == GREEN
    box = page.locator("#verdict").bounding_box()
    assert box is not None and box["width"] == 1100 and box["height"] > 700
    assert page.inner_text("#verdict-word") == "ADMIT"
    assert page.inner_text("#verdict-level").upper() == "LEVEL GREEN"
    local_time = page.evaluate(f"new Date({int(CLOCK.timestamp()) * 1000}).toLocaleString()")
    assert page.inner_text("#verdict-time") == local_time
    page.screenshot(path=str(tmp_path / "admit.png"))

    # A red code relabelled green: the page must not show "green" (or anything) as a fact.
    assert enter(page, vector("signature_level_changed")["code"]) == ("SIGNATURE_INVALID", "")
    assert _background(page) == RED
    assert page.inner_text("#verdict-word") == "REFUSE"
    assert page.inner_text("#verdict-level") == ""
    assert "signature does not match" in page.inner_text("#verdict-reason")
    assert "p-42" not in page.inner_text("body")
    page.screenshot(path=str(tmp_path / "refuse.png"))

    # A verified refusal may show the level: the signature vouches for it.
    assert enter(page, vector("level_not_admitted")["code"]) == ("LEVEL_NOT_ADMITTED", "red")
    assert page.inner_text("#verdict-level").upper() == "LEVEL RED"
    assert (tmp_path / "admit.png").read_bytes().startswith(b"\x89PNG")


def test_the_gate_policy_comes_from_the_url(page: Page, server: Server) -> None:
    page.clock.set_fixed_time(CLOCK)
    yellow = vector("ok_yellow_admitted")["code"]
    open_page(page, server.url)
    assert enter(page, yellow) == ("LEVEL_NOT_ADMITTED", "yellow")
    open_page(page, server.url, ["green", "yellow"])
    assert "admit green, yellow" in page.inner_text("#policy")
    assert enter(page, yellow) == ("OK", "yellow")
    open_page(page, server.url, ["purple"])
    assert "ignored" in page.inner_text("#policy") and enter(page, yellow)[0] == "LEVEL_NOT_ADMITTED"


def test_counts_by_reason_stay_on_the_device_and_no_code_or_pseudonym_is_stored(page: Page, server: Server) -> None:
    page.clock.set_fixed_time(CLOCK)
    open_page(page, server.url)
    for name in ("ok_eddsa", "ok_es256", "level_not_admitted", "signature_truncated", "signature_kid_swapped"):
        enter(page, vector(name)["code"])
    page.reload()
    page.wait_for_selector("body[data-ready=true]")
    stored = page.evaluate("Object.fromEntries(Object.entries(localStorage))")
    assert orjson.loads(stored["hc.counts"]) == {"admitted": 2, "refused": {"LEVEL_NOT_ADMITTED": 1, "SIGNATURE_INVALID": 2}}
    assert "2 admitted · 3 refused (LEVEL_NOT_ADMITTED 1, SIGNATURE_INVALID 2)" in page.inner_text("#counts")
    everything = " ".join(stored.values())
    assert "p-42" not in everything and "HCQ1:" not in everything
    cached = page.evaluate("caches.keys().then(names => Promise.all(names.map(n => caches.open(n).then(c => c.keys()))))"
                           ".then(all => all.flat().map(r => r.url))")
    assert not any("HCQ1" in url or "p-42" in url for url in cached)


def test_stale_lists_are_stated_on_every_verdict(page: Page, server: Server) -> None:
    page.clock.set_fixed_time(STALE_CLOCK)
    open_page(page, server.url)
    assert page.get_attribute("#lists", "data-stale") == "true" and "STALE" in page.inner_text("#lists")
    assert enter(page, vector("ok_eddsa")["code"]) == ("EXPIRED", "green")
    assert page.get_attribute("#verdict", "data-stale") == "true"
    note = page.inner_text("#verdict-stale")
    assert "Lists stale" in note and "update due 2 d ago" in note


def test_the_page_reloaded_with_the_server_gone_still_verifies(page: Page, tmp_path: Path) -> None:
    with checkpoint_server(tmp_path) as server:
        page.clock.set_fixed_time(CLOCK)
        open_page(page, server.url)
        # `ready` resolves once the worker is active, i.e. after it cached the page and decoder.
        cached = page.evaluate("navigator.serviceWorker.ready.then(() => caches.open('checkpoint-v1')).then(c => c.keys())"
                               ".then(requests => requests.map(r => new URL(r.url).pathname))")
        assert {"/checkpoint/app.js", "/checkpoint/verify.js", "/checkpoint/vendor/zxing-wasm/reader/zxing_reader.wasm"} <= set(cached)
        server.stop()
        page.context.set_offline(True)  # and the network off, for any other way out
        page.reload()
        page.wait_for_selector("body[data-ready=true]")
        assert page.get_attribute("#lists", "data-trust") == "ok" and page.get_attribute("#lists", "data-revoked") == "ok"
        assert "trust list: server unreachable (offline), using this device's copy" in page.inner_text("#lists")
        assert enter(page, vector("ok_eddsa")["code"]) == ("OK", "green")
        assert enter(page, vector("revoked")["code"]) == ("REVOKED", "green")
        assert enter(page, vector("signature_level_changed")["code"]) == ("SIGNATURE_INVALID", "")


def _replace_body(signed: Path, change: bytes, by: bytes) -> None:
    """Change the list inside a signed list, keeping its signature."""
    envelope = orjson.loads(signed.read_bytes())
    body = base64.b64decode(envelope["list"])
    assert change in body
    envelope["list"] = base64.b64encode(body.replace(change, by)).decode()
    signed.write_bytes(orjson.dumps(envelope))


def test_a_tampered_or_foreign_list_is_refused_and_the_last_good_one_kept(page: Page, browser, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    with checkpoint_server(tmp_path, pin=False) as server:
        page.clock.set_fixed_time(CLOCK)
        open_page(page, server.url)  # no pinned key named: the page pins the lists' signer
        assert enter(page, vector("ok_eddsa")["code"]) == ("OK", "green")
        good = (tmp_path / "trust.json").read_bytes()

        # Every key marked revoked, signature kept: were it used, the code would be KEY_REVOKED.
        _replace_body(tmp_path / "trust.json", b'"active"', b'"revoked"')
        page.reload()
        page.wait_for_selector("body[data-ready=true]")
        assert "trust list update refused: the signature does not match" in page.inner_text("#lists")
        assert enter(page, vector("ok_eddsa")["code"]) == ("OK", "green")

        # A whole, validly signed list, by a key that is not the pinned one.
        impostor = generate_signing_key(Algorithm.EDDSA, 0, 2**33)
        body = base64.b64decode(orjson.loads(good)["list"]).replace(b'"active"', b'"revoked"')
        (tmp_path / "trust.json").write_bytes(sign_list(impostor, body))
        page.reload()
        page.wait_for_selector("body[data-ready=true]")
        assert "not by the pinned list-signing key" in page.inner_text("#lists")
        assert enter(page, vector("ok_eddsa")["code"]) == ("OK", "green")

        # A device that never saw a good list has nothing to verify with, and says so.
        _replace_body(tmp_path / "trust.json", b'"revoked"', b'"active"')  # the impostor's body, its signature kept
        fresh = browser.new_context()
        try:
            newcomer = fresh.new_page()
            newcomer.clock.set_fixed_time(CLOCK)
            open_page(newcomer, server.url)
            assert newcomer.get_attribute("#lists", "data-trust") == "refused"
            assert enter(newcomer, vector("ok_eddsa")["code"]) == ("NO_TRUST_LIST", "")
            assert newcomer.inner_text("#verdict-word") == "REFUSE"
        finally:
            fresh.close()
