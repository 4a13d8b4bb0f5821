"""`GET /residents/{pseudonym}/code` and the resident page `/app/resident`, on every worker's web port.

Only the resident: a request carries `Authorization: Bearer TOKEN`, the resident's token
(`codes.access`); without it, or with any other token, the answer is the same 401 whether
or not the pseudonym exists (the token is an HMAC of the pseudonym, checked before
anything is looked up). Each client address, and each resident, has a rate limit (429
with Retry-After); a request another worker forwards carries that worker's word
(`peer_token`) and is not limited twice.

Any worker answers: the owner of the resident's partition signs a code for their level
now (live mode) or at the worker's scored event time (`scoring.residents.standing`);
another worker forwards the request to the owner, which it finds in the workers' status
files (`HEALTHCODE_DATA_DIR/workers/`, each with its web port). A code stays the answer
for a quarter of its validity (so its QR image is rendered once, and a refreshing page
does not make the worker sign on every request) unless the level or the reasons change.
"""

from __future__ import annotations

import hmac
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import aiohttp
import orjson
from aiohttp import web
from pydantic import TypeAdapter, ValidationError

from codes import KeyProblem, QrError, signing_key_at
from codes.access import RateLimits, bearer, peer_token, token_matches
from scoring.events import Pseudonym
from scoring.residents import standing
from scoring.timeutil import parse_rfc3339
from streams import metrics
from streams.eventtime import NEVER
from streams.images import Busy, CodeImages
from streams.issuing import served_record
from streams.step import WorkerConfig, WorkerView, partition_of

PAGE_DIR = Path(__file__).resolve().parents[1] / "resident"
"""The resident page's files (no front-end package: the QR comes from the server as SVG)."""
PEER_HEADER = "X-Healthcode-Peer"
FORWARD_TIMEOUT_S = 5.0
OWNERS_FOR_S = 1.0
"""How long a reading of the workers' status files is used before it is read again."""
REUSE_FRACTION = 4
"""A code is given again while less than 1/REUSE_FRACTION of its validity has passed."""
CACHED_CODES = 50_000

_MEDIA = {"svg": "image/svg+xml", "png": "image/png"}
_FORMATS = ("json", *_MEDIA)
_PSEUDONYM = TypeAdapter(Pseudonym)
_UNAUTHORISED = orjson.dumps({"error": "a resident's own access token is required: Authorization: Bearer TOKEN"})
_NO_STORE = {"Cache-Control": "no-store"}
# The page runs its own script and shows images it made from the server's answers; nothing else.
_PAGE_CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' blob:; connect-src 'self'; "
    "manifest-src 'self'; worker-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
)
_PAGE_FILES = {"resident": ("index.html", "text/html"), "resident.js": ("app.js", "text/javascript"),
               "resident.css": ("style.css", "text/css"), "sw.js": ("sw.js", "text/javascript")}


def _error(status: int, message: str, headers: dict[str, str] | None = None) -> web.Response:
    return web.json_response({"error": message}, status=status, headers={**_NO_STORE, **(headers or {})})


def _too_many(wait_s: float) -> web.Response:
    return _error(429, "too many requests; try again shortly", {"Retry-After": str(max(1, round(wait_s + 0.5)))})


def _unauthorised() -> web.Response:
    return web.Response(body=_UNAUTHORISED, status=401, content_type="application/json",
                        headers={**_NO_STORE, "WWW-Authenticate": 'Bearer realm="healthcode"'})


def owner_port(status_dir: Path, partition: int, own_port: int) -> int | None:
    """The web port of the worker that last said it owns `partition` (its status file), not this one."""
    best: tuple[int, int] | None = None
    for path in status_dir.glob("*.json"):
        try:
            data = orjson.loads(path.read_bytes())
        except (OSError, orjson.JSONDecodeError):
            continue  # a file being replaced, or not ours
        if not isinstance(data, dict):
            continue
        owned, port, at = data.get("partitions"), data.get("web_port"), data.get("at")
        if (isinstance(owned, list) and partition in owned and isinstance(port, int) and 0 < port != own_port
                and isinstance(at, int) and (best is None or at > best[0])):
            best = (at, port)
    return None if best is None else best[1]


class ResidentDesk:
    """The resident route's state: rate limits, codes given recently, the way to other workers."""

    def __init__(self, view: WorkerView, config: WorkerConfig, images: CodeImages) -> None:
        self.view = view
        self.config = config
        self.images = images
        self.clients = RateLimits(config.client_rate)
        self.tokens = RateLimits(config.token_rate)
        self.peers = [peer_token(secret).encode() for secret in config.resident_secrets]
        """What a forwarding worker may send: under the current secret, or the previous one while a
        rotation reaches every worker."""
        self.given: OrderedDict[str, dict[str, Any]] = OrderedDict()
        self.session: aiohttp.ClientSession | None = None
        self._owners: dict[int, tuple[float, int | None]] = {}

    async def code(self, request: web.Request) -> web.Response:
        """The handler of GET /residents/{pseudonym}/code."""
        form = request.query.get("format", "json")
        with_svg = request.query.get("qr") == "svg"
        if form not in _FORMATS:
            return _error(400, "format must be json, svg or png")
        now = time.monotonic()
        peer = request.headers.get(PEER_HEADER)
        # Every known word compared (a list, not a generator): no short cut to time.
        from_peer = peer is not None and any([hmac.compare_digest(peer.encode("utf-8", "surrogateescape"), known) for known in self.peers])
        if not from_peer:
            wait = self.clients.wait(request.remote or "", now)
            if wait:
                return _too_many(wait)
        person = request.match_info["pseudonym"]
        token = bearer(request.headers.get("Authorization"))
        if not token_matches(self.config.resident_secrets, person, token):
            return _unauthorised()
        if not from_peer:
            wait = self.tokens.wait(person, now)
            if wait:
                return _too_many(wait)
        try:
            _PSEUDONYM.validate_python(person)
        except ValidationError:
            return _error(400, "not a pseudonym: 1 to 64 of A-Z a-z 0-9 _ -")
        partition = partition_of(person, self.config.partitions)
        if partition not in self.view.owned:
            if peer is not None:  # forwarded already (vouched for or not): never forward twice
                return _error(503, "your code is moving between workers; try again shortly", {"Retry-After": "1"})
            return await self._forward(request, partition, token or "")
        if not self.view.ready or self.view.watermark == NEVER:
            return _error(503, "this worker is catching up; try again shortly", {"Retry-After": "1"})
        if person not in self.view.codes and person not in self.view.residents:
            return _error(404, "no event naming you has arrived yet, so there is no code for you yet")
        answer = self._answer(person)
        if answer is None:
            return _error(503, "no signing key is valid now; try again later", {"Retry-After": "60"})
        if form == "json" and not with_svg:
            return web.Response(body=orjson.dumps(answer), content_type="application/json", headers=_NO_STORE)
        try:
            image = await self.images.image(answer["code"], "svg" if form == "json" else form)  # type: ignore[arg-type]
        except Busy as busy:
            return _error(busy.status, str(busy), {"Retry-After": str(busy.retry_after_s)})
        except QrError as error:
            return _error(500, f"the code cannot be drawn: {error}")
        if form == "json":
            body = orjson.dumps({**answer, "qr_svg": image.decode()})
            return web.Response(body=body, content_type="application/json", headers=_NO_STORE)
        return web.Response(body=image, content_type=_MEDIA[form], headers=_NO_STORE)

    def _answer(self, person: str) -> dict[str, Any] | None:
        """The resident's code now: the one given recently if it still says the same, else a new one
        (None: no signing key is valid now)."""
        view, config = self.view, self.config
        latest = view.codes.get(person)
        wall = config.clock()
        at = int(wall) if config.live else view.watermark
        held, held_rules = view.assess(person, at) if view.assess else (None, view.rules[view.rule_set])
        now = standing(person, latest, held, held_rules, view.rules, at)
        issued_at = int(wall)
        given = self.given.get(person)
        if given is not None and _same(given, now.level, now.rule_set, now.reasons) and (
            issued_at - parse_rfc3339(given["issued_at"]) < config.code_validity_s / REUSE_FRACTION
        ):
            self.given.move_to_end(person)
            return given
        try:
            key = signing_key_at(config.keys, issued_at)
        except KeyProblem:
            return None
        answer = served_record(now, key, issuer=config.issuer, issued_at=issued_at, validity_s=config.code_validity_s)
        self.given[person] = answer
        if len(self.given) > CACHED_CODES:
            self.given.popitem(last=False)
        metrics.CODES_SERVED.labels(now.level).inc()
        return answer

    async def _forward(self, request: web.Request, partition: int, token: str) -> web.Response:
        """Ask the owner of `partition` and pass its answer on as it is."""
        port = self._owner(partition)
        if port is None or self.session is None or not self.peers:
            return _error(503, "no worker holds your code right now; try again shortly", {"Retry-After": "1"})
        url = f"http://127.0.0.1:{port}{request.rel_url}"
        headers = {"Authorization": f"Bearer {token}", PEER_HEADER: self.peers[0].decode()}
        try:
            async with self.session.get(url, headers=headers, allow_redirects=False) as owner:
                body = await owner.read()
                passed = {k: v for k, v in owner.headers.items() if k in ("Retry-After", "WWW-Authenticate")}
                return web.Response(body=body, status=owner.status, content_type=owner.content_type,
                                    headers={**_NO_STORE, **passed})
        except (aiohttp.ClientError, TimeoutError):
            self._owners.pop(partition, None)
            return _error(503, "the worker holding your code does not answer; try again shortly", {"Retry-After": "1"})

    def _owner(self, partition: int) -> int | None:
        status_dir = self.config.status_dir
        if status_dir is None:
            return None
        now = time.monotonic()
        known = self._owners.get(partition)
        if known is None or now - known[0] > OWNERS_FOR_S:
            known = (now, owner_port(status_dir, partition, self.config.web_port))
            self._owners[partition] = known
        return known[1]

    async def start(self, _: web.Application) -> None:
        self.session = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=FORWARD_TIMEOUT_S))

    async def close(self, _: web.Application) -> None:
        if self.session is not None:
            await self.session.close()
            self.session = None


def _same(given: dict[str, Any], level: str, rule_set: str, reasons: tuple[Any, ...]) -> bool:
    return (given["level"], given["rule_set"], given["reasons"]) == (level, rule_set, [r.to_dict() for r in reasons])


def _page_route(name: str, media: str) -> Callable[[web.Request], Awaitable[web.StreamResponse]]:
    path = PAGE_DIR / name

    async def handler(_: web.Request) -> web.StreamResponse:
        return web.FileResponse(path, headers={
            "Content-Type": media, "Cache-Control": "no-cache", "Content-Security-Policy": _PAGE_CSP,
            "X-Content-Type-Options": "nosniff", "Referrer-Policy": "no-referrer",
        })

    return handler


def add_resident_routes(app: web.Application, view: WorkerView, config: WorkerConfig, images: CodeImages) -> None:
    """GET /residents/{pseudonym}/code and the page under /app/."""
    desk = ResidentDesk(view, config, images)
    app.router.add_get("/residents/{pseudonym}/code", desk.code)
    for route, (name, media) in _PAGE_FILES.items():
        app.router.add_get(f"/app/{route}", _page_route(name, media))
    app.on_startup.append(desk.start)
    app.on_cleanup.append(desk.close)
