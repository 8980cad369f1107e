"""Bearer-key authentication: no default key; keys compared in constant time."""

from __future__ import annotations

import hashlib
import secrets

from fastapi import Request

from serve.errors import APIError


def check_bearer(request: Request, api_key: str | None) -> None:
    """Raise 401 unless `Authorization: Bearer <api_key>` is present (no-op when no key is configured)."""
    if not api_key:
        return
    header = request.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token:
        raise APIError(
            401,
            "missing API key: send `Authorization: Bearer KEY` (the key given to --api-key)",
            code="invalid_api_key",
        )
    if not secrets.compare_digest(token.strip().encode("utf-8", "surrogateescape"), api_key.encode("utf-8")):
        raise APIError(
            401,
            "invalid API key: the bearer token does not match the server's --api-key",
            code="invalid_api_key",
        )


def caller_id(request: Request) -> str:
    """Whose share of the load a request counts against: its bearer token (hashed, so no key is kept in
    the clear), else its client address. Without a server key any token passes, so this separates
    well-behaved clients only; the queue and token limits bound everyone."""
    scheme, _, token = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() == "bearer" and token.strip():
        digest = hashlib.sha256(token.strip().encode("utf-8", "surrogateescape")).hexdigest()[:16]
        return f"key:{digest}"
    return f"addr:{request.client.host if request.client else 'unknown'}"
