"""Hot model swap: by the admin endpoint or SIGHUP, under load, with zero failed requests."""
import shutil
import signal
import time

import numpy as np
import pytest
from corrupt import KINDS

from model import artifact
from model.predict import Model
from server import Load, Server

pytestmark = pytest.mark.slow
KEY = {"X-API-Key": "s3cret"}
SENTENCE = {"text": "Anna Berg visited Oslo on Monday .", "tokens": False}


def variant(tiny_model, out, version):
    """The tiny model with nudged weights and its own version: a different artifact."""
    params = dict(tiny_model.params)
    params["c"] = params["c"] + np.float32(0.01)
    artifact.save(str(out), params, tiny_model.config, tiny_model.featurizer.vocabs, tiny_model.labels,
                  {"name": "tiny", "version": version, "calibration": tiny_model.manifest["calibration"]})
    return out


def served_versions(s, n=24):
    return {s.ner(SENTENCE, KEY)[1]["x-nerve-model"] for _ in range(n)}


def wait_for_version(s, version, timeout=20):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if served_versions(s) == {f"tiny/{version}"}:
            return True
        time.sleep(0.1)
    return False


def assert_none_failed(load, what):
    load.stop()
    outcomes = load.wait()
    assert len(outcomes) > 100 and all(o[0] == 200 for o in outcomes), {o[0] for o in outcomes}
    print(f"{what}: {len(outcomes)} requests during two reloads, 0 failed")


def test_admin_reload_under_load_switches_every_worker_and_refuses_a_bad_model(tmp_path, tiny_model, tiny_model_dir):
    new = variant(tiny_model, tmp_path / "new", "t2")
    bad = tmp_path / "bad"
    shutil.copytree(new, bad)
    KINDS["NaN"][0](bad)
    s = Server(tmp_path, model_dir=tiny_model_dir, NERVE_API_KEYS="s3cret")
    try:
        load = Load(s, {"texts": [SENTENCE["text"]] * 8, "tokens": False}, threads=8, count=100_000, headers=KEY)
        assert s.request("POST", "/v1/admin/reload", {"path": str(new)})[0] == 401
        status, headers, body = s.request("POST", "/v1/admin/reload", {"path": str(new)}, KEY)
        assert status == 200 and body["model"]["version"] == "t2" and headers["x-nerve-model"] == "tiny/t2"
        assert wait_for_version(s, "t2")
        status, _, body = s.request("POST", "/v1/admin/reload", {"path": str(bad)}, KEY)
        assert status == 422 and "NaN" in body["error"]["message"]
        assert served_versions(s) == {"tiny/t2"} and s.request("GET", "/readyz")[0] == 200
        assert_none_failed(load, "admin swap")
    finally:
        s.stop()


def test_sighup_loads_the_directory_again_and_keeps_the_old_model_if_the_new_one_is_bad(
        tmp_path, tiny_model, tiny_model_dir):
    served = tmp_path / "served"
    shutil.copytree(tiny_model_dir, served)
    s = Server(tmp_path, model_dir=served)
    try:
        load = Load(s, {"texts": [SENTENCE["text"]] * 8, "tokens": False}, threads=8, count=100_000)
        variant(tiny_model, served, "t3")  # a trainer writes a new model into the served directory
        s.proc.send_signal(signal.SIGHUP)
        assert wait_for_version(s, "t3")
        KINDS["corrupt"][0](served)  # now the directory goes bad
        s.proc.send_signal(signal.SIGHUP)
        time.sleep(3)  # new workers have started by now
        assert served_versions(s) == {"tiny/t3"} and s.request("GET", "/readyz")[0] == 200
        assert "refused" in s.output()
        assert_none_failed(load, "SIGHUP swap")
    finally:
        s.stop()


def test_a_request_in_flight_finishes_on_the_model_it_started_with(tmp_path, tiny_model, tiny_model_dir):
    from service.model_store import ModelStore

    store = ModelStore(str(tiny_model_dir), str(tmp_path / "state"))
    before = store.current
    store.reload(str(variant(tiny_model, tmp_path / "v4", "t4")))
    assert before.version == "t1" and store.current.version == "t4"
    assert Model.load(str(tiny_model_dir)).version == "t1"  # the object a request holds is untouched
