"""A candidate version answering a share of its model's traffic beside it, after the client has its answer.

The view hands over the texts, the options and the entities the current model returned; a thread of
the worker's own runs the candidate on them and counts its latency and how often its entities
differ. A request is chosen by an accumulator (share added per request, a request mirrored each time
it passes 1), so the mirrored share is exact per worker whatever the traffic's rhythm. The queue is
bounded: when the candidate falls behind, requests are dropped (and counted), never queued without end.

The candidate's work waits until the worker has no request at work (up to IDLE_WAIT), so that it
takes the time between requests rather than the GIL from the next one.
"""
import queue
import threading
import time
from contextlib import contextmanager, nullcontext

from model.predict import annotate
from service import metrics

QUEUE = 64
IDLE_WAIT = 0.05   # seconds


def spans(results):
    """Per text, the set of (start, end, label) of its entities."""
    return [{(e["start"], e["end"], e["label"]) for e in r["entities"]} for r in results]


class Mirror:
    def __init__(self, share, enabled=True):
        self.share, self._credit, self.enabled = float(share), 0.0, enabled
        self._queue = queue.Queue(QUEUE)
        self._lock = threading.Lock()
        self._thread = None
        self._active = 0

    def busy(self):
        """Around a request's work: the candidate's waits for it."""
        return self._busy() if self.enabled else nullcontext()

    @contextmanager
    def _busy(self):
        with self._lock:
            self._active += 1
        try:
            yield
        finally:
            with self._lock:
                self._active -= 1

    def chosen(self):
        """Whether this request is one of the share mirrored."""
        with self._lock:
            self._credit += self.share
            if self._credit < 1.0:
                return False
            self._credit -= 1.0
            return True

    def offer(self, candidate, req, results):
        """Mirror a request answered with ``results`` to ``candidate`` (a Model), if it is chosen."""
        if candidate is None or not self.chosen():
            return
        name = candidate.name
        if self._thread is None:
            with self._lock:
                if self._thread is None:
                    self._thread = threading.Thread(target=self._run, name="nerve-mirror", daemon=True)
                    self._thread.start()
        try:
            self._queue.put_nowait((candidate, req.texts, req.labels, req.threshold, spans(results)))
        except queue.Full:
            metrics.child(metrics.CANDIDATE_REQUESTS, name, "dropped").inc()

    def _run(self):
        while True:
            candidate, texts, labels, threshold, current = self._queue.get()
            deadline = time.monotonic() + IDLE_WAIT
            while self._active and time.monotonic() < deadline:
                time.sleep(0.0005)
            try:
                self.compare(candidate, texts, labels, threshold, current)
            except Exception:  # noqa: BLE001 - a candidate that fails on an input is counted, never fatal
                metrics.child(metrics.CANDIDATE_REQUESTS, candidate.name, "failed").inc()

    @staticmethod
    def compare(candidate, texts, labels, threshold, current):
        name = candidate.name
        if labels is not None:
            labels = [label for label in labels if label in candidate.types]
        started = time.perf_counter()
        results, _ = annotate(texts, candidate, labels, threshold, False, False)
        metrics.child(metrics.CANDIDATE_LATENCY, name).observe(time.perf_counter() - started)
        theirs = spans(results)
        pairs = list(zip(current, theirs))
        differing = sum(1 for a, b in pairs if a != b)
        metrics.child(metrics.CANDIDATE_REQUESTS, name, "compared").inc()
        metrics.child(metrics.CANDIDATE_TEXTS, name, "compared").inc(len(texts))
        metrics.child(metrics.CANDIDATE_TEXTS, name, "differing").inc(differing)
        metrics.child(metrics.CANDIDATE_ENTITIES, name, "only_current").inc(sum(len(a - b) for a, b in pairs))
        metrics.child(metrics.CANDIDATE_ENTITIES, name, "only_candidate").inc(sum(len(b - a) for a, b in pairs))
