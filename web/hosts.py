"""The Host header must name one of `QA_ALLOWED_HOSTS` (any port), else 400: a
web page that rebinds its own domain name to 127.0.0.1 sends its own Host.

(Request framing, chunked bodies included, is the HTTP server's: waitress
reads a body whole, de-chunked, before the app sees it; see web/server.py.)
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from flask import Flask, request
from werkzeug.exceptions import BadRequest

if TYPE_CHECKING:
    from qa.settings import Settings

ANY_HOST = "*"
# Addresses that bind every interface: they name no host a client would send.
WILDCARDS = {"", "0.0.0.0", "::", "[::]"}


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
    """Check every request's Host. The refusal is raised from a request hook, so
    it is answered, counted and logged like any other error."""
    hosts = allowed_hosts(settings, bound)

    @app.before_request
    def _check_host() -> Any:
        header = request.environ.get("HTTP_HOST")
        # No Host at all (HTTP/1.0) is no browser's request; a wrong one may be.
        if header is None or ANY_HOST in hosts or host_name(header) in hosts:
            return None
        raise BadRequest(
            f"Host {header[:100]!r} is not served here: add it to QA_ALLOWED_HOSTS to serve it."
        )
