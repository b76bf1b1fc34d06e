"""HTTP edges the app checks itself, whichever server runs it:

- A body sent without Content-Length (chunked) is read here, up to
  `QA_MAX_BODY_BYTES`: over it, 413; framing the server cannot parse, 400.
  gunicorn hands such a body to the app as a stream, and werkzeug would read
  the first `QA_MAX_BODY_BYTES` bytes of it as the whole body (valid JSON plus
  padding answered 200) or fail on a bad chunk size as a 500. waitress decodes
  chunked bodies itself and sets Content-Length, so this does nothing there.
- The Host header must name one of `QA_ALLOWED_HOSTS` (any port), else 400: a
  web page that rebinds its own domain name to 127.0.0.1 sends its own Host.
"""

from __future__ import annotations

import io
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from flask import Flask, request
from werkzeug.exceptions import BadRequest, HTTPException, RequestEntityTooLarge

if TYPE_CHECKING:
    from _typeshed.wsgi import StartResponse, WSGIApplication, WSGIEnvironment

    from qa.settings import Settings

# The environ key where BodyLimit leaves its refusal for the app to answer.
REFUSAL = "newsqa.body_refusal"
ANY_HOST = "*"
# Addresses that bind every interface: they name no host a client would send.
WILDCARDS = {"", "0.0.0.0", "::", "[::]"}


class BodyLimit:
    """WSGI middleware: reads a body that has no Content-Length (at most
    `max_bytes` of it) and passes it on with one, or a refusal (see `init_app`)."""

    def __init__(self, app: WSGIApplication, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    def __call__(self, environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        if environ.get("CONTENT_LENGTH") or not environ.get("HTTP_TRANSFER_ENCODING"):
            return self.app(environ, start_response)
        body = b""
        try:
            stream = environ["wsgi.input"]
            while len(body) <= self.max_bytes:
                data = stream.read(self.max_bytes + 1 - len(body))
                if not data:
                    break
                body += data
        # The server parses the framing as the stream is read, and each server
        # raises its own errors (gunicorn: InvalidChunkSize, ChunkMissingTerminator…).
        except Exception as exc:
            refusal: HTTPException | None = BadRequest(
                f"The request body's framing is malformed ({type(exc).__name__}): "
                "send a Content-Length, or well-formed chunks."
            )
        else:
            refusal = RequestEntityTooLarge() if len(body) > self.max_bytes else None
        if refusal is not None:
            environ[REFUSAL] = refusal
            body = b""
        environ["wsgi.input"] = io.BytesIO(body)
        environ["CONTENT_LENGTH"] = str(len(body))
        return self.app(environ, start_response)


def allowed_hosts(settings: Settings, bound: str) -> frozenset[str]:
    """Host names served, lower-case: QA_ALLOWED_HOSTS and the address bound."""
    names = {h.strip().lower() for h in settings.allowed_hosts.split(",") if h.strip()}
    if bound not in WILDCARDS:
        names.add(f"[{bound}]" if ":" in bound and not bound.startswith("[") else bound)
    return frozenset(names)


def host_name(header: str) -> str:
    """The name in a Host header, lower-case, its port left out: '[::1]:80' -> '[::1]'."""
    header = header.strip().lower()
    if header.startswith("["):
        return header[: header.find("]") + 1]
    name, _, port = header.rpartition(":")
    return name if name and port.isdigit() else header


def init_app(app: Flask, settings: Settings, bound: str) -> None:
    """Wrap the app's WSGI callable in BodyLimit (at MAX_CONTENT_LENGTH) and check
    every request's Host. Both refusals are raised from a request hook, so they
    are answered, counted and logged like any other error."""
    limit = int(app.config["MAX_CONTENT_LENGTH"])
    app.wsgi_app = BodyLimit(app.wsgi_app, limit)  # type: ignore[method-assign]
    hosts = allowed_hosts(settings, bound)

    @app.before_request
    def _check_request() -> Any:
        refusal = request.environ.get(REFUSAL)
        if refusal is not None:
            raise refusal
        header = request.environ.get("HTTP_HOST")
        # No Host at all (HTTP/1.0) is no browser's request; a wrong one may be.
        if header is None or ANY_HOST in hosts or host_name(header) in hosts:
            return None
        raise BadRequest(
            f"Host {header[:100]!r} is not served here: add it to QA_ALLOWED_HOSTS to serve it."
        )
