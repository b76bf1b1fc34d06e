"""Observability: Prometheus metrics at GET /metrics and one JSON log line per request.

Metrics (prometheus_client):

  newsqa_http_requests_total{endpoint, method, status}     requests served
  newsqa_http_errors_total{endpoint, code}                 error responses, by error code
  newsqa_http_request_duration_seconds{endpoint}           latency histogram
  newsqa_answers_total, newsqa_abstentions_total           /ask outcomes (answered true/false)
  newsqa_index_articles, _chunks, _sentences               size of the build being served
  newsqa_index_build_info{build_id, encoder} 1             which build is served
  newsqa_feedback_rows, newsqa_feedback_bytes              size of the feedback store

`endpoint` is the route's rule (`/articles/<path:article_id>`), never the raw
path, and `method` is one of HTTP's (any other is "other"), so a scan of random
URLs or methods cannot blow up the number of series.

Several server processes (forked workers): when PROMETHEUS_MULTIPROC_DIR is
set before prometheus_client is imported (scripts/serve.py does it for
--workers > 1), counters and histograms are summed over all the workers by
prometheus_client's multiprocess mode; the index gauges are those of the
worker that answers the scrape (all workers follow the same `current` build).
Otherwise each process counts for itself.

The access log is the `web.access` logger at INFO: one JSON object per
request (request id, method, path, status, duration_ms, process id, and for
/ask whether it answered and from which build). The request id comes from
the X-Request-ID header when it is sane, else it is generated; it is echoed
back in the response's X-Request-ID.
"""

from __future__ import annotations

import json
import logging
import os
import re
import time
import uuid
from collections.abc import Iterable

from flask import Flask, Response, g, request
from prometheus_client import (
    CollectorRegistry,
    Counter,
    Histogram,
    ProcessCollector,
    disable_created_metrics,
    generate_latest,
    multiprocess,
    values,
)
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from qa.pipeline import QAEngine

access_log = logging.getLogger("web.access")

REQUEST_ID_HEADER = "X-Request-ID"
# A caller's id is kept only when it is short and plain: it goes into headers and logs.
_SANE_ID = re.compile(r"[A-Za-z0-9._:@/+=-]{1,128}")
# Raw paths in the log are cut: a 100 kB URL should not make a 100 kB log line.
MAX_LOGGED_PATH = 256
# Seconds: answers take a few ms; the top buckets catch a struggling server.
LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
UNMATCHED = "<unmatched>"
# Methods counted by name; any other is counted as OTHER_METHOD.
METHODS = frozenset("GET HEAD POST PUT DELETE OPTIONS PATCH TRACE CONNECT".split())
OTHER_METHOD = "other"
MAX_LOGGED_METHOD = 16
# Text format 0.0.4: what every Prometheus version scrapes (generate_latest writes it).
CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"


def multiprocess_mode() -> bool:
    """Whether prometheus_client keeps its values in per-process files (decided at import)."""
    return bool(getattr(values.ValueClass, "_multiprocess", False))


class IndexCollector(Collector):
    """The served build's size and id, read at scrape time from the engine."""

    def __init__(self, app: Flask) -> None:
        self.app = app

    def collect(self) -> Iterable[Metric]:
        engine: QAEngine = self.app.extensions["qa_engine"]
        reader = engine.reader
        counts = reader.counts
        for kind in ("articles", "chunks", "sentences"):
            gauge = GaugeMetricFamily(
                f"newsqa_index_{kind}", f"{kind.capitalize()} in the index build being served."
            )
            gauge.add_metric([], float(counts.get(kind, 0)))
            yield gauge
        info = GaugeMetricFamily(
            "newsqa_index_build_info",
            "The index build being served (always 1; the build is in the labels).",
            labels=["build_id", "encoder"],
        )
        info.add_metric([reader.build_id, str(reader.meta["encoder"]["name"])], 1.0)
        yield info


class FeedbackCollector(Collector):
    """The feedback store's size, read at scrape time (one file, whichever worker reads)."""

    def __init__(self, app: Flask) -> None:
        self.app = app

    def collect(self) -> Iterable[Metric]:
        size = self.app.extensions["qa_feedback"].size()
        rows = GaugeMetricFamily("newsqa_feedback_rows", "Feedback records stored.")
        rows.add_metric([], float(size.rows))
        yield rows
        on_disk = GaugeMetricFamily(
            "newsqa_feedback_bytes", "Size of the feedback SQLite file and its log, in bytes."
        )
        on_disk.add_metric([], float(size.bytes))
        yield on_disk


class Metrics:
    """The app's metrics; one instance per app (tests build many apps in one process)."""

    def __init__(self, app: Flask) -> None:
        self.app = app
        self.registry = CollectorRegistry()
        self.requests = Counter(
            "newsqa_http_requests",
            "HTTP requests served, by route, method and status.",
            ["endpoint", "method", "status"],
            registry=self.registry,
        )
        self.errors = Counter(
            "newsqa_http_errors",
            "Error responses (4xx and 5xx), by route and error code.",
            ["endpoint", "code"],
            registry=self.registry,
        )
        self.latency = Histogram(
            "newsqa_http_request_duration_seconds",
            "Time from the request's arrival in the app to its response, by route.",
            ["endpoint"],
            buckets=LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.answers = Counter(
            "newsqa_answers", "/ask answers that cite a sentence.", registry=self.registry
        )
        self.abstentions = Counter(
            "newsqa_abstentions",
            "/ask answers where the service abstained (answered=false).",
            registry=self.registry,
        )
        self.multiprocess = multiprocess_mode()
        if not self.multiprocess:
            self.registry.register(IndexCollector(app))
            self.registry.register(FeedbackCollector(app))
            ProcessCollector(registry=self.registry)

    def exposition(self) -> bytes:
        """The metrics in Prometheus text format."""
        if not self.multiprocess:
            return generate_latest(self.registry)
        # Every worker's files, summed; then this worker's view of the index.
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)
        registry.register(IndexCollector(self.app))
        registry.register(FeedbackCollector(self.app))
        return generate_latest(registry)

    def observe(self, response: Response, seconds: float) -> None:
        rule = request.url_rule
        endpoint = rule.rule if rule is not None else UNMATCHED
        status = response.status_code
        self.requests.labels(endpoint, counted_method(request.method), str(status)).inc()
        self.latency.labels(endpoint).observe(seconds)
        if status >= 400:
            self.errors.labels(endpoint, g.get("error_code") or str(status)).inc()
        answered = g.get("answered")
        if answered is True:
            self.answers.inc()
        elif answered is False:
            self.abstentions.inc()


def counted_method(method: str) -> str:
    return method if method in METHODS else OTHER_METHOD


def init_app(app: Flask) -> Metrics:
    """Register /metrics and the per-request hooks (timing, request id, access log)."""
    # No `*_created` series: they double the output and no dashboard here reads them.
    disable_created_metrics()
    metrics = Metrics(app)
    app.extensions["qa_metrics"] = metrics

    @app.before_request
    def _start() -> None:
        g.started = time.perf_counter()
        given = request.headers.get(REQUEST_ID_HEADER, "")
        g.request_id = given if _SANE_ID.fullmatch(given) else uuid.uuid4().hex

    @app.after_request
    def _finish(response: Response) -> Response:
        started = g.get("started")
        if started is None:  # a request that failed before the first hook ran
            started = time.perf_counter()
            g.request_id = uuid.uuid4().hex
        seconds = time.perf_counter() - started
        response.headers[REQUEST_ID_HEADER] = g.request_id
        try:
            metrics.observe(response, seconds)
        except Exception:  # counting must never turn an answer into an error
            access_log.exception("metrics update failed")
        _log(response, seconds)
        return response

    @app.get("/metrics")
    def metrics_endpoint() -> Response:
        engine: QAEngine = app.extensions["qa_engine"]
        engine.reload_if_changed()  # report the build a request would be answered from
        return Response(metrics.exposition(), content_type=CONTENT_TYPE)

    return metrics


def _log(response: Response, seconds: float) -> None:
    if not access_log.isEnabledFor(logging.INFO):
        return
    record: dict[str, object] = {
        "ts": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime()),
        "request_id": g.request_id,
        "method": request.method[:MAX_LOGGED_METHOD],
        "path": request.path[:MAX_LOGGED_PATH],
        "status": response.status_code,
        "duration_ms": round(seconds * 1000, 2),
        "pid": os.getpid(),  # which worker, when several serve
    }
    answered = g.get("answered")
    if answered is not None:
        record["answered"] = answered
        record["abstained"] = not answered
    build = response.headers.get("X-Index-Build")
    if build:
        record["build_id"] = build
    code = g.get("error_code")
    if code:
        record["error"] = code
    access_log.info(json.dumps(record, ensure_ascii=False))
