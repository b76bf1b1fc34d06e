"""scripts/serve.py --workers 2 (preloaded and forked): many concurrent
questions, every answer identical to the single-process engine's; metrics summed
over the workers; a clean stop.

`ServeProcess` (the real server in a subprocess) is shared with test_faults.py
and test_serve.py."""

from __future__ import annotations

import http.client
import json
import random
import re
import subprocess
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
from helpers import DATA, PYTHON, ROOT, SCRIPTS, script_env, wait_for

from qa.pipeline import QAEngine

DEV_QUESTIONS = DATA / "seed-qa-dev.json"
HOST = "127.0.0.1"
SERVING = re.compile(r"^serving .* on http://127\.0\.0\.1:(\d+)/", re.MULTILINE)
ROUNDS = 6  # each dev question this many times: 96 requests
CLIENTS = 8


class ServeProcess:
    """scripts/serve.py in a subprocess on a port the OS picks (--port 0), its
    stderr (the JSON access log included) in a file. Always stopped on exit:
    SIGTERM, then SIGKILL if it has not exited within `stop_timeout`."""

    def __init__(
        self,
        log: Path,
        *args: str | Path,
        ready_timeout: float = 90,
        stop_timeout: float = 30,
        session: bool = False,
    ) -> None:
        self.log_path = log
        self.args = [str(a) for a in args]
        self.session = session  # its own process group, as a terminal's job (killpg)
        self.ready_timeout = ready_timeout
        self.stop_timeout = stop_timeout
        self.port = 0
        self.returncode: int | None = None

    def __enter__(self) -> ServeProcess:
        env = script_env(QA_FEEDBACK_DB=str(self.log_path.with_suffix(".feedback.sqlite3")))
        with open(self.log_path, "wb") as log:
            self.proc = subprocess.Popen(
                [PYTHON, str(SCRIPTS / "serve.py"), "--host", HOST, "--port", "0", *self.args],
                stdout=log,
                stderr=subprocess.STDOUT,
                cwd=ROOT,
                env=env,
                start_new_session=self.session,
            )
        try:
            self._wait_ready()
        except BaseException:
            self.stop()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def log(self) -> str:
        return self.log_path.read_text(encoding="utf-8", errors="replace")

    def _wait_ready(self) -> None:
        deadline = time.monotonic() + self.ready_timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                pytest.fail(f"serve.py exited with {self.proc.returncode}:\n{self.log()}")
            found = SERVING.search(self.log())
            if found and not self.port:
                self.port = int(found.group(1))
            if self.port:
                try:
                    if self.request("GET", "/health", timeout=5)[0] == 200:
                        return
                except OSError:
                    pass
            time.sleep(0.1)
        pytest.fail(f"serve.py not ready within {self.ready_timeout} s:\n{self.log()}")

    def stop(self) -> int:
        if self.returncode is None:
            self.proc.terminate()
            try:
                self.returncode = self.proc.wait(timeout=self.stop_timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
                pytest.fail(f"serve.py ignored SIGTERM for {self.stop_timeout} s:\n{self.log()}")
        return self.returncode

    def connection(self, timeout: float = 30) -> http.client.HTTPConnection:
        return http.client.HTTPConnection(HOST, self.port, timeout=timeout)

    def request(
        self,
        method: str,
        path: str,
        body: Any = None,
        headers: dict[str, str] | None = None,
        timeout: float = 30,
        conn: http.client.HTTPConnection | None = None,
    ) -> tuple[int, dict[str, str], bytes]:
        """(status, headers, body); `body` other than bytes is sent as JSON."""
        own = conn is None
        conn = conn or self.connection(timeout)
        headers = dict(headers or {})
        if body is not None and not isinstance(body, bytes):
            body = json.dumps(body).encode()
            headers.setdefault("Content-Type", "application/json")
        try:
            conn.request(method, path, body, headers)
            response = conn.getresponse()
            data = response.read()
            return response.status, {k.lower(): v for k, v in response.getheaders()}, data
        except BaseException:
            conn.close()  # a half-read response must not be reused
            raise
        finally:
            if own:
                conn.close()

    def children(self) -> set[int]:
        """Process ids of the server's child processes (its workers)."""
        found = set()
        for stat in Path("/proc").glob("[0-9]*/stat"):
            try:
                fields = stat.read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(fields[1]) == self.proc.pid:
                found.add(int(stat.parent.name))
        return found


def access_log(text: str) -> list[dict[str, Any]]:
    """The JSON access-log lines of a server's output."""
    return [json.loads(line) for line in text.splitlines() if line.startswith("{")]


def metric(exposition: str, name: str, **labels: str) -> float:
    """The value of one sample in Prometheus text format (0 when absent)."""
    wanted = ",".join(f'{k}="{v}"' for k, v in sorted(labels.items()))
    for line in exposition.splitlines():
        if line.startswith("#") or " " not in line:
            continue
        key, value = line.rsplit(" ", 1)
        sample, _, label_text = key.partition("{")
        got = ",".join(sorted(label_text.rstrip("}").split(","))) if label_text else ""
        if sample == name and got == wanted:
            return float(value)
    return 0.0


def comparable(answer: dict[str, Any]) -> dict[str, Any]:
    """What must not depend on the process that answered (scores may differ in the
    last rounded digit with BLAS thread counts; sentences and offsets may not)."""
    return {
        "answered": answer["answered"],
        "answer": answer["answer"],
        "language": answer["language"],
        "message": answer["message"],
        "short_answer": answer["short_answer"],
        "citations": [
            (c["article_id"], c["start"], c["end"], c["sentence"]) for c in answer["citations"]
        ],
    }


def dev_questions() -> list[str]:
    return [q["q"] for q in json.loads(DEV_QUESTIONS.read_text(encoding="utf-8"))["questions"]]


@pytest.mark.slow
def test_two_workers_answer_like_one_engine(
    index_dir: Path, engine: QAEngine, tmp_path: Path
) -> None:
    questions = dev_questions()
    expected = {q: comparable(engine.ask(q).to_dict()) for q in questions}
    jobs = questions * ROUNDS
    random.Random(7).shuffle(jobs)
    with ServeProcess(tmp_path / "serve.log", "--index", index_dir, "--workers", "2") as server:
        # /health may answer before the second worker is forked.
        assert wait_for(lambda: len(server.children()) == 2, timeout=30, every=0.05)
        workers = server.children()

        def ask(job: tuple[int, str]) -> tuple[str, int, dict[str, str], bytes]:
            i, question = job
            status, headers, body = server.request(
                "POST", "/ask", {"question": question}, {"X-Request-ID": f"w-{i}"}
            )
            return question, status, headers, body

        with ThreadPoolExecutor(CLIENTS) as pool:
            results = list(pool.map(ask, enumerate(jobs)))
        metrics = server.request("GET", "/metrics")[2].decode()
        health = json.loads(server.request("GET", "/health")[2])
        assert server.stop() == 0
    assert not server.children(), "workers left behind"

    for i, (question, status, headers, body) in enumerate(results):
        assert status == 200, body[:300]
        assert headers["x-request-id"] == f"w-{i}"
        assert headers["x-index-build"] == engine.reader.build_id
        assert comparable(json.loads(body)) == expected[question], question

    # Both workers answered, each request is logged once with its id.
    lines = [r for r in access_log(server.log()) if r["path"] == "/ask"]
    assert sorted(r["request_id"] for r in lines) == sorted(f"w-{i}" for i in range(len(jobs)))
    by_pid = Counter(r["pid"] for r in lines)
    assert set(by_pid) == workers, by_pid

    # The counters are summed over both workers, whichever one answered the scrape.
    asked = {"endpoint": "/ask", "method": "POST", "status": "200"}
    assert metric(metrics, "newsqa_http_requests_total", **asked) == len(jobs)
    abstained = sum(not expected[q]["answered"] for q in jobs)
    assert metric(metrics, "newsqa_abstentions_total") == abstained
    assert metric(metrics, "newsqa_answers_total") == len(jobs) - abstained
    assert metric(metrics, "newsqa_http_request_duration_seconds_count", endpoint="/ask") == len(
        jobs
    )
    build = {"build_id": health["build_id"], "encoder": health["encoder"]["name"]}
    assert metric(metrics, "newsqa_index_build_info", **build) == 1
    assert metric(metrics, "newsqa_index_sentences") == health["counts"]["sentences"]
