"""The HTTP server: waitress, in one process or in worker processes forked from it.

    sock = listen(host, port)
    serve_one(app, sock, threads)        # this process serves
    serve_forked(app, sock, threads, workers, on_fork=..., on_ready=...)  # forked workers

Each process runs waitress's event loop, which reads every request whole
(headers and body) before handing it to one of the process's threads: a
client that sends slowly, or sends half a request and waits, holds a socket,
never a thread. A request must arrive whole within REQUEST_TIMEOUT of its
first byte and a connection may stay silent at most IDLE_TIMEOUT, so such
clients are also dropped; at CONNECTION_LIMIT, the connections that have
waited longest for nothing are closed to make room. With --workers N the
workers are forked after the app is loaded (encoder and index loaded once,
shared copy-on-write) and all accept on one listening socket; a small
supervisor restarts a worker that dies and passes SIGTERM/SIGINT on.

Why not gunicorn, which served `make run` before: its gthread worker reads a
request in the thread that answers it, so 2 workers x 1 thread were held by
2 slow sockets, and /health timed out for as long as they stayed (10 s and
more). Measured side by side (scripts/bench_server.py --slow-clients 64, 2
workers, README "Speed"): with 64 slow clients connected, /health p99 was
0.2-0.4 s here and every /health timed out with gunicorn; /ask kept 56-151
answers/s here (on 2 cores shared with other jobs) and got none from
gunicorn. Without slow clients the rates and the CPU time per answer are
alike. A buffering proxy (nginx) in front would do the same as the event
loop, at the cost of a second program to install and configure.

Stopping (SIGTERM or SIGINT, in every mode): each process stops accepting,
takes the connections already queued for it, finishes every request already
received, queued, or being received, sends the responses, closes idle
connections, then exits 0; a new connection is refused once every process has
closed the listening socket. A stop waits DRAIN_TIMEOUT at most.

What waitress refuses itself, before the app sees a request (a head over
256 kB, a body over MAX_BODY_BYTES, framing it cannot parse such as a bad
chunk size), is answered in the app's JSON error shape (`_Refusal`); those
refusals are not in the app's metrics or access log. waitress de-chunks a
chunked body before the app reads it, so the app's own limit
(QA_MAX_BODY_BYTES, a JSON 413) holds for it as for any body; a body cut
short never reaches the app (the connection is closed unanswered).
"""

from __future__ import annotations

import contextlib
import heapq
import json
import logging
import os
import select
import signal
import socket
import sys
import time
from collections.abc import Callable
from types import FrameType
from typing import TYPE_CHECKING

from waitress import wasyncore
from waitress.adjustments import Adjustments
from waitress.channel import HTTPChannel
from waitress.server import TcpWSGIServer
from waitress.task import ErrorTask

if TYPE_CHECKING:
    from flask import Flask

log = logging.getLogger("serve")

# Seconds from a request's first byte to its last (headers and body). /ask
# takes at most 16 kB: a real client sends that in well under a second.
REQUEST_TIMEOUT = 10
# Seconds a connection may stay silent, between requests or inside one.
IDLE_TIMEOUT = 30
# Seconds a stop gives the requests received to complete.
DRAIN_TIMEOUT = 20
# A connection accepted while stopping gets this long to send its first bytes.
FIRST_BYTES_GRACE = 1.0
# The event loop looks at the stop flag at least this often (seconds).
TICK = 0.2
# Open connections per process; slow or idle ones cost a socket each, not a
# thread. At the limit, the EVICTED that have waited longest are closed.
CONNECTION_LIMIT = 1000
EVICTED = 50
BACKLOG = 1024
# A body beyond this (or beyond the app's MAX_CONTENT_LENGTH, if larger) is
# refused by waitress (a 413) before it is buffered: waitress would otherwise
# spool up to 1 GB per request to disk before the app can refuse it. /ask
# refuses far smaller ones itself (QA_MAX_BODY_BYTES).
MAX_BODY_BYTES = 1 << 20
# What waitress's refusals say, by status ({} is waitress's own detail).
REFUSALS = {
    400: "The request's HTTP framing is malformed ({}): send well-formed headers, "
    "and a Content-Length or well-formed chunks.",
    413: "The request body is larger than {limit} bytes.",
    431: "The request line and headers take {header_limit} bytes or more: "
    "send a shorter URL or fewer headers.",
}
# A worker that dies is replaced, at most once per this many seconds.
RESTART_INTERVAL = 1.0
STOP_SIGNALS = {signal.SIGTERM, signal.SIGINT}


def listen(host: str, port: int) -> socket.socket:
    """The listening socket, bound now (raises OSError when the address is taken)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, port))
        sock.listen(BACKLOG)
    except BaseException:
        sock.close()
        raise
    return sock


def serve_one(app: Flask, sock: socket.socket, threads: int) -> int:
    """Serve in this process until SIGTERM or SIGINT, then drain; returns 0."""
    _serve(app, sock, threads)
    return 0


def serve_forked(
    app: Flask,
    sock: socket.socket,
    threads: int,
    workers: int,
    on_fork: Callable[[], None],
    on_ready: Callable[[], None],
) -> int:
    """Fork `workers` processes that serve on `sock`; run `on_fork` in each first.

    Returns when they have all exited after SIGTERM or SIGINT: 0 when each
    drained and exited cleanly, 1 otherwise. A worker that dies meanwhile is
    replaced.
    """
    # Blocked here (and in each child until it has its handlers), the signals
    # wait in sigtimedwait: none can land between two checks of a flag. An
    # ignored signal would be dropped even while blocked (a background job
    # starts with SIGINT ignored), hence a handler: sigtimedwait takes them first.
    watched = {*STOP_SIGNALS, signal.SIGCHLD}
    for signum in STOP_SIGNALS:
        signal.signal(signum, _Stop())
    signal.pthread_sigmask(signal.SIG_BLOCK, watched)
    children: set[int] = set()
    clean = True
    last_start = 0.0
    try:
        for _ in range(workers):
            children.add(_fork_worker(app, sock, threads, on_fork, watched))
        last_start = time.monotonic()
        on_ready()
        stopping = False
        while children:
            got = signal.sigtimedwait(watched, 1.0)
            if got is not None and got.si_signo in STOP_SIGNALS and not stopping:
                stopping = True
                sock.close()  # the workers' copies close as they drain
                for pid in children:
                    _signal(pid, signal.SIGTERM)
            for pid, status in _reap():
                children.discard(pid)
                if stopping:
                    clean = clean and os.waitstatus_to_exitcode(status) == 0
                    continue
                log.error("worker %d %s; starting another", pid, _describe(status))
                time.sleep(max(0.0, last_start + RESTART_INTERVAL - time.monotonic()))
                children.add(_fork_worker(app, sock, threads, on_fork, watched))
                last_start = time.monotonic()
    finally:
        for pid in children:  # only when this process fails: leave no worker behind
            _signal(pid, signal.SIGKILL)
        signal.pthread_sigmask(signal.SIG_UNBLOCK, watched)
    return 0 if clean else 1


def _fork_worker(
    app: Flask,
    sock: socket.socket,
    threads: int,
    on_fork: Callable[[], None],
    blocked: set[signal.Signals],
) -> int:
    pid = os.fork()
    if pid:
        return pid
    code = 1
    try:
        on_fork()
        _serve(app, sock, threads, unblock=blocked)
        code = 0
    except BaseException:
        log.exception("worker %d failed", os.getpid())
    finally:
        # Never back into the caller's code (it belongs to the supervisor).
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)


def _reap() -> list[tuple[int, int]]:
    """(pid, wait status) of every child that has exited."""
    done: list[tuple[int, int]] = []
    while True:
        try:
            pid, status = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return done
        if pid == 0:
            return done
        done.append((pid, status))


def _signal(pid: int, signum: int) -> None:
    with contextlib.suppress(ProcessLookupError):  # exited meanwhile
        os.kill(pid, signum)


def _describe(status: int) -> str:
    code = os.waitstatus_to_exitcode(status)
    return f"was killed by {signal.Signals(-code).name}" if code < 0 else f"exited with {code}"


class _Refusal(ErrorTask):
    """A request waitress refuses itself, answered in the app's JSON error shape
    (`{"error": {"code", "message"}}`) instead of waitress's plain text."""

    def execute(self) -> None:
        error = self.request.error
        adj = self.channel.server.adj
        detail = str(error.body)[:200]
        message = REFUSALS.get(error.code, "{}").format(
            detail, limit=adj.max_request_body_size - 1, header_limit=adj.max_request_header_size
        )
        code = "_".join(error.reason.lower().split())  # "Bad Request": bad_request, as werkzeug's
        body = json.dumps({"error": {"code": code, "message": message}}).encode()
        self.status = f"{error.code} {error.reason}"
        self.response_headers.extend(
            [("Content-Type", "application/json"), ("X-Content-Type-Options", "nosniff")]
        )
        self.set_close_on_finish()
        self.content_length = len(body)
        self.write(body)


class _Channel(HTTPChannel):
    """A connection that knows when its current request began to arrive."""

    error_task_class = _Refusal
    request_began = 0.0

    def received(self, data: bytes) -> bool:
        if self.request is None:
            self.request_began = time.time()
        return bool(super().received(data))

    def waiting_since(self) -> float:
        """When the request being received began, else the last byte in or out."""
        return self.request_began if self.request is not None else float(self.last_activity)

    def finished(self, now: float) -> bool:
        """Nothing left to do: no request being received, queued or answered, no
        response left to send, no bytes waiting to be read (a request already
        sent is served) and, when nothing came yet, its first bytes' grace over."""
        if self.requests or self.request is not None or self.total_outbufs_len:
            return False
        silent = self.last_activity == self.creation_time
        if silent and now - self.creation_time < FIRST_BYTES_GRACE:
            return False
        try:
            return not _readable(self.socket)
        except (OSError, ValueError):  # closed meanwhile
            return True


class _Server(TcpWSGIServer):
    channel_class = _Channel

    def readable(self) -> bool:
        """Whether to accept; at the connection limit, first make room (waitress
        alone would stop accepting until idle connections time out)."""
        if self.accepting and len(self._map) >= self.adj.connection_limit:
            self._evict()
        return bool(super().readable())

    def _evict(self) -> None:
        """Close the EVICTED connections that have waited longest for nothing:
        a request arriving for the longest, else the longest silence. Those
        being answered stay."""
        if any(channel.will_close for channel in self.active_channels.values()):
            return  # the last ones are still closing
        idle = [c for c in self.active_channels.values() if not c.requests]
        for channel in heapq.nsmallest(EVICTED, idle, key=_Channel.waiting_since):
            channel.will_close = True

    def maintenance(self, now: float) -> None:
        """Close idle connections (waitress: IDLE_TIMEOUT) and those whose request
        has been arriving for longer than REQUEST_TIMEOUT (a byte at a time)."""
        super().maintenance(now)
        late = now - REQUEST_TIMEOUT
        for channel in self.active_channels.values():
            arriving = channel.request is not None and not channel.requests
            if arriving and channel.request_began < late:
                channel.will_close = True


class _Stop:
    """The signal handler: sets the flag that the event loop looks at."""

    requested = False

    def __call__(self, signum: int, frame: FrameType | None) -> None:
        self.requested = True


def _serve(
    app: Flask, sock: socket.socket, threads: int, unblock: set[signal.Signals] | None = None
) -> None:
    """Run waitress on `sock` until SIGTERM or SIGINT, then drain."""
    stop = _Stop()
    for signum in STOP_SIGNALS:
        signal.signal(signum, stop)
    if unblock:
        signal.pthread_sigmask(signal.SIG_UNBLOCK, unblock)
    sockets: dict[int, wasyncore.dispatcher] = {}
    adj = Adjustments(
        sockets=[sock],
        threads=threads,
        channel_timeout=IDLE_TIMEOUT,
        cleanup_interval=1,
        connection_limit=CONNECTION_LIMIT,
        backlog=BACKLOG,
        # waitress refuses a body of this size or more: +1 accepts MAX_BODY_BYTES.
        max_request_body_size=max(MAX_BODY_BYTES, app.config.get("MAX_CONTENT_LENGTH") or 0) + 1,
        # poll(), not select(): select() fails past 1024 file descriptors.
        asyncore_use_poll=True,
    )
    sockinfo = (sock.family, sock.type, sock.proto, sock.getsockname())
    server = _Server(app, sockets, _sock=sock, adj=adj, bind_socket=False, sockinfo=sockinfo)
    try:
        while not stop.requested:
            wasyncore.loop(timeout=TICK, map=sockets, use_poll=True, count=1)
        _drain(server, sockets)
    finally:
        server.task_dispatcher.shutdown(timeout=5)  # threads still busy: a stuck request
        wasyncore.close_all(sockets)


def _drain(server: _Server, sockets: dict[int, wasyncore.dispatcher]) -> None:
    """Stop accepting, then serve what was received until every connection is done."""
    # Connections the kernel has queued already hold requests sent before the stop.
    for _ in range(CONNECTION_LIMIT):
        if not _readable(server.socket):
            break
        server.handle_accept()
    wasyncore.dispatcher.close(server)  # the listener only; the trigger stays
    deadline = time.monotonic() + DRAIN_TIMEOUT
    while server.active_channels and time.monotonic() < deadline:
        now = time.time()
        for channel in list(server.active_channels.values()):
            if channel.finished(now):
                channel.will_close = True
        server.maintenance(now)  # not called by the loop once the listener is gone
        wasyncore.loop(timeout=TICK, map=sockets, use_poll=True, count=1)
    if server.active_channels:
        log.warning(
            "stopped after %d s with %d connections unfinished",
            DRAIN_TIMEOUT,
            len(server.active_channels),
        )


def _readable(sock: socket.socket) -> bool:
    """Whether `sock` has bytes (or a connection) waiting; poll(), as select()
    fails on a file descriptor past 1024."""
    poller = select.poll()
    poller.register(sock, select.POLLIN)
    return bool(poller.poll(0))
