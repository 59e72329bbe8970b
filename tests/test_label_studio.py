"""The Label Studio ML backend under /label-studio, spoken to as Label Studio speaks (real gunicorn)."""
import base64
import json
import os
import shutil

import pytest

from server import Server, metric

KEY = "ls-secret"
CONFIG = """<View>
  <Labels name="ner" toName="txt">
    <Label value="Person" predicted_values="PER"/>
    <Label value="loc"/>
    <Label value="Unused"/>
  </Labels>
  <Text name="txt" value="$body"/>
</View>"""
BASIC = {"Authorization": "Basic " + base64.b64encode(f"annotator:{KEY}".encode()).decode()}


def js_slice(text, start, end):
    """``text[start:end]`` as JavaScript counts: UTF-16 code units."""
    return text.encode("utf-16-le")[2 * start: 2 * end].decode("utf-16-le")


@pytest.fixture(scope="module")
def backend(tiny_model_dir, tiny_drug_model_dir, tmp_path_factory):
    root = tmp_path_factory.mktemp("label-studio-backend")
    shutil.copytree(tiny_model_dir, root / "models" / "news")
    shutil.copytree(tiny_drug_model_dir, root / "models" / "drugs")
    server = Server(root, NERVE_MODELS=root / "models", NERVE_MODEL="tiny", NERVE_API_KEYS=KEY,
                    NERVE_TRAINING_DIR=root / "training", NERVE_TRAIN_EVERY=2)
    yield root, server
    server.stop()


def call(server, method, path, body=None, headers=BASIC):
    return server.request(method, path, body, headers)


def test_health_and_setup_answer_the_model_version_and_keep_the_project(backend):
    root, server = backend
    status, _, health = call(server, "GET", "/label-studio/health")
    assert status == 200 and health["status"] == "UP" and health["model_version"] == "tiny/t1"
    status, _, setup = call(server, "POST", "/label-studio/setup",
                            {"project": "7.1733500000", "schema": CONFIG, "hostname": "http://127.0.0.1:1",
                             "access_token": "tok", "extra_params": ""})
    assert status == 200 and setup == {"model_version": "tiny/t1"}
    kept = root / "training" / "projects" / "7.json"
    assert json.loads(kept.read_text())["access_token"] == "tok" and oct(os.stat(kept).st_mode & 0o777) == "0o600"
    status, _, setup = call(server, "POST", "/label-studio/drugs/setup", {"project": "7.1", "schema": CONFIG})
    assert status == 200 and setup == {"model_version": "drugs/d1"}
    assert call(server, "GET", "/label-studio/nope/health")[0] == 404


def test_http_basic_carries_the_key_and_nothing_else_gets_in(backend):
    _, server = backend
    assert call(server, "GET", "/label-studio/health", headers={})[0] == 401
    wrong = {"Authorization": "Basic " + base64.b64encode(b"annotator:nope").decode()}
    assert call(server, "GET", "/label-studio/health", headers=wrong)[0] == 401
    assert call(server, "GET", "/label-studio/health", headers={"Authorization": "Basic %%%"})[0] == 401
    assert call(server, "POST", "/label-studio/webhook", {"action": "START_TRAINING", "project": {"id": 7}},
                headers={})[0] == 401


def test_thousands_of_tasks_in_one_call_come_back_one_each_in_order_with_utf16_offsets(backend):
    _, server = backend
    texts = ["Anna Berg flew from Oslo to Paris .", "🙂🙂 Anna Berg met 👩‍👩‍👧 Lars Holm in Oslo .",
             "Nordbank said sales rose in Bergen ."]
    tasks = [{"id": i, "data": {"body": texts[i % 3] + " and so on" * (i % 9) * 8}} for i in range(4000)]
    tasks[5] = {"id": 5, "data": {"other": "no text here"}}
    body = {"tasks": tasks, "label_config": CONFIG, "project": "7.1", "params": {"login": None, "password": None}}
    assert len(json.dumps(body)) > 1_048_576  # over the limit of /v1/ner: this route has its own
    status, _, answer = call(server, "POST", "/label-studio/predict", body)
    assert status == 200 and len(answer["results"]) == len(tasks)
    assert answer["results"][5]["result"] == []
    seen = set()
    for task, prediction in zip(tasks, answer["results"]):
        assert prediction["model_version"] == "tiny/t1" and 0.0 <= prediction["score"] <= 1.0
        for region in prediction["result"]:
            v = region["value"]
            assert (region["from_name"], region["to_name"], region["type"]) == ("ner", "txt", "labels")
            assert js_slice(task["data"]["body"], v["start"], v["end"]) == v["text"]
            assert v["labels"][0] in ("Person", "loc") and 0.0 <= region["score"] <= 1.0
            seen.add((v["text"], v["labels"][0], "🙂" in task["data"]["body"]))
    assert ("Anna Berg", "Person", True) in seen and ("Oslo", "loc", True) in seen  # after the emoji, offsets right


def test_an_annotators_region_is_suggested_again_where_the_phrase_recurs(backend):
    _, server = backend
    text = "🙂 Zorblat met Anna Berg . Later Zorblat flew to Oslo with Zorblat ."
    start = len("🙂 ".encode("utf-16-le")) // 2
    manual = {"from_name": "ner", "to_name": "txt", "type": "labels", "origin": "manual",
              "value": {"start": start, "end": start + 7, "text": "Zorblat", "labels": ["Person"]}}
    body = {"tasks": [{"id": 1, "data": {"body": text}}], "label_config": CONFIG,
            "params": {"context": {"annotation_id": None, "draft_id": 0, "user_id": 1, "result": [manual]}}}
    status, _, answer = call(server, "POST", "/label-studio/predict", body)
    assert status == 200 and len(answer["results"]) == 1
    regions = answer["results"][0]["result"]
    again = [r["value"] for r in regions if r["value"]["text"] == "Zorblat"]
    assert len(again) == 2 and all(js_slice(text, v["start"], v["end"]) == "Zorblat" and v["labels"] == ["Person"]
                                   for v in again)
    starts = [r["value"]["start"] for r in regions]
    assert starts == sorted(starts) and start not in starts  # the annotator's own region is theirs already


def test_bad_predict_calls_are_the_callers_fault(backend):
    _, server = backend
    assert call(server, "POST", "/label-studio/predict", {"tasks": "x", "label_config": CONFIG})[0] == 400
    status, _, error = call(server, "POST", "/label-studio/predict", {"tasks": [], "label_config": "<View/>"})
    assert status == 422 and error["error"]["code"] == "invalid_label_config"
    assert call(server, "POST", "/label-studio/predict", {"tasks": [], "label_config": "<View"})[0] == 422
    assert call(server, "POST", "/label-studio/predict", b"[1]", {**BASIC, "Content-Type": "application/json"})[0] \
        == 400


def test_webhooks_leave_a_durable_training_request(backend):
    root, server = backend
    requests = root / "training" / "requests"
    hook = "/label-studio/webhook"
    status, _, answer = call(server, "POST", hook, {"action": "PROJECT_UPDATED", "project": {"id": 3}})
    assert status == 200 and answer["status"] == "ignored" and not (requests / "3.json").exists()
    event = {"action": "ANNOTATION_CREATED", "project": {"id": 3}, "annotation": {"id": 1}, "task": {"id": 1}}
    assert call(server, "POST", "/label-studio/webhook", event)[2]["status"] == "counted"
    status, _, answer = call(server, "POST", "/label-studio/webhook", event)  # every 2 annotations
    assert status == 201 and json.loads((requests / "3.json").read_text())["reason"] == "ANNOTATION_CREATED"
    status, _, answer = call(server, "POST", hook, {"action": "START_TRAINING", "project": {"id": 8}})
    assert status == 201 and (requests / "8.json").exists()
    health = call(server, "GET", "/label-studio/health")[2]
    assert set(health["training"]["pending"]) >= {"3", "8"}
    text = server.request("GET", "/metrics")[2]
    assert metric(text, "nerve_training_requests_pending") >= 2
    assert metric(text, "nerve_label_studio_events_total", action="START_TRAINING", result="training requested") == 1
