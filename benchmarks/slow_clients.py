"""Slow clients against nerve: normal requests' latency with and without connections holding half-sent
requests, what the slow connections received and when, and throughput and CPU per request of the
worker against gunicorn's threaded worker (the one nerve ran before), all in one run.

    python benchmarks/slow_clients.py [--slow 200] [--requests 400] [--repeats 3] [--duration 5] [--throughput-only]

Everything runs on 127.0.0.1, bounded in count and time. The tests use SlowClients and normal_requests.
"""
import argparse
import http.client
import json
import os
import selectors
import socket
import statistics
import sys
import tempfile
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from benchmarks import harness  # noqa: E402

SENTENCE = "Anna Berg visited Oslo on Monday ."
BODY = json.dumps({"text": SENTENCE}).encode()
HEAD = b"POST /v1/ner HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
PATTERNS = {  # name: (first bytes sent, whether one more byte follows every trickle interval)
    "headers": (HEAD + b"X-Slow: ", True),  # stops inside the headers, then a byte now and then
    "body": (HEAD + b"Content-Length: %d\r\n\r\n" % len(BODY) + BODY[:12], True),  # inside the body
    "short": (HEAD + b"Content-Length: %d\r\n\r\n" % (len(BODY) + 40) + BODY, False),  # shorter than it says
    "stalled": (b"POST /v1/ner HT", False),  # a few bytes, then nothing
    "idle": (b"", False),  # connects and sends nothing
}
OLD_WORKER = {"GUNICORN_CMD_ARGS": "--worker-class gthread"}


class SlowClients:
    """``count`` connections cycling through ``patterns``, held open in one background thread until the
    server answers or closes each, or ``limit`` seconds pass. ``outcomes()``: (pattern, status, seconds),
    status being the HTTP status received, "closed" (closed with no answer) or "open" (never cut)."""

    def __init__(self, port, count, patterns=("headers", "body"), trickle=1.0, limit=60.0):
        self.trickle, self.limit, self.opened = trickle, limit, time.monotonic()
        self.sel, self.found, self.stopped = selectors.DefaultSelector(), [], threading.Event()
        for i in range(count):
            pattern = patterns[i % len(patterns)]
            sock = socket.create_connection(("127.0.0.1", port), timeout=5)
            sock.sendall(PATTERNS[pattern][0])
            sock.setblocking(False)
            self.sel.register(sock, selectors.EVENT_READ, (pattern, time.monotonic()))
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self):
        next_byte = time.monotonic() + self.trickle
        while self.sel.get_map() and time.monotonic() - self.opened < self.limit and not self.stopped.is_set():
            for key, _ in self.sel.select(0.1):
                self._receive(key)
            if time.monotonic() >= next_byte:
                next_byte += self.trickle
                for key in list(self.sel.get_map().values()):
                    if PATTERNS[key.data[0]][1]:
                        try:
                            key.fileobj.send(b"a")
                        except OSError:
                            pass  # the server has closed it: the read says how
        for key in list(self.sel.get_map().values()):
            self.found.append((key.data[0], "open", time.monotonic() - key.data[1]))
            self._drop(key.fileobj)

    def _receive(self, key):
        try:
            data = key.fileobj.recv(64)
        except BlockingIOError:
            return
        except OSError:
            data = b""
        status = int(data.split()[1]) if data.startswith(b"HTTP/1.1 ") else "closed"
        self.found.append((key.data[0], status, time.monotonic() - key.data[1]))
        self._drop(key.fileobj)

    def _drop(self, sock):
        self.sel.unregister(sock)
        sock.close()

    def outcomes(self, stop=False):
        """What each connection received; with ``stop``, those still open are left "open" now."""
        if stop:
            self.stopped.set()
        self.thread.join()
        return self.found


def normal_requests(port, count, body=BODY, timeout=30.0, pause=0.0):
    """(status or exception name, seconds) of ``count`` requests sent one after another."""
    out = []
    for _ in range(count):
        started = time.monotonic()
        try:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
            conn.request("POST", "/v1/ner", body, {"Content-Type": "application/json"})
            r = conn.getresponse()
            r.read()
            conn.close()
            status = r.status
        except Exception as e:  # noqa: BLE001 - every failure is an outcome to count
            status = type(e).__name__
        out.append((status, time.monotonic() - started))
        time.sleep(pause)
    return out


def percentiles(outcomes):
    seconds = sorted(s for _, s in outcomes)
    return {"p50_ms": 1e3 * statistics.median(seconds), "p99_ms": 1e3 * seconds[int(0.99 * (len(seconds) - 1))]}


def summary(outcomes):
    """{(pattern, status): (count, min s, max s)}."""
    groups = {}
    for pattern, status, seconds in outcomes:
        groups.setdefault((pattern, status), []).append(seconds)
    return {k: (len(v), min(v), max(v)) for k, v in sorted(groups.items(), key=str)}


def under_slow_clients(env, slow, requests, tmp, patterns=("headers", "body"), timeout=30.0):
    """Normal requests on a fresh server, alone and then beside ``slow`` slow connections."""
    proc, port = harness.start(None, env, tmp)
    try:
        alone = normal_requests(port, requests, pause=0.02)
        clients = SlowClients(port, slow, patterns)
        time.sleep(0.5)  # every slow connection has sent its first bytes
        beside = normal_requests(port, requests, pause=0.02, timeout=timeout)
        return alone, beside, clients.outcomes()
    finally:
        harness.stop([proc])


def report(name, alone, beside, slow):
    failed = [s for s, _ in beside if s != 200]
    print(f"{name}: {len(beside) - len(failed)} of {len(beside)} normal requests answered beside the slow "
          f"connections; alone p50 {percentiles(alone)['p50_ms']:.2f} ms p99 {percentiles(alone)['p99_ms']:.2f} ms, "
          f"beside them p50 {percentiles(beside)['p50_ms']:.2f} ms p99 {percentiles(beside)['p99_ms']:.2f} ms"
          + (f"; failures: {sorted(set(map(str, failed)))}" if failed else ""))
    for (pattern, status), (n, lo, hi) in summary(slow).items():
        print(f"    {n:4d} slow connections ({pattern}): {status} after {lo:.1f}-{hi:.1f} s")


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--slow", type=int, default=200)
    parser.add_argument("--requests", type=int, default=400)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--duration", type=int, default=5)
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--throughput-only", action="store_true", help="only the throughput rounds")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        if not args.throughput_only:
            report("nerve's worker", *under_slow_clients({}, args.slow, args.requests, tmp))
            # The threaded worker is shown with as many slow connections as it has threads, and few
            # requests: each one waits for its client's timeout.
            report("gunicorn's threaded worker (before)",
                   *under_slow_clients(OLD_WORKER, 8, 3, tmp, timeout=5.0))
        if not harness.shutil.which("wrk"):
            sys.exit("wrk is not installed (apt-get install wrk): throughput not measured")
        batch = {"texts": [SENTENCE] * 64}
        targets = {"threaded worker, 1 text": (None, OLD_WORKER, {"text": SENTENCE}),
                   "nerve's worker, 1 text": (None, {}, {"text": SENTENCE}),
                   "threaded worker, 64 texts": (None, OLD_WORKER, batch),
                   "nerve's worker, 64 texts": (None, {}, batch)}
        results = harness.rounds(targets, "threaded worker, 1 text", args.repeats, args.duration,
                                 args.connections, tmp)
    print(f"{args.connections} connections, {args.duration} s x {args.repeats} rounds, 2 workers; medians over rounds")
    for name, r in results.items():
        print(f"  {name:28s} {r['rps']:9.1f} req/s (spread {r['rps_spread']:.1f})  p50 {r['p50_ms']:6.2f} ms  "
              f"p99 {r['p99_ms']:6.2f} ms  CPU {r['cpu_ms']:.3f} ms/req  non-2xx {r['non_2xx']}")
    for size in ("1 text", "64 texts"):
        old, new = results[f"threaded worker, {size}"], results[f"nerve's worker, {size}"]
        print(f"{size}: req/s new/old {new['rps'] / old['rps']:.3f}, CPU per request new/old "
              f"{new['cpu_ms'] / old['cpu_ms']:.3f}")


if __name__ == "__main__":
    main()
