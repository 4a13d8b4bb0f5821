"""The worker's web port: health, Prometheus metrics, and a resident's own current code.

There is deliberately no endpoint that lists persons: a resident asks for their own
pseudonym and gets their code, nothing else.
"""

from __future__ import annotations

import time

import orjson
from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from pydantic import TypeAdapter, ValidationError

from codes import QrError
from scoring.events import Pseudonym
from scoring.timeutil import format_rfc3339
from streams.eventtime import NEVER
from streams.images import Busy, CodeImages
from streams.step import WorkerView, partition_of

_MEDIA = {"svg": "image/svg+xml", "png": "image/png"}
_FORMATS = ("json", *_MEDIA)
_PSEUDONYM = TypeAdapter(Pseudonym)


def _bad_request(message: str) -> web.Response:
    return web.json_response({"error": message}, status=400)


def make_app(view: WorkerView, partitions: int, images: CodeImages | None = None) -> web.Application:
    """An aiohttp application serving `view` (see `add_routes`)."""
    app = web.Application()
    add_routes(app, view, partitions, images)
    return app


def add_routes(app: web.Application, view: WorkerView, partitions: int, images: CodeImages | None = None) -> None:
    """Serve `view` on `app` (in a worker, Faust's aiohttp application); QR images come from
    `images` (default: a `CodeImages` with its default limit), which `app` closes on cleanup."""
    renderer = images if images is not None else CodeImages()

    async def healthz(_: web.Request) -> web.Response:
        reason = view.health.reason(time.monotonic(), built=view.ready)
        status = 200 if reason is None else 503
        return web.json_response(
            {
                "ready": reason is None,
                "reason": reason,
                "rule_set": view.rule_set,
                "rule_sets": view.rule_sets,
                "partitions": sorted(view.owned),
                "watermark": None if view.watermark == NEVER else format_rfc3339(view.watermark),
                "settled_through": None if view.settled_through == NEVER else format_rfc3339(view.settled_through),
            },
            status=status,
        )

    async def metrics(_: web.Request) -> web.Response:
        return web.Response(body=generate_latest(), headers={"Content-Type": CONTENT_TYPE_LATEST})

    async def person_code(request: web.Request) -> web.Response:
        # A malformed request is refused before any lookup, whoever it names.
        form = request.query.get("format", "json")
        if form not in _FORMATS:
            return _bad_request("format must be json, svg or png")
        person = request.match_info["pseudonym"]
        try:
            _PSEUDONYM.validate_python(person)
        except ValidationError:
            return _bad_request("not a pseudonym: 1 to 64 of A-Z a-z 0-9 _ -")
        if partition_of(person, partitions) not in view.owned:
            return web.json_response({"error": "this worker does not hold that pseudonym"}, status=404)
        record = view.codes.get(person)
        if record is None:
            return web.json_response({"error": "no code has been issued for that pseudonym"}, status=404)
        if form == "json":
            return web.Response(body=orjson.dumps(record), content_type="application/json")
        code = record.get("code")
        if not isinstance(code, str):
            return web.json_response({"error": "the code record on file has no code text"}, status=500)
        try:
            image = await renderer.image(code, form)
        except Busy as busy:
            return web.json_response(
                {"error": str(busy)}, status=busy.status, headers={"Retry-After": str(busy.retry_after_s)}
            )
        except QrError as error:
            return web.json_response({"error": f"the code on file cannot be drawn: {error}"}, status=500)
        return web.Response(body=image, content_type=_MEDIA[form])

    async def start_images(_: web.Application) -> None:
        renderer.start()

    async def close_images(_: web.Application) -> None:
        renderer.close()

    app.router.add_get("/healthz", healthz)
    app.router.add_get("/metrics", metrics)
    app.router.add_get("/persons/{pseudonym}/code", person_code)
    app.on_startup.append(start_images)
    app.on_cleanup.append(close_images)
