"""Bearer-key authentication: no default key; keys compared in constant time."""

from __future__ import annotations

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
