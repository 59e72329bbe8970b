"""Prometheus metrics, correct across gunicorn workers (prometheus-client multiprocess mode).

With PROMETHEUS_MULTIPROC_DIR set (the start script sets and wipes it before Python starts), each
worker writes its samples to files there and a scrape builds a fresh registry that sums them.
"""
import os

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
    multiprocess,
)

# Buckets sit around the targets: a 25-token request takes about a millisecond of model time.
LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)

REQUESTS = Counter("nerve_requests_total", "HTTP requests answered", ["route", "method", "status"])
LATENCY = Histogram("nerve_request_duration_seconds", "Time to answer a request", ["route"],
                    buckets=LATENCY_BUCKETS)
TOKENS = Counter("nerve_tokens_total", "Tokens tagged")
TEXTS = Counter("nerve_texts_total", "Texts tagged")
ENTITIES = Counter("nerve_entities_total", "Entities returned", ["label"])
IN_FLIGHT = Gauge("nerve_in_flight_requests", "Requests being answered now", multiprocess_mode="livesum")
REJECTED = Counter("nerve_rejected_total", "Requests turned away before any work", ["reason"])
MODEL_INFO = Gauge("nerve_model_info", "The model being served (value 1)", ["name", "version"],
                   multiprocess_mode="livemax")
MODEL_RELOADS = Counter("nerve_model_reloads_total", "Model reload attempts", ["result"])
REJECTED.labels("overload")  # exported as 0 from the start, so dashboards and alerts see the series


def exposition():
    """(body, content type) of the metrics of every worker, or of this process alone."""
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)
        return generate_latest(registry), CONTENT_TYPE_LATEST
    from prometheus_client import REGISTRY

    return generate_latest(REGISTRY), CONTENT_TYPE_LATEST


def record_result(results, n_tokens):
    TEXTS.inc(len(results))
    TOKENS.inc(n_tokens)
    for r in results:
        for e in r["entities"]:
            ENTITIES.labels(e["label"]).inc()


def show_model(old, new):
    """Point nerve_model_info at ``new`` (a Model), zeroing ``old``."""
    if old is not None:
        MODEL_INFO.labels(old.name, old.version).set(0)
    if new is not None:
        MODEL_INFO.labels(new.name, new.version).set(1)
