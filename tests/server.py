"""A real gunicorn, started the way the container starts it, on a free port of 127.0.0.1."""
import http.client
import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Server:
    """deploy/entrypoint.sh under a test-owned environment; ``request`` speaks plain HTTP/1.1 to it."""

    def __init__(self, tmp_path, model_dir=None, wait_ready=True, **env):
        self.port = free_port()
        self.metrics_dir = tmp_path / f"metrics-{self.port}"
        self.env = {
            **os.environ,
            "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}",
            "HOST": "127.0.0.1", "PORT": str(self.port),
            "PROMETHEUS_MULTIPROC_DIR": str(self.metrics_dir),
            "NERVE_STATE_DIR": str(tmp_path / f"state-{self.port}"),
            "NERVE_WORKERS": "2", "NERVE_GRACEFUL_TIMEOUT": "10",
            **({"NERVE_MODEL": str(model_dir)} if model_dir else {}),
            **{k: str(v) for k, v in env.items()},
        }
        self.log = open(tmp_path / f"gunicorn-{self.port}.log", "w+")
        self.proc = subprocess.Popen([str(ROOT / "deploy" / "entrypoint.sh")], env=self.env, cwd=ROOT,
                                     stdout=self.log, stderr=subprocess.STDOUT, start_new_session=True)
        self.wait_listening(ready=wait_ready)

    def wait_listening(self, ready=True, timeout=60):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"gunicorn exited {self.proc.returncode}: {self.output()}")
            try:
                status, _, _ = self.request("GET", "/readyz" if ready else "/healthz")
                if status == 200 or (not ready and status):
                    return
            except OSError:
                pass
            time.sleep(0.1)
        raise RuntimeError(f"gunicorn did not become ready: {self.output()}")

    def output(self):
        self.log.flush()
        self.log.seek(0)
        return self.log.read()[-3000:]

    def request(self, method, path, body=None, headers=None, timeout=30):
        """(status, headers dict, parsed JSON or text)."""
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=timeout)
        try:
            if isinstance(body, (dict, list)):
                body = json.dumps(body)
                headers = {"Content-Type": "application/json", **(headers or {})}
            conn.request(method, path, body=body, headers=headers or {})
            r = conn.getresponse()
            data = r.read()
            hdrs = {k.lower(): v for k, v in r.getheaders()}
        finally:
            conn.close()
        if hdrs.get("content-type", "").startswith("application/json"):
            return r.status, hdrs, json.loads(data)
        return r.status, hdrs, data.decode("utf-8", "replace")

    def ner(self, payload, headers=None):
        return self.request("POST", "/v1/ner", payload, headers)

    def worker_pids(self):
        out = subprocess.run(["pgrep", "-P", str(self.master_pid())], capture_output=True, text=True).stdout
        return [int(p) for p in out.split()]

    def master_pid(self):
        return self.proc.pid  # entrypoint execs gunicorn, so the shell's pid is gunicorn's

    def stop(self, sig=signal.SIGTERM, timeout=30):
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()
        self.log.close()
        return self.proc.returncode


def metric(text, name, /, **labels):
    """Sum of the samples of ``name`` whose labels include ``labels``, from Prometheus text."""
    total = 0.0
    for line in text.splitlines():
        if not line.startswith(name + "{") and not line.startswith(name + " "):
            continue
        head, value = line.rsplit(" ", 1)
        if all(f'{k}="{v}"' in head for k, v in labels.items()):
            total += float(value)
    return total


class Load:
    """A bounded load on 127.0.0.1: ``threads`` clients, each sending requests on fresh connections
    until ``count`` requests are done in all or ``stop()`` is called. Outcomes are kept per request."""

    def __init__(self, server, body, threads=8, count=1000, timeout=30, headers=None):
        import threading

        self.server, self.body, self.timeout = server, json.dumps(body), timeout
        self.headers = {"Content-Type": "application/json", **(headers or {})}
        self.outcomes = []  # (status or exception name, whether the request left in full, Retry-After)
        self._left = count
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._threads = [threading.Thread(target=self._run, daemon=True) for _ in range(threads)]
        for t in self._threads:
            t.start()

    def _take(self):
        with self._lock:
            if self._left <= 0 or self._stop.is_set():
                return False
            self._left -= 1
            return True

    def _run(self):
        while self._take():
            sent, retry_after = False, None
            try:
                conn = http.client.HTTPConnection("127.0.0.1", self.server.port, timeout=self.timeout)
                conn.request("POST", "/v1/ner", self.body, self.headers)
                sent = True
                r = conn.getresponse()
                r.read()
                outcome, retry_after = r.status, r.getheader("Retry-After")
                conn.close()
            except Exception as e:  # noqa: BLE001 - every failure is an outcome to count
                outcome = type(e).__name__
            with self._lock:
                self.outcomes.append((outcome, sent, retry_after))

    def stop(self):
        self._stop.set()

    def wait(self):
        for t in self._threads:
            t.join()
        return self.outcomes


def rss_kib(pid):
    with open(f"/proc/{pid}/status") as f:
        return next(int(line.split()[1]) for line in f if line.startswith("VmRSS:"))


def wait_for(condition, timeout=20.0, pause=0.05):
    """True once ``condition()`` is, False if it is not within ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(pause)
    return False
