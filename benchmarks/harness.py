"""The load harness shared by the serving benchmarks: servers started exactly as nerve's entrypoint
starts them (2 gunicorn workers on 127.0.0.1), wrk as the client, and rounds that measure every
system once each, in rotating order and on a fresh server, so the machine's drifts hit all alike."""
import json
import os
import re
import shutil
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
            break
        except OSError:
            time.sleep(0.1)
    else:
        proc.kill()
        raise RuntimeError(f"{app or 'nerve'} did not start")
    wait_until_settled(proc.pid, 2)
    return proc, port


def wait_until_settled(master_pid, workers, quiet=0.5, limit=120.0):
    """Wait until ``workers`` workers run and none of them used CPU for ``quiet`` seconds.

    One answer only shows that one worker is up. A load started while the other is still loading
    its model puts every keep-alive connection on the first, for the whole measurement: half the
    machine idle, and a measurement that says more about start-up timing than about the server.
    """
    deadline = time.monotonic() + limit
    last = None
    while time.monotonic() < deadline:
        pids = subprocess.run(["pgrep", "-P", str(master_pid)], capture_output=True, text=True).stdout.split()
        now = (tuple(sorted(pids)), worker_cpu_seconds(master_pid))
        if len(pids) == workers and now == last:
            return
        last = now
        time.sleep(quiet)
    raise RuntimeError("workers did not settle after start")


def wrk(port, body, duration, connections, tmp, midway=None):
    """One wrk run: {"rps", "p50_ms", "p99_ms", "requests", "non_2xx"}; ``midway()`` is called halfway
    through the run and its result kept as "midway"."""
    script = os.path.join(tmp, f"post-{port}.lua")
    with open(script, "w") as f:
        f.write(LUA.format(body=json.dumps(json.dumps(body))))  # a Lua string literal holding the JSON
    client = subprocess.Popen(["wrk", "-t1", f"-c{connections}", f"-d{duration}s", "--latency", "-s", script,
                               f"http://127.0.0.1:{port}/v1/ner"], stdout=subprocess.PIPE, text=True)
    seen = None
    if midway:
        time.sleep(duration / 2)
        seen = midway()
    out = client.communicate()[0]
    if client.returncode:
        raise RuntimeError(f"wrk failed with status {client.returncode}")

    def ms(q):
        m = re.search(rf"^\s+{q}%\s+([\d.]+)(us|ms|s)", out, re.M)
        return float(m.group(1)) * {"us": 1e-3, "ms": 1.0, "s": 1e3}[m.group(2)]

    errors = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    return {"rps": float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1)), "p50_ms": ms(50), "p99_ms": ms(99),
            "requests": int(re.search(r"(\d+) requests in", out).group(1)),
            "non_2xx": int(errors.group(1)) if errors else 0, "midway": seen}


def connections_per_worker(master_pid, port):
    """{worker pid: established connections on ``port``}, or None where ``ss`` is missing."""
    if not shutil.which("ss"):
        return None
    out = subprocess.run(["ss", "-tnpH", "state", "established", f"sport = :{port}"],
                         capture_output=True, text=True).stdout
    workers = subprocess.run(["pgrep", "-P", str(master_pid)], capture_output=True, text=True).stdout.split()
    return {pid: len(re.findall(rf"pid={pid},", out)) for pid in workers}


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

    A measurement in which a worker held none of the connections (counted halfway through) is made
    again on a new server (three times at most); "redone" counts those.

    Returns {key: {"rps", "rps_spread", "p50_ms", "p99_ms", "cpu_ms", "non_2xx", "ratio", "redone"}}:
    medians over the rounds; "ratio" is the median over rounds of the reference's req/s over this target's.
    """
    runs = {key: [] for key in targets}
    redone = {key: 0 for key in targets}
    keys = list(targets)
    for r in range(repeats):
        for key in keys[r % len(keys):] + keys[: r % len(keys)]:
            app, env, body = targets[key]
            for attempt in range(4):
                result = measure(app, env, body, duration, connections, tmp)
                split = result["midway"]
                # gunicorn's workers accept from one shared socket, and now and then one of them takes
                # every keep-alive connection: the other idles and the measurement is of that luck. A
                # worker with even one connection is kept busy, its requests coming back to back.
                if not split or min(split.values()) > 0 or attempt == 3:
                    break
                redone[key] += 1
            runs[key].append(result)
    out = {}
    for key, rs in runs.items():
        out[key] = {k: statistics.median(x[k] for x in rs) for k in ("rps", "p50_ms", "p99_ms", "cpu_ms")}
        out[key]["rps_spread"] = max(x["rps"] for x in rs) - min(x["rps"] for x in rs)
        out[key]["non_2xx"] = sum(x["non_2xx"] for x in rs)
        out[key]["ratio"] = statistics.median(a["rps"] / b["rps"] for a, b in zip(runs[reference], rs))
        out[key]["redone"] = redone[key]
    return out


def measure(app, env, body, duration, connections, tmp):
    """One measurement on a fresh server: wrk's figures, "cpu_ms" (worker CPU per request) and
    "midway" (connections per worker halfway through)."""
    proc, port = start(app, env, tmp)
    try:
        wrk(port, body, 1, connections, tmp)  # warm up
        wait_until_settled(proc.pid, 2)  # a worker still busy with the warm-up would accept no connection
        cpu = worker_cpu_seconds(proc.pid)
        result = wrk(port, body, duration, connections, tmp, lambda: connections_per_worker(proc.pid, port))
        result["cpu_ms"] = (worker_cpu_seconds(proc.pid) - cpu) * 1e3 / max(result["requests"], 1)
        return result
    finally:
        stop([proc])


def stop(processes):
    for proc in processes:
        proc.terminate()
    for proc in processes:
        proc.wait(30)
