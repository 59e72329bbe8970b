import io
import json
import os
import shutil
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

from model import artifact
from model.artifact import ArtifactError
from model.predict import Model, predict


@pytest.fixture
def copy_dir(tiny_model_dir, tmp_path):
    target = tmp_path / "model"
    shutil.copytree(tiny_model_dir, target)
    return target


def weights_path(directory):
    return directory / json.loads((directory / "model.json").read_text())["weights"]


def rewrite_npz(directory, change):
    """Rewrite the weights with ``change(arrays)`` applied and the manifest's checksum updated,
    so that only the content check can refuse it."""
    path = weights_path(directory)
    with np.load(path, allow_pickle=False) as f:
        arrays = {k: f[k] for k in f.files}
    change(arrays)
    buf = io.BytesIO()
    np.savez(buf, **arrays)
    path.write_bytes(buf.getvalue())
    manifest = json.loads((directory / "model.json").read_text())
    manifest["sha256"] = artifact._sha256(buf.getvalue())
    (directory / "model.json").write_text(json.dumps(manifest))


def test_round_trip_is_exact(tiny_model, tmp_path):
    out = tmp_path / "again"
    artifact.save(str(out), tiny_model.params, tiny_model.config, tiny_model.featurizer.vocabs, tiny_model.labels,
                  {"name": "tiny", "version": "t2", "calibration": tiny_model.manifest["calibration"]})
    again = Model.load(str(out))
    assert again.config == tiny_model.config and again.labels == tiny_model.labels
    assert again.featurizer.vocabs["word"].words == tiny_model.featurizer.vocabs["word"].words
    for key, value in tiny_model.params.items():
        assert np.array_equal(again.params[key], value) and again.params[key].dtype == np.float32
    text = ["Anna Berg visited Oslo on Monday."]
    assert predict(text, again) == predict(text, tiny_model)


def refused(directory, *phrases):
    with pytest.raises(ArtifactError) as e:
        Model.load(str(directory))
    assert all(p in str(e.value) for p in phrases), str(e.value)


def test_corrupt_weights_are_refused_by_checksum(copy_dir):
    path = weights_path(copy_dir)
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF
    path.write_bytes(bytes(data))
    refused(copy_dir, "sha256", "corrupt")


def test_truncated_weights_are_refused(copy_dir):
    path = weights_path(copy_dir)
    path.write_bytes(path.read_bytes()[:1000])
    refused(copy_dir, "truncated")


def test_truncated_weights_with_matching_checksum_are_refused(copy_dir):
    path = weights_path(copy_dir)
    data = path.read_bytes()[:1000]
    path.write_bytes(data)
    manifest = json.loads((copy_dir / "model.json").read_text())
    manifest["sha256"] = artifact._sha256(data)
    (copy_dir / "model.json").write_text(json.dumps(manifest))
    refused(copy_dir, "not a readable npz")


def test_empty_and_missing_files_are_refused(copy_dir, tmp_path):
    weights_path(copy_dir).write_bytes(b"")
    refused(copy_dir, "sha256")
    refused(tmp_path / "nowhere", "no model.json")
    (copy_dir / "model.json").write_text("")
    refused(copy_dir, "not valid JSON")


def test_nan_weights_are_refused(copy_dir):
    rewrite_npz(copy_dir, lambda a: a["W"].__setitem__((0, 0), np.nan))
    refused(copy_dir, "'W'", "NaN")


def test_wrong_shape_is_refused(copy_dir):
    rewrite_npz(copy_dir, lambda a: a.__setitem__("U", a["U"][:-1]))
    refused(copy_dir, "'U'", "shape")


def test_wrong_dtype_is_refused(copy_dir):
    rewrite_npz(copy_dir, lambda a: a.__setitem__("b", a["b"].astype(np.float64)))
    refused(copy_dir, "'b'", "float64")


def test_pickled_arrays_are_refused_without_running_them(copy_dir, tmp_path):
    marker = tmp_path / "pwned"

    class Payload:
        def __reduce__(self):
            return (os.system, (f"touch {marker}",))

    rewrite_npz(copy_dir, lambda a: a.__setitem__("c", np.array([Payload()], dtype=object)))
    refused(copy_dir, "pickled")
    assert not marker.exists()


def test_path_in_weights_name_is_refused(copy_dir):
    manifest = json.loads((copy_dir / "model.json").read_text())
    manifest["weights"] = "../../etc/passwd.npz"
    (copy_dir / "model.json").write_text(json.dumps(manifest))
    refused(copy_dir, "plain .npz file name")


def test_a_writer_killed_mid_write_leaves_the_previous_artifact_whole(tiny_model, copy_dir):
    before = Model.load(str(copy_dir)).manifest["sha256"]
    writer = (
        "import sys, time, numpy as np; sys.path.insert(0, '.')\n"
        "from model import artifact; from model.predict import Model\n"
        f"m = Model.load({str(copy_dir)!r})\n"
        "p = dict(m.params); p['E'] = np.tile(p['E'], (4000, 1))\n"  # a large write, killed part way
        "from model.vocab import Vocab\n"
        "old = m.featurizer.vocabs['word'].words\n"
        "words = old[3:] + [f'w{i}' for i in range(len(p['E']) - len(old))]\n"
        "v = dict(m.featurizer.vocabs); v['word'] = Vocab(words)\n"
        "print('go', flush=True)\n"
        "while True: artifact.save(sys.argv[1], p, m.config, v, m.labels)\n"
    )
    proc = subprocess.Popen([sys.executable, "-c", writer, str(copy_dir)], stdout=subprocess.PIPE, text=True)
    assert proc.stdout.readline().strip() == "go"
    time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    loaded = Model.load(str(copy_dir))  # whichever artifact is there is whole
    assert loaded.manifest["sha256"] in (before, artifact.read_manifest(str(copy_dir))["sha256"])
