"""Your own entity types, from the files annotation tools export, to a served model."""
import json
import subprocess
import sys

import pytest

from conftest import FIXTURES, ROOT, TINY_CONFIG
from training.conll import ConllError
from training.spans import read_data, read_spans

SPANS = FIXTURES / "spans"


@pytest.mark.parametrize("name, fmt", [("doccano.jsonl", "doccano"), ("label-studio.json", "label-studio"),
                                       ("spacy.jsonl", "spacy")])
def test_each_export_format_is_recognised_and_read_onto_the_tokens(name, fmt):
    sentences, found, problems = read_spans(SPANS / name)
    assert found == fmt and problems == []
    first = sentences[0]
    assert first.words == ["Anna", "Berg", "visited", "Oslo", "on", "Monday", "."]
    assert first.tags == ["B-PER", "I-PER", "O", "B-LOC", "O", "O", "O"]
    assert ("Drug-X", "B-DRUG-NAME") in {(w, t) for s in sentences for w, t in zip(s.words, s.tags)}


def test_every_kind_of_bad_span_is_reported_where_it_is():
    _, _, problems = read_spans(SPANS / "bad.jsonl")
    text = [str(p) for p in problems]
    assert len(text) == 4
    assert text[0].startswith(f"{SPANS / 'bad.jsonl'}:1: span 0..7 'Anna Be' (PER) does not fall on token")
    assert "nearest: 0..9" in text[0]
    assert ":2:" in text[1] and "overlaps" in text[1]
    assert ":3:" in text[2] and "runs past the text" in text[2]
    assert ":4:" in text[3] and "has no label" in text[3]
    with pytest.raises(ConllError, match="4 problem"):
        read_data(SPANS / "bad.jsonl")
    sentences, _ = read_data(SPANS / "bad.jsonl", skip_invalid=True, log=lambda *a: None)
    assert len(sentences) == 4


def test_check_lists_counts_and_problems_and_fails_on_them():
    out = subprocess.run([sys.executable, "-m", "training.check", str(SPANS / "doccano.jsonl"),
                          str(SPANS / "bad.jsonl")], capture_output=True, text=True, cwd=ROOT)
    assert out.returncode == 1
    assert "4 documents, 4 sentences, 30 tokens, 9 spans" in out.stdout and "DRUG-NAME: 3" in out.stdout
    assert out.stdout.count("problem: ") == 4 and "4 problem(s)" in out.stdout
    ok = subprocess.run([sys.executable, "-m", "training.check", str(SPANS / "spacy.jsonl")], capture_output=True,
                        text=True, cwd=ROOT)
    assert ok.returncode == 0 and "0 problem(s)" in ok.stdout


def test_a_model_trained_on_an_export_serves_its_own_labels(tmp_path):
    from server import Server
    from training.embeddings import load_vectors
    from training.train import TrainConfig, train

    lines = (SPANS / "doccano.jsonl").read_text().splitlines() * 15
    (tmp_path / "drug-notes.jsonl").write_text("\n".join(lines) + "\n")
    manifest = train(TrainConfig(**TINY_CONFIG), tmp_path / "drug-notes.jsonl", SPANS / "label-studio.json",
                     str(tmp_path / "drugs"), vectors=load_vectors(str(FIXTURES / "vectors.txt")), quiet=True)
    assert manifest["name"] == "nerve-drug-notes" and "B-DRUG-NAME" in manifest["labels"]
    server = Server(tmp_path, model_dir=tmp_path / "drugs")
    try:
        status, _, info = server.request("GET", "/v1/model")
        assert status == 200 and "DRUG-NAME" in json.dumps(info)
        status, _, answer = server.ner({"text": "Nordbank said Drug-X sales rose.", "labels": ["DRUG-NAME"]})
        assert status == 200
        assert [(e["text"], e["label"]) for e in answer["entities"]] == [("Drug-X", "DRUG-NAME")]
        assert "DRUG-NAME" in answer["tokens"][0]["probabilities"]
    finally:
        server.stop()


def test_the_trainer_names_a_model_after_its_data_or_as_told(tmp_path):
    from training.train import default_name

    assert default_name("data/conll2003/train.txt") == "nerve-conll2003"
    assert default_name("my/drug-notes.jsonl") == "nerve-drug-notes"
    out = subprocess.run([sys.executable, "-m", "training.train", "--train", str(SPANS / "spacy.jsonl"), "--dev",
                          str(SPANS / "bad.jsonl"), "--out", str(tmp_path / "m"), "--embeddings",
                          str(FIXTURES / "vectors.txt")], capture_output=True, text=True, cwd=ROOT)
    assert out.returncode == 2 and "does not fall on token boundaries" in out.stderr and "Traceback" not in out.stderr
