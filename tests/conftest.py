"""Shared fixtures: paths to the data beside the project, and a real tiny model trained once per run."""
import os
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
FIXTURES = ROOT / "tests" / "fixtures"
SHARED = Path(os.environ.get("NERVE_SHARED", ROOT.parent / "shared"))
CONLL = SHARED / "data" / "conll2003"
DEFAULT_MODEL = ROOT / "models" / "default"

sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))


def conll_split(name):
    """Path of a CoNLL-2003 split in ../shared, or skip the test saying why."""
    path = CONLL / f"{name}.txt"
    if not path.exists():
        pytest.skip(f"CoNLL-2003 {name} split not found at {path} (the data lives in ../shared, not the repo)")
    return path


def fixture_sentences():
    """The training fixture's sentences as plain strings of their words."""
    sentences, words = [], []
    for line in (FIXTURES / "tiny_train.conll").read_text(encoding="utf-8").splitlines():
        if line.strip() and not line.startswith("-DOCSTART-"):
            words.append(line.split()[0])
        elif words:
            sentences.append(" ".join(words))
            words = []
    if words:
        sentences.append(" ".join(words))
    return sentences


# The shipped configuration (relu, casing with sentence regimes, re-casing, character features, the
# document cue), small; and the same with pooling over mentions and the document.
TINY_CONFIG = dict(hidden=32, activation="relu", features={"case": 4}, dropout=0.0, extra_vectors=0,
                   epochs=30, patience=30, lr=0.01, lr_decay=1.0, batch_size=16, word_dropout=0.0, seed=3,
                   char_dim=4, char_filters=8, block_tokens=48, gazetteer_dim=0)
TINY_POOLING = {**TINY_CONFIG, "pool_mentions": True, "pool_document": True}
TINY_GAZETTEER = {**TINY_CONFIG, "gazetteer_dim": 4}


def train_tiny(tmp_path_factory, config, info):
    """A real model trained on the fixture in a few seconds, with the fixture's word vectors."""
    from training.embeddings import load_vectors
    from training.train import TrainConfig, train

    out = tmp_path_factory.mktemp(info["name"])
    train(TrainConfig(**config), FIXTURES / "tiny_train.conll", FIXTURES / "tiny_dev.bio", str(out),
          vectors=load_vectors(str(FIXTURES / "vectors.txt")), quiet=True, info=info)
    return out


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory):
    """The tiny model: the shipped configuration, small."""
    return train_tiny(tmp_path_factory, TINY_CONFIG, {"name": "tiny", "version": "t1"})


@pytest.fixture(scope="session")
def tiny_pooling_model_dir(tmp_path_factory):
    """The tiny model with pooling over mentions and the document."""
    return train_tiny(tmp_path_factory, TINY_POOLING, {"name": "tiny-pooling"})


@pytest.fixture(scope="session")
def tiny_gazetteer_model_dir(tmp_path_factory):
    """The tiny model with gazetteer features (the public lists of training/gazetteer.py)."""
    return train_tiny(tmp_path_factory, TINY_GAZETTEER, {"name": "tiny-gazetteer"})


@pytest.fixture(scope="session")
def tiny_drug_model_dir(tmp_path_factory):
    """A tiny model of other types (DRUG-NAME), trained on the fixture export repeated."""
    from training.embeddings import load_vectors
    from training.train import TrainConfig, train

    spans = FIXTURES / "spans"
    work = tmp_path_factory.mktemp("drug-data")
    data = work / "drug-notes.jsonl"
    data.write_text("\n".join((spans / "doccano.jsonl").read_text().splitlines() * 15) + "\n")
    out = work / "model"
    train(TrainConfig(**TINY_CONFIG), data, spans / "label-studio.json", str(out),
          vectors=load_vectors(str(FIXTURES / "vectors.txt")), quiet=True, info={"name": "drugs", "version": "d1"})
    return out


@pytest.fixture(scope="session")
def tiny_pooling_model(tiny_pooling_model_dir):
    from model.predict import Model

    return Model.load(str(tiny_pooling_model_dir))


@pytest.fixture(scope="session")
def tiny_model(tiny_model_dir):
    from model.predict import Model

    return Model.load(str(tiny_model_dir))


@pytest.fixture(scope="module")
def server(tiny_model_dir, tmp_path_factory):
    """gunicorn with 2 workers serving the tiny model."""
    from server import Server

    s = Server(tmp_path_factory.mktemp("server"), model_dir=tiny_model_dir)
    yield s
    s.stop()
