"""Structured request logs (JSON lines, tokens redacted) and Prometheus metrics."""

from __future__ import annotations

import hmac
import json
import logging
import re
import sys
import time
from collections.abc import Iterator
from typing import Any

from flask import Flask, Response, g, request
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily

from nbpack.errors import NotFound, Unauthorized
from nbpack.webhooks.dispatch import Dispatcher

from .http import bearer_token

# Routes whose first path segment after the prefix is the handle's git token (clone, members, the lone notebook).
_TOKEN_IN_PATH = re.compile(r"^/(git|files|nb)/[^/]+/")
# Link tokens, and callback URLs: they may carry the receiver's own credentials in their query string.
_TOKEN_IN_QUERY = re.compile(r"([?&](?:t|callback_url)=)[^&]+")


def redact(path: str) -> str:
    """A request path with link tokens removed, fit for logs."""
    return _TOKEN_IN_QUERY.sub(r"\1REDACTED", _TOKEN_IN_PATH.sub(r"/\1/REDACTED/", path))


class _WebhookCollector:
    """Exposes the service's webhook outcomes (counted inside nbpack, which knows nothing of Prometheus)."""

    def __init__(self, webhooks: Dispatcher) -> None:
        self.webhooks = webhooks

    def collect(self) -> Iterator[CounterMetricFamily | GaugeMetricFamily]:  # prometheus_client's protocol
        family = CounterMetricFamily(
            "nbpack_webhook_deliveries", "Webhook delivery attempts by outcome", labels=["outcome"]
        )
        for outcome, value in self.webhooks.counts().items():
            family.add_metric([outcome], value)
        yield family
        yield GaugeMetricFamily(
            "nbpack_webhook_pending",
            "Webhooks waiting in the outbox at this replica's last look",
            self.webhooks.backlog,
        )
        yield GaugeMetricFamily(
            "nbpack_webhook_open_circuits",
            "Callback hosts this replica leaves alone for now",
            self.webhooks.open_circuits(),
        )


class JsonFormatter(logging.Formatter):
    """One JSON object per line, with the extra fields a call attached."""

    _SKIP = set(logging.LogRecord("", 0, "", 0, "", (), None).__dict__) | {"message", "asctime"}

    def format(self, record: logging.LogRecord) -> str:
        doc: dict[str, Any] = {
            "time": round(record.created, 3),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        doc.update({k: v for k, v in record.__dict__.items() if k not in self._SKIP})
        if record.exc_info:
            doc["exc"] = self.formatException(record.exc_info)
        return json.dumps(doc, default=str)


def _setup_logging() -> None:
    root = logging.getLogger("nbpack")
    if not any(isinstance(h.formatter, JsonFormatter) for h in root.handlers):
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(JsonFormatter())
        root.addHandler(handler)
        root.setLevel(logging.INFO)
        root.propagate = False


def init_app(app: Flask) -> None:
    """Attach logging and the /metrics endpoint to the app."""
    _setup_logging()
    log = logging.getLogger("nbpack.access")
    registry = CollectorRegistry()
    requests = Counter("nbpack_requests_total", "HTTP requests", ["method", "endpoint", "status"], registry=registry)
    latency = Histogram("nbpack_request_seconds", "Request time to first byte", ["endpoint"], registry=registry)
    bytes_in = Counter("nbpack_bytes_in_total", "Request body bytes received", registry=registry)
    bytes_out = Counter("nbpack_bytes_out_total", "Response body bytes sent (declared length)", registry=registry)
    registry.register(_WebhookCollector(app.extensions["nbpack"].webhooks))
    app.extensions["nbpack_metrics"] = {
        "bundles_created": Counter("nbpack_bundles_created_total", "Bundles stored", registry=registry),
        "returns_ingested": Counter("nbpack_returns_ingested_total", "Return bundles stored", registry=registry),
    }

    @app.before_request
    def _start() -> None:
        g.started = time.perf_counter()

    @app.after_request
    def _done(resp: Response) -> Response:
        endpoint = request.endpoint or "unknown"
        took = time.perf_counter() - g.get("started", time.perf_counter())
        requests.labels(request.method, endpoint, str(resp.status_code)).inc()
        latency.labels(endpoint).observe(took)
        if request.content_length:
            bytes_in.inc(request.content_length)
        if resp.content_length:
            bytes_out.inc(resp.content_length)
        log.info(
            "request",
            extra={
                "method": request.method,
                "path": redact(request.full_path.rstrip("?")),
                "status": resp.status_code,
                "ms": round(took * 1000, 1),
                "bytes_in": request.content_length or 0,
                "bytes_out": resp.content_length,
            },
        )
        return resp

    config = app.extensions["nbpack"].config

    @app.get("/metrics")
    def metrics() -> Response:
        # Counts and endpoints tell an outsider how the service is used: a token, or local mode only.
        if config.metrics_token:
            given = bearer_token() or ""
            if not hmac.compare_digest(given.encode(), config.metrics_token.encode()):
                raise Unauthorized("/metrics needs Authorization: Bearer <NBPACK_METRICS_TOKEN>")
        elif not config.local_mode:
            raise NotFound("metrics are off: set NBPACK_METRICS_TOKEN to read them with that token")
        return Response(generate_latest(registry), mimetype=CONTENT_TYPE_LATEST)


def count(app: Flask, name: str) -> None:
    """Increment one of the service counters (bundles_created, returns_ingested)."""
    app.extensions["nbpack_metrics"][name].inc()
