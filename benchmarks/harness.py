"""The load harness shared by the serving benchmarks: servers started exactly as nerve's entrypoint
starts them (2 gunicorn workers on 127.0.0.1), wrk as the client, and rounds that measure every
system once each, in rotating order and on a fresh server, so the machine's drifts hit all alike."""
import json
import os
import re
import socket
import statistics
import subprocess
import sys
import time
import urllib.request

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
LUA = 'wrk.method = "POST"\nwrk.headers["Content-Type"] = "application/json"\nwrk.body = {body}\n'


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start(app, env, tmp):
    """(process, port) of a gunicorn serving ``app`` (nerve itself when None), ready to answer."""
    port = free_port()
    full_env = {**os.environ, **env, "HOST": "127.0.0.1", "PORT": str(port), "NERVE_WORKERS": "2",
                "PATH": f"{os.path.dirname(sys.executable)}{os.pathsep}{os.environ['PATH']}", "PYTHONPATH": ROOT,
                "PROMETHEUS_MULTIPROC_DIR": os.path.join(tmp, f"m{port}"),
                "NERVE_STATE_DIR": os.path.join(tmp, f"s{port}")}
    argv = [os.path.join(ROOT, "deploy", "entrypoint.sh")] + ([app] if app else [])
    proc = subprocess.Popen(argv, env=full_env, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    for _ in range(900):
        try:
            req = urllib.request.Request(f"http://127.0.0.1:{port}/v1/ner", b'{"text": "warm up"}',
                                         {"Content-Type": "application/json"})
            urllib.request.urlopen(req, timeout=5).read()
            return proc, port
        except OSError:
            time.sleep(0.1)
    proc.kill()
    raise RuntimeError(f"{app or 'nerve'} did not start")


def wrk(port, body, duration, connections, tmp):
    """One wrk run: {"rps", "p50_ms", "p99_ms", "requests", "non_2xx"}."""
    script = os.path.join(tmp, f"post-{port}.lua")
    with open(script, "w") as f:
        f.write(LUA.format(body=json.dumps(json.dumps(body))))  # a Lua string literal holding the JSON
    out = subprocess.run(["wrk", "-t1", f"-c{connections}", f"-d{duration}s", "--latency", "-s", script,
                          f"http://127.0.0.1:{port}/v1/ner"], capture_output=True, text=True, check=True).stdout

    def ms(q):
        m = re.search(rf"^\s+{q}%\s+([\d.]+)(us|ms|s)", out, re.M)
        return float(m.group(1)) * {"us": 1e-3, "ms": 1.0, "s": 1e3}[m.group(2)]

    errors = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    return {"rps": float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1)), "p50_ms": ms(50), "p99_ms": ms(99),
            "requests": int(re.search(r"(\d+) requests in", out).group(1)),
            "non_2xx": int(errors.group(1)) if errors else 0}


def worker_cpu_seconds(master_pid):
    total = 0
    for pid in subprocess.run(["pgrep", "-P", str(master_pid)], capture_output=True, text=True).stdout.split():
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        total += int(fields[11]) + int(fields[12])
    return total / os.sysconf("SC_CLK_TCK")


def rounds(targets, reference, repeats, duration, connections, tmp):
    """targets: {key: (app, env, body)}. Each round measures every target once, order rotating, each
    on a server started for that measurement alone: server instances differ from one another on this
    machine by more than the systems under test sometimes do, so no target keeps one instance.

    Returns {key: {"rps", "rps_spread", "p50_ms", "p99_ms", "cpu_ms", "non_2xx", "ratio"}}: medians over
    the rounds; "ratio" is the median over rounds of the reference's req/s over this target's.
    """
    runs = {key: [] for key in targets}
    keys = list(targets)
    for r in range(repeats):
        for key in keys[r % len(keys):] + keys[: r % len(keys)]:
            app, env, body = targets[key]
            proc, port = start(app, env, tmp)
            try:
                wrk(port, body, 1, connections, tmp)  # warm up
                cpu = worker_cpu_seconds(proc.pid)
                result = wrk(port, body, duration, connections, tmp)
                result["cpu_ms"] = (worker_cpu_seconds(proc.pid) - cpu) * 1e3 / max(result["requests"], 1)
            finally:
                stop([proc])
            runs[key].append(result)
    out = {}
    for key, rs in runs.items():
        out[key] = {k: statistics.median(x[k] for x in rs) for k in ("rps", "p50_ms", "p99_ms", "cpu_ms")}
        out[key]["rps_spread"] = max(x["rps"] for x in rs) - min(x["rps"] for x in rs)
        out[key]["non_2xx"] = sum(x["non_2xx"] for x in rs)
        out[key]["ratio"] = statistics.median(a["rps"] / b["rps"] for a, b in zip(runs[reference], rs))
    return out


def stop(processes):
    for proc in processes:
        proc.terminate()
    for proc in processes:
        proc.wait(30)
