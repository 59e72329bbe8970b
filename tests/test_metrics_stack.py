"""Prometheus scraping a real nerve, asked every query of the Grafana dashboard.

Debian packages Prometheus; the test skips, saying why, where it is not installed. The scrape
configuration is deploy/prometheus/prometheus.yml with only the target's address changed.
"""
import json
import math
import re
import shutil
import subprocess
import threading
import time
import urllib.parse
import urllib.request

import pytest
import yaml

from conftest import ROOT
from server import free_port

DASHBOARD = ROOT / "deploy" / "grafana" / "dashboards" / "nerve.json"


def dashboard_queries():
    """Every panel's query with the model selector at "All" (its allValue), and the selector's own."""
    dashboard = json.loads(DASHBOARD.read_text())
    chooser = next(v for v in dashboard["templating"]["list"] if v["name"] == "model")
    match = re.fullmatch(r"label_values\((\w+), (\w+)\)", chooser["definition"])
    queries = [(p["title"], t["expr"].replace("$model", chooser["allValue"]))
               for p in dashboard["panels"] for t in p["targets"]]
    return queries + [("model selector", f"count by ({match[2]}) ({match[1]})")]


def query(port, expr):
    url = f"http://127.0.0.1:{port}/api/v1/query?" + urllib.parse.urlencode({"query": expr})
    with urllib.request.urlopen(url, timeout=5) as r:
        body = json.loads(r.read())
    assert body["status"] == "success", body
    return body["data"]["result"]


def ready(port):
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/-/ready", timeout=2) as r:
            return r.status == 200
    except OSError:
        return False


def has_data(result):
    return bool(result) and all(math.isfinite(float(r["value"][1])) for r in result)


@pytest.fixture
def prometheus(server, tmp_path):
    if not (shutil.which("prometheus") and shutil.which("promtool")):
        pytest.skip("Prometheus is not installed (Debian: apt-get install prometheus)")
    config = yaml.safe_load((ROOT / "deploy" / "prometheus" / "prometheus.yml").read_text())
    config["scrape_configs"][0]["static_configs"][0]["targets"] = [f"127.0.0.1:{server.port}"]
    path = tmp_path / "prometheus.yml"
    path.write_text(yaml.safe_dump(config))
    check = subprocess.run(["promtool", "check", "config", str(path)], capture_output=True, text=True)
    assert check.returncode == 0, check.stdout + check.stderr
    port = free_port()
    proc = subprocess.Popen(["prometheus", f"--config.file={path}", f"--storage.tsdb.path={tmp_path / 'tsdb'}",
                             f"--web.listen-address=127.0.0.1:{port}"], stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 60
        while not ready(port):
            assert proc.poll() is None and time.monotonic() < deadline, "Prometheus did not start"
            time.sleep(0.2)
        yield port
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def load(server, stop, seconds=150):
    """A little traffic, bounded in time: texts, a batch, and a bad request now and then."""
    deadline = time.monotonic() + seconds
    i = 0
    while not stop.is_set() and time.monotonic() < deadline:
        server.ner({"text": "Anna Berg visited Oslo and met Lars Holm."})
        if i % 5 == 0:
            server.ner({"texts": ["Oslo", "Anna Berg flew home."]})
        if i % 10 == 0:
            server.request("POST", "/v1/ner", b"x", {"Content-Type": "text/csv"})
        i += 1
        time.sleep(0.05)


def test_every_dashboard_query_returns_data_from_a_live_nerve(server, prometheus):
    queries = dashboard_queries()
    assert len(queries) >= 10
    stop = threading.Event()
    traffic = threading.Thread(target=load, args=(server, stop), daemon=True)
    traffic.start()
    try:
        deadline = time.monotonic() + 120  # scrapes every 15 s; rates need two of them in their window
        results = {}
        while time.monotonic() < deadline:
            results = {expr: query(prometheus, expr) for _, expr in queries}
            if all(has_data(r) for r in results.values()):
                break
            time.sleep(3)
    finally:
        stop.set()
        traffic.join(timeout=10)
    for title, expr in queries:
        print(f"{title} | {expr} -> {[(r['metric'], r['value'][1]) for r in results[expr]]}")
    empty = [(title, expr) for title, expr in queries if not has_data(results[expr])]
    assert not empty, empty
