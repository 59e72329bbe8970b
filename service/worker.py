"""The gunicorn worker nerve runs: requests are read whole, and answers written out, on an event loop.

gunicorn's threaded worker gives a connection to a thread once its first byte arrives, and the
thread then blocks reading the rest: a few clients that send half a request and stop hold every
thread. Here a thread only ever sees a complete request in memory and leaves its answer in memory.
One event loop per worker reads and writes every socket without blocking, under deadlines, so a
slow or stalled client costs a buffer, never a thread:

- a request must arrive whole within ``NERVE_READ_TOTAL_TIMEOUT`` seconds, with no pause over
  ``NERVE_READ_TIMEOUT``; past either it is answered 408 and the connection closed;
- an answer must be taken within ``NERVE_WRITE_TIMEOUT``, or the connection is closed;
- a connection idle after an answer is closed after ``NERVE_KEEPALIVE``, a new one that sends
  nothing after ``NERVE_READ_TIMEOUT``;
- past ``NERVE_MAX_CONNECTIONS`` a new connection takes the place of another: a kept-alive idle
  one, closed, or else the oldest that has not sent a request whole, answered 503; when every
  connection is at work, a few more are let in for the probes only, the rest answered 503 at once.

Probes (/healthz, /readyz) run on a thread of their own, so they answer while requests queue.
"""
import collections
import errno
import heapq
import http
import itertools
import os
import resource
import selectors
import socket
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime

import orjson
from gunicorn.http import wsgi
from gunicorn.http.errors import NoMoreData
from gunicorn.http.parser import RequestParser
from gunicorn.workers import base

from service import framing, metrics, settings_from_env
from service.errors import error_document
from service.logs import request_id

IDLE, READING, RUNNING, WRITING, CLOSING = "idle", "reading", "running", "writing", "closing"
PROBES = {b"/healthz", b"/readyz"}
PROBE_RESERVE = 16     # connections over the cap that may still ask a probe
LINGER = 2.0           # seconds a refused connection is read and discarded, so the client sees the answer
STOP_LINGER = 2.0      # seconds a stopping worker keeps idle connections for a request already on its way
MAX_HEADER_BYTES = 65536

LIMITS = {  # attribute: (environment variable, default seconds)
    "read_timeout": ("NERVE_READ_TIMEOUT", 5.0),
    "read_total": ("NERVE_READ_TOTAL_TIMEOUT", 20.0),
    "write_timeout": ("NERVE_WRITE_TIMEOUT", 30.0),
}


class Conn:
    """One client connection and what the event loop holds for it."""

    __slots__ = ("sock", "addr", "server", "buf", "out", "sent", "state", "since", "last", "keep", "served",
                 "probe_only", "continued", "events", "timer", "closed")

    def __init__(self, sock, addr, server, now):
        self.sock, self.addr, self.server = sock, addr, server
        self.buf, self.out, self.sent = bytearray(), b"", 0
        self.state, self.since, self.last = IDLE, now, now  # since: the state began; last: the last byte
        self.keep, self.served, self.probe_only, self.continued = True, 0, False, False
        self.events, self.timer, self.closed = 0, None, False


class Capture:
    """Where gunicorn's Response writes in a request's thread: kept for the event loop to send."""

    def __init__(self):
        self.parts = []

    def sendall(self, data):
        self.parts.append(bytes(data))

    def send(self, data):
        return len(data)  # only "100 Continue", which the event loop sent when the body was awaited

    def sendfile(self, file, offset=0, count=None):
        file.seek(offset)
        self.sendall(file.read(count))

    def data(self):
        return b"".join(self.parts)


def error_bytes(status, code, message, headers=(), request=b""):
    """A whole HTTP answer carrying the JSON error, closing the connection; its X-Request-ID is the one
    the (partly read) ``request`` gave, or a new one."""
    body = orjson.dumps(error_document(code, message))
    head_end = request.find(b"\r\n\r\n")
    given = framing.header_fields(request[:head_end]).get(b"x-request-id", [b""])[0] if head_end > 0 else b""
    head = [f"HTTP/1.1 {status} {http.HTTPStatus(status).phrase}", "Content-Type: application/json",
            f"Content-Length: {len(body)}", "Connection: close", f"X-Request-ID: {request_id(given.strip())}",
            *headers]
    return ("\r\n".join(head) + "\r\n\r\n").encode("latin-1") + body


def limits_from_env(environ=os.environ):
    return {name: float(environ.get(var, default)) for name, (var, default) in LIMITS.items()}


def request_path(request):
    line = request[:request.find(b"\r\n")].split(b" ")
    return line[1].split(b"?")[0] if len(line) > 1 else b""


def raise_open_files_limit():
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard == resource.RLIM_INFINITY or soft < hard:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (hard if hard != resource.RLIM_INFINITY else 65536, hard))
        except (ValueError, OSError):
            pass


class BufferingWorker(base.Worker):
    """A gunicorn worker: one event loop for every socket, threads for complete requests only."""

    def init_process(self):
        self.limits = limits_from_env()
        settings = settings_from_env()
        self.max_body = settings["MAX_CONTENT_LENGTH"]
        self.label_studio_body = settings["LABEL_STUDIO_MAX_BODY_BYTES"]
        self.cap = self.cfg.worker_connections
        self.poller = selectors.DefaultSelector()
        self.pool = ThreadPoolExecutor(self.cfg.threads, "nerve-request")
        self.probe_pool = ThreadPoolExecutor(1, "nerve-probe")
        self.done = collections.deque()  # (conn, future) of requests answered by a thread
        # Every connection by fd, and those idle (new, or kept alive after an answer), reading or
        # lingering after a refusal; dicts keep the order of age.
        self.conns, self.idle, self.kept, self.reading, self.lingering = {}, {}, {}, {}, {}
        self.timers, self.seq = [], itertools.count()
        self.stopping_at = None
        self.wake_r, self.wake_w = os.pipe()
        os.set_blocking(self.wake_r, False)
        os.set_blocking(self.wake_w, False)
        raise_open_files_limit()
        super().init_process()

    # The loop ---------------------------------------------------------------------------------

    def run(self):
        for listener in self.sockets:
            listener.setblocking(False)
            self.poller.register(listener, selectors.EVENT_READ, listener)
        self.poller.register(self.wake_r, selectors.EVENT_READ, None)
        while self.alive:
            self.notify()
            self.step()
            if self.ppid != os.getppid():
                self.log.info("Parent changed, shutting down: %s", self)
                break
        self.stop_gracefully()

    def step(self, cap=1.0):
        timeout = max(0.0, min(cap, self.timers[0][0] - time.monotonic())) if self.timers else cap
        try:
            events = self.poller.select(timeout)
        except InterruptedError:
            events = []
        for key, mask in events:
            if isinstance(key.data, Conn):
                self.on_io(key.data, mask)
            elif key.data is None:
                self.on_wake()
            else:
                self.accept(key.data)
        self.expire(time.monotonic())

    def stop_gracefully(self):
        """Stop accepting; let every request begun or under way finish, within the graceful timeout."""
        for listener in self.sockets:
            self.poller.unregister(listener)
        self.stopping_at = time.monotonic()
        for conn in [*self.idle.values(), *self.kept.values()]:
            self.schedule(conn)
        deadline = self.stopping_at + self.cfg.graceful_timeout
        while self.conns and time.monotonic() < deadline:
            self.notify()
            self.step(0.2)
        for conn in list(self.conns.values()):
            self.close(conn)
        self.pool.shutdown(wait=False)
        self.probe_pool.shutdown(wait=False)
        for listener in self.sockets:
            listener.close()

    def handle_exit(self, sig, frame):
        self.alive = False
        self.wake()

    def handle_quit(self, sig, frame):
        self.pool.shutdown(wait=False)
        super().handle_quit(sig, frame)

    def wake(self):
        try:
            os.write(self.wake_w, b"\0")
        except (BlockingIOError, OSError):
            pass  # a wake-up is already pending

    def on_wake(self):
        try:
            while os.read(self.wake_r, 4096):
                pass
        except BlockingIOError:
            pass
        while self.done:
            self.answered(*self.done.popleft())

    # Connections -----------------------------------------------------------------------------

    def accept(self, listener):
        # One connection per wake-up: every worker waits on the same listening socket, and one that
        # took all of a burst (a client pool opening its connections at once) would serve them alone
        # while the other workers sat idle, for as long as the connections are kept alive.
        try:
            sock, addr = listener.accept()
        except (BlockingIOError, InterruptedError):
            return
        except OSError as e:
            if e.errno in (errno.EMFILE, errno.ENFILE, errno.ENOBUFS, errno.ENOMEM):
                self.log.warning("cannot accept a connection: %s", e)
                return
            if e.errno == errno.ECONNABORTED:
                return
            raise
        self.admit(Conn(sock, addr, listener.getsockname(), time.monotonic()))

    def admit(self, conn):
        conn.sock.setblocking(False)
        try:  # an answer larger than the send buffer goes out in pieces: none waits for the client's delayed ACK
            conn.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        except OSError:
            pass  # not TCP (a Unix socket)
        if self.open_count() >= self.cap and not self.evict():
            if self.open_count() >= self.cap + PROBE_RESERVE:
                metrics.child(metrics.CUT, "refused").inc()
                self.refuse_at_once(conn)
                return
            conn.probe_only = True
        self.conns[conn.sock.fileno()] = conn
        metrics.OPEN_CONNECTIONS.inc()
        self.become(conn, IDLE)

    def open_count(self):
        return len(self.conns) - len(self.lingering)

    def evict(self):
        """Make room: close the oldest kept-alive idle connection, or else refuse the oldest of those
        that have begun no request or not sent it whole (a well-behaved client is never the oldest)."""
        if self.kept:
            metrics.child(metrics.CUT, "idle_evicted").inc()
            self.close(next(iter(self.kept.values())))
            return True
        oldest = [next(iter(pool.values())) for pool in (self.idle, self.reading) if pool]
        if not oldest:
            return False
        metrics.child(metrics.CUT, "reader_evicted").inc()
        self.refuse(min(oldest, key=lambda c: c.since), 503, "too_many_connections",
                    "the server holds too many connections; retry shortly", ("Retry-After: 1",))
        return True

    def refuse_at_once(self, conn):
        try:
            conn.sock.send(error_bytes(503, "too_many_connections", "the server holds too many connections; "
                                       "retry shortly", ("Retry-After: 1",)))
        except OSError:
            pass
        conn.sock.close()

    def become(self, conn, state):
        for pool in (self.idle, self.kept, self.reading):
            pool.pop(conn.sock.fileno(), None)
        conn.state, conn.since = state, time.monotonic()
        if state == IDLE:
            (self.kept if conn.served else self.idle)[conn.sock.fileno()] = conn
        elif state == READING:
            self.reading[conn.sock.fileno()] = conn
        elif state == CLOSING:
            self.lingering[conn.sock.fileno()] = conn
        # Nothing is watched while a thread has the request, nor while an answer goes out in full on the
        # first try (``flush`` watches for room only when it does not).
        self.watch(conn, 0 if state in (RUNNING, WRITING) else selectors.EVENT_READ)
        self.schedule(conn)

    def watch(self, conn, events):
        if events == conn.events:
            return
        if conn.events == 0:
            self.poller.register(conn.sock, events, conn)
        elif events == 0:
            self.poller.unregister(conn.sock)
        else:
            self.poller.modify(conn.sock, events, conn)
        conn.events = events

    def close(self, conn):
        if conn.closed:
            return
        conn.closed = True
        fd = conn.sock.fileno()
        self.watch(conn, 0)
        for pool in (self.conns, self.idle, self.kept, self.reading, self.lingering):
            pool.pop(fd, None)
        metrics.OPEN_CONNECTIONS.dec()
        try:
            conn.sock.close()
        except OSError:
            pass

    # Reading and writing ---------------------------------------------------------------------

    def on_io(self, conn, mask):
        if conn.closed:
            return
        if mask & selectors.EVENT_WRITE and conn.state == WRITING:
            self.flush(conn)
        elif mask & selectors.EVENT_READ:
            self.on_readable(conn)

    def on_readable(self, conn):
        try:
            data = conn.sock.recv(65536)
        except (BlockingIOError, InterruptedError):
            return
        except OSError:
            data = b""
        if not data or conn.state == CLOSING:
            if not data:
                self.close(conn)
            return
        if conn.state == IDLE:
            self.become(conn, READING)
        conn.buf += data
        conn.last = time.monotonic()
        self.dispatch(conn)

    def body_limit(self, buf):
        """Label Studio sends every task an annotator selected in one request: its routes take more."""
        newline = buf.find(b"\r\n")
        if newline > 0 and request_path(bytes(buf[:newline + 2])).startswith(b"/label-studio/"):
            return self.label_studio_body
        return self.max_body

    def dispatch(self, conn):
        """Hand the request to a thread if it has arrived whole; refuse it if it never can be served."""
        found = framing.frame(conn.buf, MAX_HEADER_BYTES, self.body_limit(conn.buf))
        if found.state == framing.INCOMPLETE:
            if found.expects_continue and not conn.continued:
                conn.continued = True
                self.send_now(conn, b"HTTP/1.1 100 Continue\r\n\r\n")
            return
        if found.state == framing.HEADERS_TOO_LARGE:
            return self.refuse(conn, 431, "request_header_fields_too_large",
                               f"the request line and headers are over {MAX_HEADER_BYTES} bytes")
        if found.state == framing.TOO_LARGE:
            metrics.child(metrics.REJECTED, "too_large").inc()
            return self.refuse(conn, 413, "request_entity_too_large",
                               f"body over the limit of {self.body_limit(conn.buf)} bytes")
        request = bytes(conn.buf[:found.end])
        unframed = found.state == framing.UNFRAMED
        del conn.buf[:len(conn.buf) if unframed else found.end]
        probe = request_path(request) in PROBES
        if conn.probe_only and not probe:
            metrics.child(metrics.CUT, "refused").inc()
            return self.refuse(conn, 503, "too_many_connections", "the server holds too many connections; "
                               "retry shortly", ("Retry-After: 1",))
        conn.continued = False
        self.become(conn, RUNNING)
        future = (self.probe_pool if probe else self.pool).submit(self.serve, request, conn.addr, conn.server)
        future.add_done_callback(lambda f, c=conn, close=unframed: self.finished(c, f, close))

    def finished(self, conn, future, close):
        """In the request's thread: queue the answer for the loop and wake it."""
        self.done.append((conn, future, close))
        self.wake()

    def answered(self, conn, future, close=False):
        try:
            out, keep = future.result()
        except Exception:  # noqa: BLE001 - a failure of the worker's own code answers 500, logged
            self.log.exception("request failed outside the application")
            out, keep = error_bytes(500, "internal_error", "the request could not be answered; it has been "
                                    "logged"), False
        if conn.closed:
            return
        conn.out, conn.sent, conn.keep = out, 0, keep and not close and self.alive
        self.become(conn, WRITING)
        self.flush(conn)

    def refuse(self, conn, status, code, message, headers=()):
        """Answer ``status`` now, whatever of the request is still to come, and close."""
        conn.out, conn.sent, conn.keep = error_bytes(status, code, message, headers, bytes(conn.buf)), 0, False
        conn.buf.clear()
        self.become(conn, WRITING)
        self.flush(conn)

    def send_now(self, conn, data):
        try:
            conn.sock.send(data)
        except OSError:
            pass

    def flush(self, conn):
        try:
            sent = conn.sock.send(memoryview(conn.out)[conn.sent:])
        except (BlockingIOError, InterruptedError):
            sent = 0
        except OSError:
            return self.close(conn)
        conn.sent += sent
        if conn.sent < len(conn.out):
            return self.watch(conn, selectors.EVENT_WRITE)
        conn.out = b""
        if not conn.keep:
            return self.linger(conn)
        conn.served += 1
        self.become(conn, IDLE)
        if conn.buf:  # the next request came with this one
            self.become(conn, READING)
            self.dispatch(conn)

    def linger(self, conn):
        """Half-close and discard what the client still sends, so it reads our answer before the close."""
        try:
            conn.sock.shutdown(socket.SHUT_WR)
        except OSError:
            return self.close(conn)
        conn.buf.clear()
        self.become(conn, CLOSING)

    # Deadlines -------------------------------------------------------------------------------

    def deadline(self, conn):
        """When ``conn`` is cut off in its present state (None: never, a thread has its request)."""
        if conn.state == IDLE:
            due = conn.since + (self.cfg.keepalive if conn.served else self.limits["read_timeout"])
            return due if self.stopping_at is None else min(due, self.stopping_at + STOP_LINGER)
        if conn.state == READING:
            return min(conn.last + self.limits["read_timeout"], conn.since + self.limits["read_total"])
        if conn.state == WRITING:
            return conn.since + self.limits["write_timeout"]
        if conn.state == CLOSING:
            return conn.since + LINGER
        return None

    def schedule(self, conn):
        """One live timer per connection; a timer that fires early is set again for the new deadline."""
        due = self.deadline(conn)
        if due is not None and (conn.timer is None or due < conn.timer):
            conn.timer = due
            heapq.heappush(self.timers, (due, next(self.seq), conn))

    def expire(self, now):
        while self.timers and self.timers[0][0] <= now:
            due, _, conn = heapq.heappop(self.timers)
            if conn.closed or due != conn.timer:
                continue
            conn.timer = None
            if (self.deadline(conn) or now + 1) > now:
                self.schedule(conn)
            else:
                self.timed_out(conn)

    def timed_out(self, conn):
        if conn.state == READING:
            metrics.child(metrics.CUT, "read_timeout").inc()
            self.log.info("request from %s cut off: not whole within the read deadlines", conn.addr[0])
            self.refuse(conn, 408, "request_timeout", "the request did not arrive in time: send it whole within "
                        f"{self.limits['read_total']:g} s, with no pause over {self.limits['read_timeout']:g} s")
        else:
            if conn.state == WRITING:
                metrics.child(metrics.CUT, "write_timeout").inc()
            self.close(conn)

    # In a request's thread -------------------------------------------------------------------

    def serve(self, request, client, server):
        """(answer bytes, keep the connection) for one whole request, run through the WSGI app."""
        out, req = Capture(), None
        try:
            req = next(RequestParser(self.cfg, [request], client))
            keep = self.handle_request(req, out, client, server)
        except (StopIteration, NoMoreData):
            keep = False
        except Exception as e:  # noqa: BLE001 - gunicorn's own answer to a request it cannot parse
            self.handle_error(req, out, client, e)
            keep = False
        return out.data(), keep

    def handle_request(self, req, out, client, server):
        environ, resp = {}, None
        try:
            self.cfg.pre_request(self, req)
            started = datetime.now()
            resp, environ = wsgi.create(req, out, client, server, self.cfg)
            environ["wsgi.multithread"] = True
            self.nr += 1
            if self.nr >= self.max_requests and self.alive:
                self.log.info("Autorestarting worker after current request.")
                self.alive = False
                self.wake()
            if not self.alive or not self.cfg.keepalive:
                resp.force_close()
            body = self.wsgi(environ, resp.start_response)
            try:
                if isinstance(body, environ["wsgi.file_wrapper"]):
                    resp.write_file(body)
                else:
                    for item in body:
                        resp.write(item)
                resp.close()
            finally:
                self.log.access(resp, req, environ, datetime.now() - started)
                if hasattr(body, "close"):
                    body.close()
            return not resp.should_close()
        except Exception:
            if resp is None or not resp.headers_sent:
                raise
            self.log.exception("Error handling request")  # the answer is begun: cut it off
            return False
        finally:
            try:
                self.cfg.post_request(self, req, environ, resp)
            except Exception:  # noqa: BLE001
                self.log.exception("Exception in post_request hook")
