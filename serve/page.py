"""The chat page at `/`: static files shipped in serve/static/, a plain client of the /v1 API.

The page holds no secret and performs no admin action: the user types the API key, and every answer
comes from POST /v1/chat/completions like any other client's. The Content-Security-Policy lets it load
only its own files and talk only to this server.
"""

from __future__ import annotations

from functools import cache
from importlib.resources import files

from fastapi import APIRouter
from fastapi.responses import Response

ASSETS = {"chat.html": "text/html", "chat.js": "text/javascript", "chat.css": "text/css"}
HEADERS = {
    "Content-Security-Policy": (
        "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; img-src 'self'; "
        "base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-cache",
}

router = APIRouter(include_in_schema=False)


@cache
def asset(name: str) -> bytes:
    return files("serve").joinpath("static", name).read_bytes()


def _serve(name: str) -> Response:
    return Response(asset(name), media_type=f"{ASSETS[name]}; charset=utf-8", headers=HEADERS)


@router.get("/")
async def chat_page() -> Response:
    return _serve("chat.html")


@router.get("/static/chat.js")
async def chat_script() -> Response:
    return _serve("chat.js")


@router.get("/static/chat.css")
async def chat_style() -> Response:
    return _serve("chat.css")
