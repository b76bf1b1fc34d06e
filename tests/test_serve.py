"""The production server (scripts/serve.py, web/server.py) as clients meet it:
slow clients neither starve it nor stay forever, a stop answers every request
already sent before exiting 0, Ctrl-C stops every process, a dead worker is
replaced. Real server processes on 127.0.0.1, real sockets."""

from __future__ import annotations

import contextlib
import http.client
import json
import os
import select
import signal
import socket
import time
from pathlib import Path

import pytest
from helpers import run_script, wait_for
from test_workers import HOST, ServeProcess, access_log, dev_questions

from web.server import CONNECTION_LIMIT, MAX_BODY_BYTES, REQUEST_TIMEOUT

# Seconds /health may take with slow clients connected: a healthy answer takes
# milliseconds; the gunicorn server this replaced stalled for 10 s and more.
HEALTH_BOUND = 3.0
SLOW_SOCKETS = 8
# What slow clients send: a request's start, never its end.
PARTIAL_REQUEST = b"GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: "


def _connect(port: int) -> socket.socket:
    return socket.create_connection((HOST, port), timeout=30)


def _post(question: str, request_id: str) -> tuple[bytes, bytes]:
    """(head, body) of a POST /ask."""
    body = json.dumps({"question": question}).encode()
    head = (
        f"POST /ask HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
        f"Content-Length: {len(body)}\r\nX-Request-ID: {request_id}\r\n\r\n"
    ).encode()
    return head, body


def _response(sock: socket.socket) -> tuple[int, dict[str, str], bytes]:
    response = http.client.HTTPResponse(sock)
    response.begin()
    return response.status, {k.lower(): v for k, v in response.getheaders()}, response.read()


def _refused(port: int) -> bool:
    try:
        socket.create_connection((HOST, port), timeout=5).close()
    except ConnectionRefusedError:
        return True
    return False


def _closed_by_server(sock: socket.socket) -> bool:
    """Whether the server has closed this connection (without answering)."""
    if not select.select([sock], [], [], 0)[0]:
        return False
    try:
        return sock.recv(1024) == b""
    except OSError:  # reset
        return True


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


@pytest.mark.slow
def test_slow_clients_neither_starve_the_server_nor_stay(index_dir: Path, tmp_path: Path) -> None:
    with ServeProcess(tmp_path / "serve.log", "--index", index_dir, "--workers", "2") as server:
        assert wait_for(lambda: len(server.children()) == 2, timeout=30, every=0.05)
        slow = [_connect(server.port) for _ in range(SLOW_SOCKETS)]
        began = time.monotonic()
        try:
            for sock in slow:
                sock.sendall(PARTIAL_REQUEST)
            trickling = slow[::2]  # the others wait
            for _ in range(5):
                for sock in trickling:
                    sock.sendall(b"a")
                started = time.monotonic()
                try:
                    status, _, _ = server.request("GET", "/health", timeout=HEALTH_BOUND)
                except TimeoutError:
                    pytest.fail(f"/health took over {HEALTH_BOUND} s with slow clients connected")
                assert status == 200
                assert time.monotonic() - started < HEALTH_BOUND
            status, _, body = server.request("POST", "/ask", {"question": dev_questions()[0]})
            assert status == 200, body[:300]
            assert json.loads(body)["answered"]

            # A body too big to be worth reading is refused before it is sent.
            with _connect(server.port) as big:
                big.sendall(
                    b"POST /ask HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
                    b"Content-Length: %d\r\n\r\n" % (MAX_BODY_BYTES + 1)
                )
                status, headers, data = _response(big)
                assert status == 413 and headers["content-type"] == "application/json"
                assert json.loads(data)["error"]["code"] == "request_entity_too_large"

            # A request still arriving REQUEST_TIMEOUT after its first byte is
            # cut off, whether it trickles in or waits; not before.
            def all_closed() -> bool:
                for sock in trickling:
                    if not _closed_by_server(sock):
                        with contextlib.suppress(OSError):  # closed meanwhile
                            sock.send(b"a")
                return all(_closed_by_server(sock) for sock in slow)

            time.sleep(max(0.0, began + REQUEST_TIMEOUT / 2 - time.monotonic()))
            assert not any(_closed_by_server(sock) for sock in slow)
            assert wait_for(all_closed, timeout=REQUEST_TIMEOUT + 10, every=0.5)
        finally:
            for sock in slow:
                sock.close()
        assert server.stop() == 0


@pytest.mark.slow
def test_more_idle_connections_than_a_process_holds(index_dir: Path, tmp_path: Path) -> None:
    """At its connection limit the server closes the connections that have waited
    longest for nothing, so a new client gets in at once (not 30 s later)."""
    with ServeProcess(tmp_path / "serve.log", "--index", index_dir) as server:
        idle = [_connect(server.port) for _ in range(CONNECTION_LIMIT + 100)]
        try:
            started = time.monotonic()
            status, _, _ = server.request("GET", "/health", timeout=HEALTH_BOUND)
            assert status == 200
            assert time.monotonic() - started < HEALTH_BOUND
            assert wait_for(lambda: _closed_by_server(idle[0]), timeout=HEALTH_BOUND)
        finally:
            for sock in idle:
                sock.close()
        assert server.stop() == 0


@pytest.mark.slow
@pytest.mark.parametrize("workers", [1, 2])
def test_sigterm_answers_what_was_sent_then_exits(
    index_dir: Path, tmp_path: Path, workers: int
) -> None:
    questions = dev_questions()
    with ServeProcess(
        tmp_path / "serve.log", "--index", index_dir, "--workers", str(workers)
    ) as server:
        forked = workers if workers > 1 else 0
        assert wait_for(lambda: len(server.children()) == forked, timeout=30, every=0.05)
        # One request half sent when the stop comes: in flight.
        head, body = _post(questions[0], "half")
        half = _connect(server.port)
        half.sendall(head + body[:5])
        # Requests sent whole just before the stop: queued, wherever they wait
        # (the kernel's backlog, a socket's buffer, the server's queue).
        sent = []
        for i, question in enumerate(questions):
            sock = _connect(server.port)
            sock.sendall(b"".join(_post(question, f"sent-{i}")))
            sent.append(sock)
        server.proc.send_signal(signal.SIGTERM)

        # New connections are refused while the half-sent request is still open.
        assert wait_for(lambda: _refused(server.port), timeout=15, every=0.05)
        assert server.proc.poll() is None, "exited with a request half received"
        half.sendall(body[5:])
        for i, sock in enumerate([half, *sent]):
            status, headers, data = _response(sock)
            sock.close()
            assert status == 200, data[:300]
            assert headers["x-request-id"] == ("half" if i == 0 else f"sent-{i - 1}")
            assert "answer" in json.loads(data)
        assert server.proc.wait(timeout=30) == 0
        children = server.children()
    assert not children, "workers left behind"
    log = server.log()
    assert "Traceback" not in log, log
    assert sorted(r["request_id"] for r in access_log(log) if r["path"] == "/ask") == sorted(
        ["half", *(f"sent-{i}" for i in range(len(questions)))]
    )


@pytest.mark.slow
@pytest.mark.parametrize("workers", [1, 2])
def test_ctrl_c_stops_every_process(index_dir: Path, tmp_path: Path, workers: int) -> None:
    log = tmp_path / "serve.log"
    with ServeProcess(log, "--index", index_dir, "--workers", str(workers), session=True) as server:
        if workers > 1:
            assert wait_for(lambda: len(server.children()) == workers, timeout=30, every=0.05)
        processes = [server.proc.pid, *server.children()]
        conn = server.connection()  # an idle keep-alive connection does not hold the stop
        assert server.request("GET", "/health", conn=conn)[0] == 200
        os.killpg(server.proc.pid, signal.SIGINT)  # what a terminal does on Ctrl-C
        assert server.proc.wait(timeout=30) == 0
        conn.close()
    assert not any(_alive(pid) for pid in processes)
    assert "Traceback" not in server.log(), server.log()


@pytest.mark.slow
def test_a_dead_worker_is_replaced(index_dir: Path, tmp_path: Path) -> None:
    with ServeProcess(tmp_path / "serve.log", "--index", index_dir, "--workers", "2") as server:
        assert wait_for(lambda: len(server.children()) == 2, timeout=30, every=0.05)
        victim = min(server.children())
        os.kill(victim, signal.SIGKILL)
        assert wait_for(
            lambda: len(server.children()) == 2 and victim not in server.children(),
            timeout=30,
            every=0.05,
        )
        # The new worker can be seen before the supervisor's line reaches the log file.
        line = f"worker {victim} was killed by SIGKILL; starting another"
        assert wait_for(lambda: line in server.log(), timeout=10, every=0.05), server.log()
        for question in dev_questions()[:4]:
            status, _, body = server.request("POST", "/ask", {"question": question})
            assert status == 200, body[:300]
        assert server.stop() == 0


@pytest.mark.slow
@pytest.mark.parametrize("workers", [1, 2])
def test_a_taken_port_is_refused_in_one_line(index_dir: Path, workers: int) -> None:
    with socket.socket() as taken:
        taken.bind((HOST, 0))
        taken.listen()
        port = taken.getsockname()[1]
        # The default host is 127.0.0.1 (the tests' environment has no QA_HOST).
        args = ("--index", index_dir, "--port", str(port), "--workers", str(workers))
        done = run_script("serve.py", *args)
    assert done.returncode == 1
    assert done.stderr.splitlines() == [
        f"error: cannot listen on {HOST}:{port} (Address already in use)."
    ]
