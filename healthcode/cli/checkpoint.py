"""`healthcode checkpoint serve`: the scanner page and the signed lists it verifies with.

The page (`checkpoint/src/`, with zxing-wasm from `checkpoint/node_modules/`, installed by
`make checkpoint`) verifies codes in the browser and works offline once loaded; this
server only hands out files. The lists are read from disk on every request, so a new
trust or revocation list is published by replacing the file; the page checks each
list's signature itself and keeps the last good one when a new one fails.
"""

from __future__ import annotations

import mimetypes
import socket
import time
from pathlib import Path
from typing import Awaitable, Callable, Optional

import orjson
import typer
from aiohttp import web

from codes.trust import record_of
from healthcode.cli.code import admitted
from healthcode.cli.common import err
from healthcode.cli.keys import LIST_KEY_HELP, read_lists
from healthcode.errors import EnvironmentProblem

FRONT_END = Path(__file__).resolve().parents[2] / "checkpoint"
PAGE_DIR = FRONT_END / "src"
ZXING_DIST = FRONT_END / "node_modules" / "zxing-wasm" / "dist"
# The page is a module script that compiles WebAssembly; nothing else may run or be fetched.
_CSP = (
    "default-src 'self'; script-src 'self' 'wasm-unsafe-eval'; img-src 'self' data: blob:; "
    "media-src 'self' blob:; style-src 'self'; connect-src 'self'; object-src 'none'; base-uri 'none'"
)

mimetypes.add_type("application/wasm", ".wasm")
mimetypes.add_type("text/javascript", ".js")

checkpoint_app = typer.Typer(
    help=(
        "The checkpoint scanner page: scan or type a code, see ADMIT or REFUSE full screen; "
        "verifies in the browser against signed lists, offline after the first load.\n\n"
        "Example: `healthcode checkpoint serve --trust trust.json --revoked revoked.json --list-key list-key.json`"
    ),
    no_args_is_help=True,
)


def _file_route(path: Path) -> Callable[[web.Request], Awaitable[web.StreamResponse]]:
    async def handler(request: web.Request) -> web.StreamResponse:
        return web.FileResponse(path)

    return handler


def _list_route(path: Optional[Path]) -> Callable[[web.Request], Awaitable[web.StreamResponse]]:
    async def handler(request: web.Request) -> web.StreamResponse:
        if path is None:
            raise web.HTTPNotFound(text="this checkpoint has no such list")
        try:
            data = path.read_bytes()
        except OSError:
            raise web.HTTPServiceUnavailable(text="the list cannot be read right now") from None
        return web.Response(body=data, content_type="application/json")

    return handler


@web.middleware
async def _headers(request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]) -> web.StreamResponse:
    response = await handler(request)
    # Always revalidate: the service worker keeps the offline copy, the browser cache must
    # not serve a page or list older than the server's.
    response.headers["Cache-Control"] = "no-cache"
    response.headers["Content-Security-Policy"] = _CSP
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.headers["Referrer-Policy"] = "no-referrer"
    response.headers["Permissions-Policy"] = "camera=(self)"
    return response


def make_app(trust: Path, revoked: Optional[Path], list_key: Optional[bytes], admit: list[str]) -> web.Application:
    """The checkpoint's web application: the page under /checkpoint/, the lists under
    /checkpoint/lists/, the pinned list key (404 when none) and the default gate policy."""
    app = web.Application(middlewares=[_headers])
    config = orjson.dumps({"admit": admit})

    async def config_json(request: web.Request) -> web.Response:
        return web.Response(body=config, content_type="application/json")

    async def pinned_key(request: web.Request) -> web.Response:
        if list_key is None:
            raise web.HTTPNotFound(text="no list-signing key pinned: the page pins the lists' signer on first load")
        return web.Response(body=list_key, content_type="application/json")

    async def to_page(request: web.Request) -> web.Response:
        raise web.HTTPFound("/checkpoint/")

    app.router.add_get("/", to_page)
    app.router.add_get("/checkpoint", to_page)
    app.router.add_get("/checkpoint/", _file_route(PAGE_DIR / "index.html"))
    for path in sorted(PAGE_DIR.iterdir()):
        if path.is_file():
            app.router.add_get(f"/checkpoint/{path.name}", _file_route(path))
    app.router.add_get("/checkpoint/config.json", config_json)
    app.router.add_get("/checkpoint/lists/trust.json", _list_route(trust))
    app.router.add_get("/checkpoint/lists/revoked.json", _list_route(revoked))
    app.router.add_get("/checkpoint/lists/list-key.json", pinned_key)
    app.router.add_static("/checkpoint/vendor/zxing-wasm/", ZXING_DIST)
    return app


@checkpoint_app.command()
def serve(
    trust: Path = typer.Option(..., "--trust", help="signed trust list (`healthcode keys trust-list`); re-read on every request"),
    revoked: Optional[Path] = typer.Option(None, "--revoked", help="signed revocation list (`healthcode code revoke`)"),
    admit: str = typer.Option("green", "--admit", help="levels let through unless the page's ?admit= says otherwise"),
    list_key: Optional[Path] = typer.Option(None, "--list-key", envvar="HEALTHCODE_LIST_KEY", help=LIST_KEY_HELP),
    port: int = typer.Option(8765, "--port", min=0, max=65535, help="TCP port (0: any free one)"),
    host: str = typer.Option("127.0.0.1", "--host", help="address to listen on; cameras need localhost or HTTPS"),
) -> None:
    """Serve the scanner page at /checkpoint/ with the current signed lists, until Ctrl-C.

    The lists are checked before serving (a missing, tampered or foreign list: exit 2).
    Example: `healthcode checkpoint serve --port 8765 --trust trust.json --revoked revoked.json --admit green,yellow`
    """
    levels = sorted(level.value for level in admitted(admit))
    if not (PAGE_DIR / "index.html").is_file() or not ZXING_DIST.is_dir():
        raise EnvironmentProblem(f"the checkpoint page is not installed in {FRONT_END}: run `make checkpoint` (npm ci)")
    lists = read_lists(trust, revoked, list_key, int(time.time()))
    pinned = None if lists.pin is None else (record_of(lists.pin).model_dump_json(indent=2) + "\n").encode()
    try:
        listener = socket.create_server((host, port))
    except OSError as error:
        raise EnvironmentProblem(f"cannot listen on {host}:{port}: {error.strerror}") from None
    bound = listener.getsockname()[1]
    err.print(f"checkpoint page at http://{host}:{bound}/checkpoint/ (Ctrl-C stops)", soft_wrap=True, highlight=False)
    web.run_app(make_app(trust, revoked, pinned, levels), sock=listener, print=None, access_log=None)


def register(app: typer.Typer) -> None:
    """Add the `checkpoint` group."""
    app.add_typer(checkpoint_app, name="checkpoint")
