"""A real Label Studio 1.23 server, in a virtual environment of its own, with nerve as its ML backend:
a text NER project, predictions for imported tasks read back through Label Studio's API, an
interactive suggestion, annotations, training started from Label Studio, a new model version served.

The environment is made once from requirements-annotation-tools.txt in .annotation-tools/venv
(about a minute the first time); the test skips, saying why, where it cannot be installed or started."""
import json
import os
import shutil
import subprocess
import sys
import time
import urllib.error
import urllib.request

import pytest
from annotation_tools import VENV, annotation_tools_venv

from conftest import FIXTURES, ROOT
from server import Server, free_port, metric, wait_for

KEY, TOKEN = "ls-live-key", "ls0live0token0123456789"
CONFIG = """<View>
  <Labels name="label" toName="text">
    <Label value="Person" predicted_values="PER"/>
    <Label value="Location" predicted_values="LOC"/>
    <Label value="Drug"/>
  </Labels>
  <Text name="text" value="$text"/>
</View>"""


class LabelStudio:
    def __init__(self, command, data):
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        env = {**os.environ, "LABEL_STUDIO_BASE_DATA_DIR": str(data), "ML_BLOCK_LOCAL_IP": "false",
               "SSRF_PROTECTION_ENABLED": "false", "LABEL_STUDIO_ENABLE_LEGACY_API_TOKEN": "true",
               "LABEL_STUDIO_HOST": self.url, "SENTRY_DSN": "", "FRONTEND_SENTRY_DSN": ""}
        env.pop("PYTHONPATH", None)
        self.log = open(data / "label-studio.log", "w+")
        self.proc = subprocess.Popen([str(command), "start", "--no-browser", "--internal-host", "127.0.0.1",
                                      "-p", str(self.port), "--username", "annotator@example.org",
                                      "--password", "annotator-pass-1", "--user-token", TOKEN],
                                     env=env, cwd=data, stdout=self.log, stderr=subprocess.STDOUT,
                                     start_new_session=True)
        deadline = time.monotonic() + 240
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                self.log.seek(0)
                pytest.skip(f"Label Studio did not start: {self.log.read()[-500:]}")
            try:
                with urllib.request.urlopen(f"{self.url}/health", timeout=2) as r:
                    if r.status == 200:
                        return
            except OSError:
                time.sleep(0.5)
        self.stop()
        pytest.skip("Label Studio did not answer within 240 s")

    def api(self, method, path, body=None):
        data = json.dumps(body).encode() if body is not None else None
        req = urllib.request.Request(self.url + path, data=data, method=method,
                                     headers={"Authorization": f"Token {TOKEN}", "Content-Type": "application/json"})
        try:
            with urllib.request.urlopen(req, timeout=180) as r:
                raw = r.read()
                return r.status, json.loads(raw) if raw else None
        except urllib.error.HTTPError as e:
            return e.code, e.read().decode("utf-8", "replace")[:1000]

    def stop(self):
        import signal

        try:
            os.killpg(self.proc.pid, signal.SIGTERM)
            self.proc.wait(timeout=30)
        except (ProcessLookupError, subprocess.TimeoutExpired):
            os.killpg(self.proc.pid, signal.SIGKILL)


def js_slice(text, start, end):
    return text.encode("utf-16-le")[2 * start: 2 * end].decode("utf-16-le")


def drug_tasks(count):
    """Tasks and their DRUG annotations (Label Studio regions, UTF-16 offsets) from the drugs fixture."""
    out = []
    for line in (FIXTURES / "drugs" / "train.jsonl").read_text(encoding="utf-8").splitlines()[:count]:
        record = json.loads(line)
        text = record["text"]
        regions = [{"from_name": "label", "to_name": "text", "type": "labels", "origin": "manual",
                    "value": {"start": len(text[:s].encode("utf-16-le")) // 2,
                              "end": len(text[:e].encode("utf-16-le")) // 2, "text": text[s:e], "labels": ["Drug"]}}
                   for s, e, _ in record["label"]]
        out.append((text, regions))
    return out


def test_label_studio_uses_nerve_as_its_ml_backend_and_trains_it(tiny_model_dir, tmp_path):
    started = time.monotonic()
    cold = not (VENV / ".requirements").exists()
    command = annotation_tools_venv() / "label-studio"
    installed = time.monotonic()
    models = tmp_path / "models"
    shutil.copytree(tiny_model_dir, models / "news")
    training = tmp_path / "training"
    (tmp_path / "ls").mkdir()
    studio = LabelStudio(command, tmp_path / "ls")
    nerve = Server(tmp_path, NERVE_MODELS=models, NERVE_API_KEYS=KEY, NERVE_TRAINING_DIR=training,
                   NERVE_TRAIN_EVERY=3)
    try:
        status, project = studio.api("POST", "/api/projects", {"title": "nerve live", "label_config": CONFIG})
        assert status == 201, project
        pid = project["id"]
        emoji = "🙂🙂 Anna Berg met 👩‍👩‍👧 Lars Holm in Oslo ."
        annotated = drug_tasks(24)
        tasks = [{"text": emoji}, {"text": "Zorblat met Anna Berg . Later Zorblat flew to Oslo ."}] + \
            [{"text": text} for text, _ in annotated]
        assert studio.api("POST", f"/api/projects/{pid}/import", tasks)[0] == 201
        status, backend = studio.api("POST", "/api/ml", {
            "url": f"http://127.0.0.1:{nerve.port}/label-studio", "project": pid, "title": "nerve",
            "is_interactive": True, "auth_method": "BASIC_AUTH", "basic_auth_user": "label-studio",
            "basic_auth_pass": KEY})
        assert status == 201 and backend["state"] == "CO", backend
        first_version = backend["model_version"]
        assert first_version == "tiny/t1"

        # predictions for every task, read back through Label Studio's own API
        status, done = studio.api("POST", f"/api/dm/actions?id=retrieve_tasks_predictions&project={pid}",
                                  {"selectedItems": {"all": True, "excluded": []}})
        assert status == 200, done
        listed = studio.api("GET", f"/api/tasks?project={pid}&fields=all&page_size=100")[1]["tasks"]
        assert len(listed) == len(tasks) and all(len(t["predictions"]) == 1 for t in listed)
        by_text = {t["data"]["text"]: t for t in listed}
        prediction = by_text[emoji]["predictions"][0]
        assert prediction["model_version"] == first_version and 0 <= prediction["score"] <= 1
        spans = {(r["value"]["text"], r["value"]["labels"][0]) for r in prediction["result"]}
        for r in prediction["result"]:
            assert js_slice(emoji, r["value"]["start"], r["value"]["end"]) == r["value"]["text"]
            assert r["value"]["labels"][0] in ("Person", "Location") and 0 <= r["score"] <= 1
        assert ("Oslo", "Location") in spans and ("Anna Berg", "Person") in spans  # after the emoji

        # an interactive suggestion: the annotator's region found again
        task = by_text[tasks[1]["text"]]
        manual = {"from_name": "label", "to_name": "text", "type": "labels", "origin": "manual",
                  "value": {"start": 0, "end": 7, "text": "Zorblat", "labels": ["Person"]}}
        status, suggestion = studio.api("POST", f"/api/ml/{backend['id']}/interactive-annotating",
                                        {"task": task["id"], "context": {"result": [manual]}})
        assert status == 200, suggestion
        again = [r["value"] for r in suggestion["data"]["result"] if r["value"]["text"] == "Zorblat"]
        assert [(v["start"], v["labels"]) for v in again] == [(30, ["Person"])]

        # annotations: the webhook Label Studio made for the backend carries the key once it is added
        hooks = studio.api("GET", f"/api/webhooks?project={pid}")[1]
        hook = next(h for h in hooks if h["url"].endswith("/label-studio/webhook"))
        assert studio.api("PATCH", f"/api/webhooks/{hook['id']}", {"headers": {"X-API-Key": KEY}})[0] == 200
        for text, regions in annotated:
            status, _ = studio.api("POST", f"/api/tasks/{by_text[text]['id']}/annotations", {"result": regions})
            assert status == 201
        assert wait_for(lambda: (training / "requests" / f"{pid}.json").exists())  # every 3 annotations
        status, _ = studio.api("POST", f"/api/ml/{backend['id']}/train", {})
        assert status == 200
        request = json.loads((training / "requests" / f"{pid}.json").read_text())
        assert request["reason"] in ("START_TRAINING", "ANNOTATION_CREATED")

        # the trainer runs the request: Label Studio's export in, a new version of the model out
        out = subprocess.run([sys.executable, "-m", "training.label_studio", "--dir", str(training), "--models",
                              str(models), "--model", "tiny", "--embeddings", str(FIXTURES / "vectors.txt"),
                              "--epochs", "8", "--once"], capture_output=True, text=True, cwd=ROOT, timeout=600)
        assert out.returncode == 0, out.stderr[-2000:]
        outcome = json.loads(out.stdout.strip().splitlines()[-1])
        with_spans = len({text for text, regions in annotated if regions})  # a task annotated with no span is left out
        assert outcome["result"] == "served" and outcome["tasks"] + outcome["held_back"] == with_spans, outcome
        new_version = f"tiny/{outcome['version']}"
        assert wait_for(lambda: nerve.request("GET", "/label-studio/health",
                                              headers={"X-API-Key": KEY})[2]["model_version"] == new_version)
        health = nerve.request("GET", "/label-studio/health", headers={"X-API-Key": KEY})[2]
        assert health["training"]["pending"] == [] and health["training"]["trainer"]["last"]["result"] == "served"
        scraped = nerve.request("GET", "/metrics")[2]
        assert metric(scraped, "nerve_trainer_last_run", result="served") > 0
        assert metric(scraped, "nerve_label_studio_events_total", action="START_TRAINING") >= 1

        # Label Studio sees the new version and asks it for predictions again
        status, done = studio.api("POST", f"/api/dm/actions?id=retrieve_tasks_predictions&project={pid}",
                                  {"selectedItems": {"all": True, "excluded": []}})
        assert status == 200, done
        assert studio.api("GET", f"/api/ml/{backend['id']}")[1]["model_version"] == new_version
        listed = studio.api("GET", f"/api/tasks?project={pid}&fields=all&page_size=100")[1]["tasks"]
        assert all(new_version in [p["model_version"] for p in t["predictions"]] for t in listed)
        labels = {r["value"]["labels"][0] for t in listed for p in t["predictions"]
                  if p["model_version"] == new_version for r in p["result"]}
        assert "Drug" in labels  # the type the project taught it
    finally:
        nerve.stop()
        studio.stop()
    print(f"Label Studio live test: {'cold' if cold else 'warm'}, {time.monotonic() - started:.0f} s in all, "
          f"{installed - started:.0f} s of it installing")

