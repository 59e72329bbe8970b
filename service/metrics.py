"""Prometheus metrics, correct across gunicorn workers (prometheus-client multiprocess mode).

With PROMETHEUS_MULTIPROC_DIR set (the start script sets and wipes it before Python starts), each
worker writes its samples to files there and a scrape builds a fresh registry that sums them.
"""
import fcntl
import os
import time
from collections import Counter as Tally
from contextlib import contextmanager

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

# ``model``: the model that answered ("" for routes that ask none, such as /healthz and /metrics).
REQUESTS = Counter("nerve_requests_total", "HTTP requests answered", ["route", "method", "status", "model"])
LATENCY = Histogram("nerve_request_duration_seconds", "Time to answer a request", ["route", "model"],
                    buckets=LATENCY_BUCKETS)
TOKENS = Counter("nerve_tokens_total", "Tokens tagged", ["model"])
TEXTS = Counter("nerve_texts_total", "Texts tagged", ["model"])
ENTITIES = Counter("nerve_entities_total", "Entities returned", ["model", "label"])
IN_FLIGHT = Gauge("nerve_in_flight_requests", "Requests being answered now", multiprocess_mode="livesum")
REJECTED = Counter("nerve_rejected_total", "Requests turned away before any work", ["reason"])
MODEL_INFO = Gauge("nerve_model_info", "The models being served (value 1)", ["model", "version"],
                   multiprocess_mode="livemax")
MODEL_RELOADS = Counter("nerve_model_reloads_total", "Model loads: loaded, or refused (the previous version keeps "
                        "serving)", ["model", "result"])
CANDIDATE_REQUESTS = Counter("nerve_candidate_requests_total", "Requests mirrored to a model's candidate: compared, "
                             "dropped (the candidate fell behind) or failed", ["model", "result"])
CANDIDATE_LATENCY = Histogram("nerve_candidate_duration_seconds", "Time the candidate took to tag a mirrored request",
                              ["model"], buckets=LATENCY_BUCKETS)
CANDIDATE_TEXTS = Counter("nerve_candidate_texts_total", "Texts tagged by the candidate: compared, and differing (its "
                          "entities not those the current model answered)", ["model", "result"])
CANDIDATE_ENTITIES = Counter("nerve_candidate_entity_differences_total", "Entities only the current model found "
                             "(only_current) or only the candidate (only_candidate)", ["model", "side"])
DICTIONARY_RELOADS = Counter("nerve_dictionary_reloads_total", "Dictionary file reads: loaded, or refused (the "
                             "previous dictionary keeps serving)", ["result"])
DICTIONARY_ENTRIES = Gauge("nerve_dictionary_entries", "Entries of the dictionary being served", ["version"],
                           multiprocess_mode="max")
LABEL_STUDIO_EVENTS = Counter("nerve_label_studio_events_total", "Label Studio webhook events, by action and what "
                              "was done: training requested, counted, ignored", ["action", "result"])
OPEN_CONNECTIONS = Gauge("nerve_open_connections", "Client connections held now", multiprocess_mode="livesum")
CUT = Counter("nerve_connections_cut_total", "Connections the server cut off or refused: read_timeout (a "
              "request not whole in time, answered 408), write_timeout, idle_evicted and reader_evicted (to make "
              "room past the cap), refused (past the cap, answered 503)", ["reason"])
REJECTED.labels("overload")  # exported as 0 from the start, so dashboards and alerts see the series
for _reason in ("read_timeout", "write_timeout", "idle_evicted", "reader_evicted", "refused"):
    CUT.labels(_reason)


@contextmanager
def _directory_lock(path, exclusive):
    """Scrapes (shared) and the folding of dead workers' files (exclusive) never overlap, so a
    scrape never counts a dead worker twice or misses a file being folded away."""
    fd = os.open(os.path.join(path, ".fold.lock"), os.O_CREAT | os.O_RDWR, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX if exclusive else fcntl.LOCK_SH)
        yield
    finally:
        os.close(fd)


def fold_dead_worker(pid, path=None):
    """Bookkeeping when a worker exits: its live gauges go, and its counters and histograms are
    added into one archive file per type and deleted. Recycled workers then leave no files behind,
    so the directory stays the same size however many workers come and go."""
    from prometheus_client.mmap_dict import MmapedDict

    path = path or os.environ["PROMETHEUS_MULTIPROC_DIR"]
    multiprocess.mark_process_dead(pid, path)
    with _directory_lock(path, exclusive=True):
        for typ in ("counter", "histogram"):
            dead = os.path.join(path, f"{typ}_{pid}.db")
            if not os.path.exists(dead):
                continue
            archive = MmapedDict(os.path.join(path, f"{typ}_archive.db"))
            try:
                for key, value, timestamp, _ in MmapedDict.read_all_values_from_file(dead):
                    archive.write_value(key, archive.read_value(key)[0] + value, timestamp)
            finally:
                archive.close()
            os.remove(dead)


def exposition(collectors=()):
    """(body, content type) of the metrics of every worker, or of this process alone, and of
    ``collectors`` (read at each scrape)."""
    path = os.environ.get("PROMETHEUS_MULTIPROC_DIR")
    extra = CollectorRegistry()
    for collector in collectors:
        extra.register(collector)
    if path:
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)
        with _directory_lock(path, exclusive=False):
            return generate_latest(registry) + generate_latest(extra), CONTENT_TYPE_LATEST
    from prometheus_client import REGISTRY

    return generate_latest(REGISTRY) + generate_latest(extra), CONTENT_TYPE_LATEST


_METHODS = {"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"}
_children = {}  # (metric, label values) -> child: labels() takes a lock and builds a key each call


def child(metric, *values):
    key = (metric, values)
    found = _children.get(key)
    if found is None:
        found = _children[key] = metric.labels(*values)
    return found


class Instrumented:
    """WSGI middleware around the Flask app: requests in flight, and every answer counted and timed
    by route, method and status, including errors raised before a view runs.

    Routes are the URL rules (a path outside them is "unmatched"), methods outside the standard
    ones are "other": label values stay a small fixed set whatever clients send.
    """

    def __init__(self, wsgi_app, url_map):
        self.wsgi_app, self.url_map = wsgi_app, url_map
        self.plain = {rule.rule for rule in url_map.iter_rules() if not rule.arguments}

    def route(self, environ):
        path = environ.get("PATH_INFO") or "/"
        if path in self.plain:
            return path
        try:
            rule, _ = self.url_map.bind_to_environ(environ).match(return_rule=True)
            return rule.rule
        except Exception:  # noqa: BLE001 - no route, or one that does not take this method
            return "unmatched"

    def __call__(self, environ, start_response):
        started = time.perf_counter()
        status = ["500"]

        def start(line, headers, exc_info=None):
            status[0] = line[:3]
            return start_response(line, headers, exc_info)

        IN_FLIGHT.inc()
        try:
            return self.wsgi_app(environ, start)
        finally:
            IN_FLIGHT.dec()
            route = self.route(environ)
            method = environ.get("REQUEST_METHOD", "")
            model = environ.get("nerve.model", "")
            child(REQUESTS, route, method if method in _METHODS else "other", status[0], model).inc()
            child(LATENCY, route, model).observe(time.perf_counter() - started)


def record_result(model, results, n_tokens):
    child(TEXTS, model).inc(len(results))
    child(TOKENS, model).inc(n_tokens)
    for label, count in Tally(e["label"] for r in results for e in r["entities"]).items():
        child(ENTITIES, model, label).inc(count)


def show_dictionary(old, new):
    """Point nerve_dictionary_entries at ``new`` (a Dictionary or None), zeroing ``old``."""
    if old is not None:
        DICTIONARY_ENTRIES.labels(old.version).set(0)
    if new is not None:
        DICTIONARY_ENTRIES.labels(new.version).set(len(new))


def show_model(old, new):
    """Point nerve_model_info at ``new`` (a Model), zeroing ``old``."""
    if old is not None:
        MODEL_INFO.labels(old.name, old.version).set(0)
    if new is not None:
        MODEL_INFO.labels(new.name, new.version).set(1)
