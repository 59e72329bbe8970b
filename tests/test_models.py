"""Several models in one service (NERVE_MODELS): chosen per request, picked up as their folders change,
and a candidate version answering a share of a model's traffic beside it. Real gunicorn, 2 workers."""
import json
import shutil
import threading
from collections import Counter

import pytest

from model.artifact import atomic_write
from server import Load, Server, metric, wait_for

TEXT = "Anna Berg flew from Oslo to Paris on Monday ."


def new_version(src, dest, version, name=None):
    """A copy of the model in ``src`` at ``dest`` whose manifest says ``version`` (and ``name``)."""
    shutil.copytree(src, dest)
    manifest = json.loads((dest / "model.json").read_text())
    manifest["version"] = version
    if name:
        manifest["name"] = name
    atomic_write(str(dest / "model.json"), json.dumps(manifest).encode())
    return dest


def until(check, timeout=15):
    return wait_for(check, timeout, 0.1)


def answered_by(server, model, payload=None, path="/v1/ner", n=12):
    """Whether ``n`` requests in a row (both workers) are answered by ``model`` ("NAME/VERSION")."""
    return all(server.ner(payload or {"text": TEXT})[1].get("x-nerve-model") == model for _ in range(n))


@pytest.fixture(scope="module")
def models(tiny_model_dir, tiny_drug_model_dir, tmp_path_factory):
    root = tmp_path_factory.mktemp("served-models")
    shutil.copytree(tiny_model_dir, root / "models" / "news")
    shutil.copytree(tiny_drug_model_dir, root / "models" / "drugs")
    server = Server(root, NERVE_MODELS=root / "models", NERVE_MODEL="tiny")
    yield root, server
    server.stop()


def test_two_models_of_other_types_are_answered_by_name(models):
    _, server = models
    status, head, answer = server.ner({"text": "Nordbank said Drug-X sales rose.", "model": "drugs"})
    assert status == 200 and head["x-nerve-model"] == "drugs/d1"
    assert "DRUG-NAME" in answer["tokens"][0]["probabilities"]
    status, head, answer = server.request("POST", "/v1/ner?model=tiny", TEXT.encode(),
                                          {"Content-Type": "text/plain"})
    assert status == 200 and head["x-nerve-model"] == "tiny/t1"
    assert "DRUG-NAME" not in answer["tokens"][0]["probabilities"]
    status, head, _ = server.ner({"text": TEXT})                     # no choice: NERVE_MODEL names the default
    assert head["x-nerve-model"] == "tiny/t1"
    status, head, _ = server.ner({"text": TEXT, "model": "drugs/d1"})
    assert status == 200 and head["x-nerve-model"] == "drugs/d1"
    # a label the chosen model lacks is the request's fault, as with one model
    status, _, error = server.ner({"text": TEXT, "model": "tiny", "labels": ["DRUG-NAME"]})
    assert status == 422 and error["error"]["code"] == "unknown_label"


def test_an_unknown_model_or_version_is_404_naming_what_is_served(models):
    _, server = models
    status, _, error = server.ner({"text": TEXT, "model": "nope"})
    assert status == 404 and error["error"]["code"] == "unknown_model"
    assert "drugs" in error["error"]["message"] and "tiny" in error["error"]["message"]
    status, _, error = server.request("POST", "/v1/ner?model=nope", b"x", {"Content-Type": "text/plain"})
    assert status == 404 and error["error"]["code"] == "unknown_model"
    status, _, error = server.ner({"text": TEXT, "model": "tiny/t9"})
    assert status == 404 and "t1" in error["error"]["message"]
    status, _, error = server.request("GET", "/v1/models/nope")
    assert status == 404 and error["error"]["code"] == "unknown_model"
    status, _, error = server.ner({"text": TEXT, "model": 3})
    assert status == 400


def test_models_are_listed_and_described_one_by_one(models):
    _, server = models
    status, _, listing = server.request("GET", "/v1/models")
    assert status == 200 and listing["default"] == "tiny"
    assert [m["name"] for m in listing["models"]] == ["tiny", "drugs"]
    labels = {m["name"]: m["labels"] for m in listing["models"]}
    assert "DRUG-NAME" in labels["drugs"] and "DRUG-NAME" not in labels["tiny"] and "LOC" in labels["tiny"]
    status, head, one = server.request("GET", "/v1/models/drugs")
    assert status == 200 and one["version"] == "d1" and one["default"] is False and head["x-nerve-model"] == "drugs/d1"
    status, _, default = server.request("GET", "/v1/model")
    assert default["name"] == "tiny" and default["default"] is True
    status, _, ready = server.request("GET", "/readyz")
    assert status == 200 and ready["models"] == ["drugs", "tiny"]
    text = server.request("GET", "/metrics")[2]
    assert metric(text, "nerve_model_info", model="drugs", version="d1") == 1
    assert metric(text, "nerve_requests_total", route="/v1/ner", status="200", model="drugs") >= 1
    assert metric(text, "nerve_tokens_total", model="drugs") >= 1


def test_folders_added_replaced_and_removed_under_load_fail_no_request(models, tiny_model_dir, tiny_drug_model_dir):
    root, server = models
    base = root / "models"
    loads = [Load(server, {"text": TEXT, "model": "tiny"}, threads=3, count=1500),
             Load(server, {"text": "Drug-X sales rose .", "model": "drugs"}, threads=3, count=1500)]
    try:
        # added: copied beside the folder, then renamed in, so it appears whole
        new_version(tiny_model_dir, root / "staging", "e1", name="extra")
        (root / "staging").rename(base / "extra")
        assert until(lambda: answered_by(server, "extra/e1", {"text": TEXT, "model": "extra"}))
        # replaced in place: the manifest rewritten (as the trainer's save does), a new version
        manifest = json.loads((base / "news" / "model.json").read_text())
        atomic_write(str(base / "news" / "model.json"), json.dumps({**manifest, "version": "t2"}).encode())
        assert until(lambda: answered_by(server, "tiny/t2", {"text": TEXT, "model": "tiny"}))
        # removed
        shutil.rmtree(base / "extra")
        assert until(lambda: server.ner({"text": TEXT, "model": "extra"})[0] == 404)
    finally:
        for load in loads:
            load.stop()
        outcomes = [o for load in loads for o in load.wait()]
    tally = Counter(status for status, _, _ in outcomes)
    assert tally == {200: len(outcomes)} and len(outcomes) > 50, tally
    atomic_write(str(base / "news" / "model.json"), json.dumps(manifest).encode())  # back to t1 for the others
    assert until(lambda: answered_by(server, "tiny/t1"))


def test_a_corrupt_folder_is_refused_by_name_while_the_others_serve(tiny_model_dir, tiny_drug_model_dir, tmp_path):
    base = tmp_path / "models"
    shutil.copytree(tiny_model_dir, base / "news")
    shutil.copytree(tiny_drug_model_dir, base / "broken")
    weights = next((base / "broken").glob("model-*.npz"))
    weights.write_bytes(weights.read_bytes()[:1000])
    server = Server(tmp_path, NERVE_MODELS=base, wait_ready=False)
    try:
        status, _, ready = server.request("GET", "/readyz")
        assert status == 503 and "broken" in ready["problems"]
        status, head, _ = server.ner({"text": TEXT})
        assert status == 200 and head["x-nerve-model"] == "tiny/t1"
        status, _, listing = server.request("GET", "/v1/models")
        assert [m["name"] for m in listing["models"]] == ["tiny"] and "broken" in listing["refused"]
        assert "sha256" in listing["refused"]["broken"] or "truncated" in listing["refused"]["broken"]
        # the folder mended: served, and the service ready
        shutil.rmtree(base / "broken")
        shutil.copytree(tiny_drug_model_dir, tmp_path / "mended")
        (tmp_path / "mended").rename(base / "broken")
        assert until(lambda: server.request("GET", "/readyz")[0] == 200)
        assert until(lambda: all(server.ner({"text": TEXT, "model": "drugs"})[0] == 200 for _ in range(8)))
    finally:
        server.stop()


def test_two_folders_with_one_name_stop_the_start_with_a_clear_message(tiny_model_dir, tmp_path):
    base = tmp_path / "models"
    shutil.copytree(tiny_model_dir, base / "a")
    new_version(tiny_model_dir, base / "b", "t2")
    with pytest.raises(RuntimeError) as refused:
        Server(tmp_path, NERVE_MODELS=base)
    assert "both hold model 'tiny'" in str(refused.value)


def test_a_candidate_answers_its_share_after_the_client_and_its_differences_are_counted(
        tiny_model_dir, tiny_drug_model_dir, tmp_path_factory):
    from conftest import TINY_CONFIG, train_tiny

    candidate = train_tiny(tmp_path_factory, {**TINY_CONFIG, "epochs": 1, "seed": 11},
                           {"name": "tiny", "version": "c1"})
    root = tmp_path_factory.mktemp("candidate")
    server = Server(root, model_dir=tiny_model_dir, NERVE_CANDIDATE=f"tiny={candidate}", NERVE_CANDIDATE_SHARE=0.25)
    try:
        texts = ["Anna Berg flew from Oslo to Paris .", "Nordbank said sales rose in Bergen .", TEXT]
        statuses, models, lock = [], Counter(), threading.Lock()

        def client(k):
            for i in range(k, 400, 4):
                status, head, _ = server.ner({"text": texts[i % 3]})
                with lock:
                    statuses.append(status)
                    models[head.get("x-nerve-model")] += 1

        threads = [threading.Thread(target=client, args=(k,)) for k in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert statuses.count(200) == 400 and models == {"tiny/t1": 400}

        def compared():
            return metric(server.request("GET", "/metrics")[2], "nerve_candidate_requests_total", model="tiny",
                          result="compared")
        assert until(lambda: compared() >= 98)
        text = server.request("GET", "/metrics")[2]
        assert 98 <= compared() <= 100  # a quarter of 400, per worker exactly (each rounds down)
        assert metric(text, "nerve_candidate_texts_total", model="tiny", result="differing") > 0
        assert metric(text, "nerve_candidate_duration_seconds_count", model="tiny") == compared()
        status, head, _ = server.ner({"text": TEXT, "model": "tiny/c1"})  # the candidate asked for by version
        assert status == 200 and head["x-nerve-model"] == "tiny/c1"
        status, _, info = server.request("GET", "/v1/model")
        assert info["candidate"] == {"version": "c1", "share": 0.25}
    finally:
        server.stop()
