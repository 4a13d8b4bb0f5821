"""The worker's web port: health, Prometheus metrics, and a resident's own current code.

There is deliberately no endpoint that lists persons: a resident asks for their own
pseudonym, with their own token, and gets their code, nothing else (`streams.residents`).
"""

from __future__ import annotations

import time

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from scoring.timeutil import format_rfc3339
from streams.eventtime import NEVER
from streams.images import DEFAULT_LIMIT, CodeImages
from streams.residents import add_resident_routes
from streams.step import WorkerConfig, WorkerView


def make_app(view: WorkerView, config: WorkerConfig, images: CodeImages | None = None) -> web.Application:
    """An aiohttp application serving `view` (see `add_routes`)."""
    app = web.Application()
    add_routes(app, view, config, images)
    return app


def add_routes(app: web.Application, view: WorkerView, config: WorkerConfig, images: CodeImages | None = None) -> None:
    """Serve `view` on `app` (in a worker, Faust's aiohttp application); QR images come from
    `images` (default: a `CodeImages` with the configured limit), which `app` closes on cleanup."""
    renderer = images if images is not None else CodeImages(config.web_image_limit or DEFAULT_LIMIT)

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

    async def start_images(_: web.Application) -> None:
        renderer.start()

    async def close_images(_: web.Application) -> None:
        renderer.close()

    app.router.add_get("/healthz", healthz)
    app.router.add_get("/metrics", metrics)
    add_resident_routes(app, view, config, renderer)
    app.on_startup.append(start_images)
    app.on_cleanup.append(close_images)
