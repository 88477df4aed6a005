"""Structured JSON logs, the correlation id carried across HTTP and events, Prometheus metrics."""

from __future__ import annotations

import logging
import sys
import uuid
from contextvars import ContextVar

import structlog
from prometheus_client import Counter, Gauge, Histogram

correlation_id_var: ContextVar[str | None] = ContextVar("correlation_id", default=None)
causation_id_var: ContextVar[str | None] = ContextVar("causation_id", default=None)


def current_correlation_id() -> str:
    """The correlation id of the work in progress; a fresh one when none is set."""
    value = correlation_id_var.get()
    if value is None:
        value = uuid.uuid4().hex
        correlation_id_var.set(value)
    return value


def _add_correlation(
    _logger: object, _name: str, event_dict: structlog.types.EventDict
) -> structlog.types.EventDict:
    correlation_id = correlation_id_var.get()
    if correlation_id is not None:
        event_dict.setdefault("correlation_id", correlation_id)
    return event_dict


def configure_logging(service: str, level: str = "INFO", *, json: bool = True) -> None:
    """Route stdlib and structlog logs as one JSON line per event to stdout."""
    shared: list[structlog.types.Processor] = [
        structlog.contextvars.merge_contextvars,
        _add_correlation,
        structlog.processors.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
    ]
    renderer: structlog.types.Processor = (
        structlog.processors.JSONRenderer() if json else structlog.dev.ConsoleRenderer()
    )
    structlog.configure(
        processors=[*shared, structlog.stdlib.ProcessorFormatter.wrap_for_formatter],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
        cache_logger_on_first_use=True,
    )
    handler = logging.StreamHandler(sys.stdout)
    handler.setFormatter(
        structlog.stdlib.ProcessorFormatter(
            foreign_pre_chain=shared,
            processors=[
                structlog.stdlib.ProcessorFormatter.remove_processors_meta,
                structlog.processors.format_exc_info,
                renderer,
            ],
        )
    )
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    for noisy in ("aiokafka", "uvicorn.access"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    structlog.contextvars.bind_contextvars(service=service)


def get_logger(name: str) -> structlog.stdlib.BoundLogger:
    logger: structlog.stdlib.BoundLogger = structlog.get_logger(name)
    return logger


HTTP_LATENCY = Histogram(
    "clientele_http_request_seconds",
    "HTTP request latency",
    ["service", "method", "route", "status"],
)
HANDLER_LATENCY = Histogram(
    "clientele_event_handler_seconds",
    "Event handler latency, inbox transaction included",
    ["service", "consumer", "topic", "outcome"],
)
OUTBOX_BACKLOG = Gauge(
    "clientele_outbox_backlog", "Events written to the outbox and not yet published", ["service"]
)
PRODUCER_RENEWALS = Counter(
    "clientele_kafka_producer_renewals_total",
    "Kafka producers replaced by a new one after aiokafka gave up on them",
    ["client"],
)
OUTBOX_PUBLISHED = Counter(
    "clientele_outbox_published_total", "Events published by the outbox relay", ["service"]
)
CONSUMER_LAG = Gauge(
    "clientele_consumer_lag",
    "Records behind the partition's high watermark",
    ["service", "consumer", "topic", "partition"],
)
DEAD_LETTERS = Counter(
    "clientele_dead_letters_total",
    "Records sent to a dead-letter topic",
    ["service", "consumer", "topic"],
)
COMPONENT_UP = Gauge(
    "clientele_component_up",
    "1 when a dependency answers or a background component works, else 0",
    ["service", "component"],
)
BACKGROUND_TASK_FAILURES = Counter(
    "clientele_background_task_failures_total",
    "Background tasks that failed (or returned) and were restarted or given up",
    ["service", "task"],
)
INBOX_PRUNED = Counter(
    "clientele_inbox_pruned_total", "Processed inbox rows deleted after the retention", ["service"]
)
