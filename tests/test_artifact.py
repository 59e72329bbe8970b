import json
import os
import shutil
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
from corrupt import KINDS, _Payload

from model import artifact
from model.artifact import ArtifactError
from model.predict import Model, predict


@pytest.fixture
def copy_dir(tiny_model_dir, tmp_path):
    target = tmp_path / "model"
    shutil.copytree(tiny_model_dir, target)
    return target


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


@pytest.mark.parametrize("kind", sorted(KINDS))
def test_broken_artifacts_are_refused_with_a_clear_reason(copy_dir, kind):
    if os.path.exists(_Payload.marker):
        os.unlink(_Payload.marker)
    breaks, words = KINDS[kind]
    breaks(copy_dir)
    refused(copy_dir, *words)
    assert not os.path.exists(_Payload.marker)


def test_a_missing_directory_is_refused(tmp_path):
    refused(tmp_path / "nowhere", "no model.json")


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


def test_artifacts_from_before_casing_regimes_and_characters_still_load(tmp_path):
    from conftest import FIXTURES, TINY_CONFIG
    from training.embeddings import load_vectors
    from training.train import TrainConfig, train

    cfg = TrainConfig(**{**TINY_CONFIG, "epochs": 3, "case_regimes": False, "recase": {}, "char_dim": 0})
    train(cfg, FIXTURES / "tiny_train.conll", FIXTURES / "tiny_dev.bio", str(tmp_path / "old"),
          load_vectors(str(FIXTURES / "vectors.txt")), quiet=True)
    text = ["Anna Berg visited Oslo on Monday."]
    expected = predict(text, Model.load(str(tmp_path / "old")))
    manifest_path = tmp_path / "old" / "model.json"
    manifest = json.loads(manifest_path.read_text())
    for key in ("case_regimes", "char_dim", "char_filters", "char_width", "char_length"):
        del manifest["config"][key]  # as written before these existed
    manifest_path.write_text(json.dumps(manifest))
    old = Model.load(str(tmp_path / "old"))
    assert not old.config.case_regimes and not old.config.chars
    assert predict(text, old) == expected


def test_a_character_model_round_trips_and_its_arrays_are_checked(tmp_path):
    from conftest import FIXTURES, TINY_CONFIG
    from training.embeddings import load_vectors
    from training.train import TrainConfig, train

    cfg = TrainConfig(**{**TINY_CONFIG, "epochs": 3, "char_dim": 4, "char_filters": 6})
    train(cfg, FIXTURES / "tiny_train.conll", FIXTURES / "tiny_dev.bio", str(tmp_path / "m"),
          load_vectors(str(FIXTURES / "vectors.txt")), quiet=True)
    model = Model.load(str(tmp_path / "m"))
    assert model.config.chars and model.params["Wc"].shape == (6, 12)
    assert model.featurizer.vocabs["chars"].words[:4] == ["<pad>", "<unk>", "<w>", "</w>"]
    manifest = json.loads((tmp_path / "m" / "model.json").read_text())
    manifest["config"]["char_dim"] = 5  # the weights say 4
    (tmp_path / "m" / "model.json").write_text(json.dumps(manifest))
    refused(tmp_path / "m", "'C'", "shape (", "expected (")
