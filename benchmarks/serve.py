"""Served throughput of nerve against a bare Flask endpoint under the same gunicorn settings, in one run.

    python benchmarks/serve.py [--duration 10] [--repeats 3] [--connections 16]

Needs wrk (Debian: apt-get install wrk). Both servers are started exactly as `make serve` starts
nerve (deploy/entrypoint.sh, deploy/gunicorn.conf.py, 2 workers), on 127.0.0.1, one at a time, and
measured alternately so that machine noise hits both; the figures are medians over the repeats.
"""
import argparse
import json
import os
import re
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SENTENCE = ("Peter Blackburn of the European Commission said on Thursday in Brussels that German lamb "
            "exports to Britain rose by ten percent last year .")
LUA = 'wrk.method = "POST"\nwrk.headers["Content-Type"] = "application/json"\nwrk.body = {body}\n'


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start(app, port, tmp):
    env = {**os.environ, "HOST": "127.0.0.1", "PORT": str(port), "NERVE_WORKERS": "2",
           "PATH": f"{os.path.dirname(sys.executable)}{os.pathsep}{os.environ['PATH']}",
           "PROMETHEUS_MULTIPROC_DIR": os.path.join(tmp, f"m{port}"), "NERVE_STATE_DIR": os.path.join(tmp, f"s{port}"),
           "PYTHONPATH": ROOT}
    argv = [os.path.join(ROOT, "deploy", "entrypoint.sh")] + ([app] if app else [])
    proc = subprocess.Popen(argv, env=env, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    body = json.dumps({"text": "warm up"}).encode()
    for _ in range(300):
        try:
            req = urllib.request.Request(f"http://127.0.0.1:{port}/v1/ner", body, {"Content-Type": "application/json"})
            urllib.request.urlopen(req, timeout=2).read()
            return proc
        except OSError:
            time.sleep(0.1)
    proc.kill()
    raise RuntimeError(f"{app or 'nerve'} did not start")


def wrk(port, body, duration, connections, tmp):
    script = os.path.join(tmp, "post.lua")
    with open(script, "w") as f:
        f.write(LUA.format(body=json.dumps(json.dumps(body))))  # a Lua string literal holding the JSON
    out = subprocess.run(["wrk", "-t1", f"-c{connections}", f"-d{duration}s", "--latency", "-s", script,
                          f"http://127.0.0.1:{port}/v1/ner"], capture_output=True, text=True, check=True).stdout
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
    errors = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    socket_errors = re.search(r"Socket errors: (.*)", out)

    def ms(q):
        m = re.search(rf"^\s+{q}%\s+([\d.]+)(us|ms|s)", out, re.M)
        return float(m.group(1)) * {"us": 1e-3, "ms": 1.0, "s": 1e3}[m.group(2)]

    return {"rps": rps, "p50_ms": ms(50), "p99_ms": ms(99), "non_2xx": int(errors.group(1)) if errors else 0,
            "socket_errors": socket_errors.group(1) if socket_errors else ""}


def measure(app, body, args, tmp):
    port = free_port()
    proc = start(app, port, tmp)
    try:
        wrk(port, body, 2, args.connections, tmp)  # warm up
        return wrk(port, body, args.duration, args.connections, tmp)
    finally:
        proc.terminate()
        proc.wait(30)


def summary(runs):
    keys = ("rps", "p50_ms", "p99_ms")
    return {k: statistics.median(r[k] for r in runs) for k in keys} | {
        "rps_spread": max(r["rps"] for r in runs) - min(r["rps"] for r in runs),
        "non_2xx": sum(r["non_2xx"] for r in runs)}


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--duration", type=int, default=10)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--connections", type=int, default=16)
    args = parser.parse_args(argv)
    if not shutil.which("wrk"):
        sys.exit("wrk is not installed: apt-get install wrk")
    single = {"text": SENTENCE}
    batch = {"texts": [SENTENCE] * 64}
    runs = {"nerve": [], "bare": [], "nerve_batch64": []}
    with tempfile.TemporaryDirectory() as tmp:
        for _ in range(args.repeats):
            runs["nerve"].append(measure(None, single, args, tmp))
            runs["bare"].append(measure("benchmarks.bare_app:app", single, args, tmp))
            runs["nerve_batch64"].append(measure(None, batch, args, tmp))
    s = {k: summary(v) for k, v in runs.items()}
    tokens = 25
    print(f"{args.connections} connections, {args.duration} s x {args.repeats} repeats, 2 gunicorn workers, "
          f"{tokens}-token body (tokens detail on); medians")
    for name, r in s.items():
        print(f"  {name:14s} {r['rps']:9.1f} req/s (spread {r['rps_spread']:.1f})  p50 {r['p50_ms']:7.2f} ms  "
              f"p99 {r['p99_ms']:7.2f} ms  non-2xx {r['non_2xx']}")
    print(f"nerve / bare Flask req/s: {s['nerve']['rps'] / s['bare']['rps']:.2f} (target >= 0.60)")
    cost = s["nerve"]["rps"] / s["nerve_batch64"]["rps"]
    print(f"one 64-sentence request costs {cost:.1f} single requests (target < 15)")


if __name__ == "__main__":
    main()
