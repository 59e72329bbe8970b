import json
import subprocess
import sys

import pytest

from conftest import DEFAULT_MODEL, FIXTURES, ROOT, conll_split
from model.predict import Model
from training.conll import ConllError, detect_scheme, read_conll, to_bioes
from training.evaluate import evaluate


def run(*args):
    return subprocess.run([sys.executable, *args], capture_output=True, text=True, cwd=ROOT)


def test_reader_converts_iob1_to_iob2_and_says_which_it_read():
    sents, scheme = read_conll(FIXTURES / "tiny_train.conll")
    assert scheme == "IOB1"
    for s in sents:  # IOB2: an I- tag only ever continues an entity of its own type
        for prev, tag in zip(["O"] + s.tags, s.tags):
            assert not tag.startswith("I-") or prev in (f"B-{tag[2:]}", f"I-{tag[2:]}")
    assert any(t.startswith("B-") for s in sents for t in s.tags)
    assert read_conll(FIXTURES / "tiny_dev.bio")[1] == "IOB2"


def test_iob1_adjacent_entities_of_one_type_stay_apart():
    assert detect_scheme([["I-PER", "I-PER", "B-PER"]]) == "IOB1"
    assert to_bioes(["B-PER", "I-PER", "B-PER", "O", "B-LOC"]) == ["B-PER", "E-PER", "S-PER", "O", "S-LOC"]


def test_malformed_lines_name_file_and_line(tmp_path):
    bad = tmp_path / "bad.conll"
    bad.write_text("Anna B-PER\nvisited\n")
    with pytest.raises(ConllError, match=r"bad.conll:2: expected a word and a tag"):
        read_conll(bad)
    bad.write_text("Anna X-PER\n")
    with pytest.raises(ConllError, match=r"bad.conll:1: tag 'X-PER'"):
        read_conll(bad)


@pytest.mark.parametrize("content", ["Anna B-PER\nvisited\n", "Anna Q-PER\n", "", "\xff\xfe bytes"])
def test_trainer_gives_one_clear_error_line_never_a_traceback(tmp_path, content):
    bad = tmp_path / "bad.conll"
    bad.write_bytes(content.encode("latin-1"))
    out = run("-m", "training.train", "--train", str(bad), "--dev", str(FIXTURES / "tiny_dev.bio"),
              "--out", str(tmp_path / "m"), "--embeddings", str(FIXTURES / "vectors.txt"))
    assert out.returncode == 2
    assert "Traceback" not in out.stderr
    assert len(out.stderr.strip().splitlines()) == 1 and out.stderr.startswith("error: ")
    assert not (tmp_path / "m").exists()


def test_unknown_option_is_an_error(tmp_path):
    out = run("-m", "training.train", "--train", "x", "--dev", "y", "--out", "z", "--hiden", "3")
    assert out.returncode == 2 and "unrecognized arguments: --hiden" in out.stderr


def test_tiny_model_learns_its_fixture(tiny_model):
    dev, _ = read_conll(FIXTURES / "tiny_dev.bio")
    assert evaluate(tiny_model, dev)["overall"]["f1"] >= 0.9


def test_training_writes_report_and_manifest(tiny_model_dir):
    manifest = json.loads((tiny_model_dir / "model.json").read_text())
    assert manifest["training"]["train"]["scheme"] == "IOB1"
    assert len(manifest["training"]["train"]["sha256"]) == 64
    metrics = json.loads((tiny_model_dir / "report" / "metrics.json").read_text())
    assert metrics["history"] and "f1" in metrics["dev"]["overall"]
    for name in ("curves.png", "confusion.png", "reliability.png"):
        assert (tiny_model_dir / "report" / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    html = (tiny_model_dir / "report" / "report.html").read_text()
    assert html.count("data:image/png;base64,") == 3 and "Most confident errors" in html


def test_training_is_deterministic_for_a_seed(tmp_path):
    from conftest import TINY_CONFIG
    from training.embeddings import load_vectors
    from training.train import TrainConfig, train

    cfg = TrainConfig(**{**TINY_CONFIG, "epochs": 2})
    vectors = load_vectors(str(FIXTURES / "vectors.txt"))
    a = train(cfg, FIXTURES / "tiny_train.conll", FIXTURES / "tiny_dev.bio", str(tmp_path / "a"), vectors, quiet=True)
    b = train(cfg, FIXTURES / "tiny_train.conll", FIXTURES / "tiny_dev.bio", str(tmp_path / "b"), vectors, quiet=True)
    assert a["sha256"] == b["sha256"]


def test_evaluate_cli_prints_one_json_object(tiny_model_dir):
    out = run("-m", "training.evaluate", "--model", str(tiny_model_dir), "--data", str(FIXTURES / "tiny_dev.bio"),
              "--json")
    result = json.loads(out.stdout)
    assert set(result) == {"overall", "per_type", "sentences", "tokens", "seconds"}
    assert set(result["per_type"]) == {"PER", "LOC", "ORG", "MISC"}


def test_shipped_default_model_reaches_090_f1_on_conll_validation():
    valid = conll_split("valid")
    model = Model.load(str(DEFAULT_MODEL))
    sentences, _ = read_conll(valid)
    assert evaluate(model, sentences)["overall"]["f1"] >= 0.90


def test_word_vectors_load_from_word2vec_binary_and_glove_text(tmp_path):
    from training.embeddings import load_vectors

    text = load_vectors(str(FIXTURES / "vectors.txt"))  # GloVe text: no header line
    binary = tmp_path / "vectors.bin"
    text.save_word2vec_format(str(binary), binary=True)
    again = load_vectors(str(binary))
    assert again.index_to_key == text.index_to_key
    assert (again["oslo"] == text["oslo"]).all() and text.vector_size == 8


def test_trainer_can_fit_word2vec_on_the_users_own_text_first(tmp_path):
    corpus = tmp_path / "corpus.txt"
    sents, _ = read_conll(FIXTURES / "tiny_train.conll")
    corpus.write_text("\n".join(" ".join(s.words) for s in sents) * 3)
    out = run("-m", "training.train", "--train", str(FIXTURES / "tiny_train.conll"), "--dev",
              str(FIXTURES / "tiny_dev.bio"), "--out", str(tmp_path / "m"), "--train-word2vec", str(corpus),
              "--hidden", "16", "--epochs", "3", "--extra-vectors", "0", "--quiet")
    assert out.returncode == 0, out.stderr
    model = Model.load(str(tmp_path / "m"))
    assert model.config.word_dim == 50 and "visited" in model.featurizer.vocabs["word"].index
