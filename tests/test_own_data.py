"""Your own entity types, from the files annotation tools export, to a served model."""
import json
import os
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


def test_bad_spans_in_a_label_studio_export_are_reported_by_task(tmp_path):
    tasks = [{"id": 100 + i, "data": {"text": r["text"]},
              "annotations": [{"result": [{"value": {"start": s, "end": e, "labels": [label]}}
                                          for s, e, label in r["label"]]}]}
             for i, r in enumerate(map(json.loads, (SPANS / "bad.jsonl").read_text().splitlines()))]
    (tmp_path / "bad.json").write_text(json.dumps(tasks))
    _, found, problems = read_spans(tmp_path / "bad.json")
    text = [str(p) for p in problems]
    assert found == "label-studio" and len(text) == 4
    assert "task 100: span 0..7 'Anna Be' (PER) does not fall on token boundaries; nearest: 0..9" in text[0]
    assert "task 101" in text[1] and "overlaps" in text[1]
    assert "task 102" in text[2] and "runs past the text" in text[2]
    assert "task 103" in text[3] and "has no label" in text[3]


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


def repeated(name, times, out):
    """The fixture export ``name`` with its documents repeated: enough to train a tiny model on."""
    if name.endswith(".json"):
        tasks = json.loads((SPANS / name).read_text())
        out.write_text(json.dumps([{**t, "id": i} for i, t in enumerate(tasks * times)]))
    else:
        out.write_text("\n".join((SPANS / name).read_text().splitlines() * times) + "\n")
    return out


@pytest.mark.parametrize("name, dev", [("doccano.jsonl", "label-studio.json"), ("label-studio.json", "spacy.jsonl"),
                                       ("spacy.jsonl", "doccano.jsonl")])
def test_a_model_trained_on_an_export_serves_its_own_labels(tmp_path, name, dev):
    from server import Server
    from training.embeddings import load_vectors
    from training.train import TrainConfig, train

    train_file = repeated(name, 15, tmp_path / f"drug-notes{os.path.splitext(name)[1]}")
    check = subprocess.run([sys.executable, "-m", "training.check", str(train_file), str(SPANS / dev)],
                           capture_output=True, text=True, cwd=ROOT)
    assert check.returncode == 0 and "DRUG-NAME: 45" in check.stdout, check.stdout
    manifest = train(TrainConfig(**TINY_CONFIG), train_file, SPANS / dev,
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


def test_a_label_studio_export_is_read_one_task_at_a_time(tmp_path):
    from training.spans import json_array_items

    tasks = [{"id": i, "data": {"text": "Anna Berg visited Oslo. " * (i % 5 + 1)}, "annotations": []}
             for i in range(50)]
    path = tmp_path / "tasks.json"
    path.write_text(json.dumps(tasks, indent=1))
    assert list(json_array_items(path, chunk=7)) == tasks  # items cut across reads come out whole
    path.write_text(json.dumps(tasks)[:-40])
    with pytest.raises(ConllError, match="invalid JSON|not closed"):
        list(json_array_items(path, chunk=64))


DRUGS = FIXTURES / "drugs"


def test_fine_tuning_keeps_the_model_and_adds_rows_for_new_types(tiny_model_dir):
    import numpy as np

    from model.artifact import load
    from training.embeddings import load_vectors
    from training.train import start_from

    base_params, _, base_featurizer, base_labels, _ = load(str(tiny_model_dir))
    sentences, _ = read_data(DRUGS / "train.jsonl")
    params, _, featurizer, labels, _, manifest = start_from(
        str(tiny_model_dir), sentences, load_vectors(str(FIXTURES / "vectors.txt")), np.random.default_rng(0),
        lambda *a: None)
    k = len(base_labels)
    assert labels[:k] == base_labels and labels[k:] == ["B-DRUG", "I-DRUG", "E-DRUG", "S-DRUG"]
    assert np.array_equal(params["U"][:k], base_params["U"]) and params["U"].shape[0] == k + 4
    old_words = base_featurizer.vocabs["word"].words
    assert featurizer.vocabs["word"].words[: len(old_words)] == old_words  # every old word keeps its id
    assert "ibuprofen" in featurizer.vocabs["word"].index and "ibuprofen" not in old_words
    assert np.array_equal(params["E"][: len(old_words)], base_params["E"]) and len(params["E"]) > len(old_words)
    assert manifest["sha256"] == json.loads((tiny_model_dir / "model.json").read_text())["sha256"]


def test_types_the_new_data_does_not_annotate_are_filled_in_from_the_starting_model(tiny_model):
    from training.conll import Sentence
    from training.evaluate import predict_tags
    from training.train import fill_unannotated

    words = "Anna Berg joined Acme Corp in Oslo".split()
    predicted = predict_tags(tiny_model, [Sentence(words, ["O"] * len(words))])[0]
    orgs = [i for i, t in enumerate(predicted) if t.endswith("-ORG")]
    assert orgs and len(orgs) < len([t for t in predicted if t != "O"])  # the starting model finds ORG and more
    annotated = Sentence(list(words), ["O"] * len(words))
    j = predicted.index("O")
    annotated.tags[j] = "B-DRUG"  # annotated for a new type only, over a word the model leaves O
    assert fill_unannotated(tiny_model, [annotated], lambda *a: None) >= 1
    assert annotated.tags[j] == "B-DRUG"
    assert [t for i, t in enumerate(annotated.tags) if i != j] == [t for i, t in enumerate(predicted) if i != j]
    # a type the data annotates itself is never filled in: its O means O
    own = Sentence(list(words), ["O"] * len(words))
    other = Sentence(["Rain", "in", "Oslo"], ["O", "O", "B-ORG"], doc=1)  # another document: read apart
    fill_unannotated(tiny_model, [own, other], lambda *a: None)
    assert all(own.tags[i] == "O" for i in orgs)
    assert [t for i, t in enumerate(own.tags) if i not in orgs] == [t for i, t in enumerate(predicted) if i not in orgs]
    assert other.tags[2] == "B-ORG" and not any(t.endswith("-ORG") for t in other.tags[:2])


def test_fine_tuning_with_replay_serves_old_and_new_types(tiny_model_dir, tmp_path):
    from model.predict import Model
    from training.embeddings import load_vectors
    from training.evaluate import evaluate
    from training.train import TrainConfig, train

    manifest = train(TrainConfig(**{**TINY_CONFIG, "epochs": 12}), DRUGS / "train.jsonl", DRUGS / "dev.jsonl",
                     str(tmp_path / "ft"), vectors=load_vectors(str(FIXTURES / "vectors.txt")), quiet=True,
                     init_from=str(tiny_model_dir), replay=FIXTURES / "tiny_train.conll")
    base = json.loads((tiny_model_dir / "model.json").read_text())
    assert manifest["training"]["init_from"]["sha256"] == base["sha256"]
    assert manifest["training"]["replay"]["path"].endswith("tiny_train.conll")
    model = Model.load(str(tmp_path / "ft"))
    assert model.types == ["DRUG", "LOC", "MISC", "ORG", "PER"]
    drugs, _ = read_data(DRUGS / "dev.jsonl")
    assert evaluate(model, drugs)["per_type"]["DRUG"]["f1"] > 0.5
    from training.conll import read_conll

    old, _ = read_conll(FIXTURES / "tiny_train.conll")
    assert evaluate(model, old, {"LOC", "MISC", "ORG", "PER"})["overall"]["f1"] > 0.5


@pytest.mark.parametrize("fmt, suffix", [("doccano", "jsonl"), ("label-studio", "json")])
def test_pre_annotations_come_back_as_training_data_span_for_span(tiny_model, tiny_model_dir, tmp_path, fmt,
                                                                    suffix):
    from conftest import fixture_sentences
    from model.predict import predict

    docs = [" ".join(fixture_sentences()[i: i + 2]) for i in range(0, 40, 2)] + ["Zoë met Anna Berg in Oslo 🙂."]
    (tmp_path / "in.txt").write_text("\n".join(docs) + "\n", encoding="utf-8")
    out = subprocess.run([sys.executable, "-m", "bulk", "--model", str(tiny_model_dir), str(tmp_path / "in.txt"),
                          "--out", str(tmp_path / "out"), "--format", fmt, "--select", "5", "--quiet"],
                         capture_output=True, text=True, cwd=ROOT, timeout=300)
    assert out.returncode == 0, out.stderr
    sentences, found, problems = read_spans(tmp_path / "out" / f"part-00000.{suffix}")
    assert found == fmt and problems == []
    expected = predict(docs, tiny_model)
    assert sum(len(r["entities"]) for r in expected) > 10
    by_doc = {}
    for s in sentences:
        by_doc.setdefault(s.doc, []).extend(s.tags)
    assert [by_doc[i] for i in range(len(docs))] == [[t["tag"] for t in r["tokens"]] for r in expected]

    # The sentences picked for annotation are the least sure ones (each read in its document), least sure first.
    ranked = sorted(((min(max(t["probabilities"].values()) for t in r["tokens"][a: b]), words)
                     for r, d in zip(expected, docs) for a, b, words in sentence_rows(d)), key=lambda c: c[0])
    picked, _, problems = read_spans(tmp_path / "out" / f"selected.{suffix}")
    assert len(picked) == 5 and problems == []
    assert [s.words for s in picked] == [words for _, words in ranked[:5]]


def sentence_rows(text):
    """(first token, end token, words) of each sentence of a text, as the tagger splits it."""
    from model.tokenize import tokenize

    out, i = [], 0
    for sentence in tokenize(text):
        out.append((i, i + len(sentence), [tok for tok, _, _ in sentence]))
        i += len(sentence)
    return out


def test_other_shapes_of_the_same_exports_are_read_alike(tmp_path):
    """doccano's export with relations, Label Studio's JSON-MIN export, a text field not named text."""
    expected, _, _ = read_spans(SPANS / "doccano.jsonl")
    records = [json.loads(line) for line in (SPANS / "doccano.jsonl").read_text().splitlines()]
    for r in records:
        r["label"] = r.pop("label", None) or r.pop("labels")  # the fixture has both spellings
    (tmp_path / "relations.jsonl").write_text("\n".join(json.dumps(
        {"id": i, "text": r["text"], "relations": [],
         "entities": [{"id": j, "start_offset": s, "end_offset": e, "label": lab} for j, (s, e, lab) in
                      enumerate(r["label"])]}) for i, r in enumerate(records)))
    (tmp_path / "min.json").write_text(json.dumps(
        [{"id": i, "text": r["text"], "annotator": 1, "ner": [{"start": s, "end": e, "text": r["text"][s:e],
                                                               "labels": [lab]} for s, e, lab in r["label"]]}
         for i, r in enumerate(records)]))
    (tmp_path / "named.json").write_text(json.dumps(
        [{"id": i, "data": {"sentence": r["text"]}, "annotations": [{"result": [
            {"value": {"start": s, "end": e, "labels": [lab]}} for s, e, lab in r["label"]]}]}
         for i, r in enumerate(records)]))
    for name, fmt in (("relations.jsonl", "doccano"), ("min.json", "label-studio"), ("named.json", "label-studio")):
        sentences, found, problems = read_spans(tmp_path / name)
        assert (found, problems) == (fmt, []) and sentences == expected, name


def test_fifty_types_with_spaces_in_their_names_train_and_tag(tmp_path):
    from model.predict import Model, predict
    from training.embeddings import load_vectors
    from training.train import TrainConfig, train

    lines = []
    for i in range(200):
        name = f"Item{i % 50}"
        text = f"The shop in Oslo sold {name} on Monday ."
        start = text.index(name)
        lines.append(json.dumps({"text": text, "label": [[start, start + len(name), f"KIND {i % 50}"]]}))
    (tmp_path / "kinds.jsonl").write_text("\n".join(lines) + "\n")
    train(TrainConfig(**{**TINY_CONFIG, "epochs": 3}), tmp_path / "kinds.jsonl", tmp_path / "kinds.jsonl",
          str(tmp_path / "m"), vectors=load_vectors(str(FIXTURES / "vectors.txt")), quiet=True)
    model = Model.load(str(tmp_path / "m"))
    assert len(model.types) == 50 and len(model.labels) == 1 + 4 * 50 and "KIND 7" in model.types
    [answer] = predict(["The shop in Oslo sold Item7 on Monday ."], model)
    assert len(answer["tokens"][0]["probabilities"]) == 51
    assert all(e["label"] in model.types for e in answer["entities"])


def test_a_trained_model_takes_pooling_on_and_answers_as_before_until_trained(tmp_path):
    import numpy as np

    from model.predict import Model
    from training.conll import read_conll
    from training.embeddings import load_vectors
    from training.train import TrainConfig, start_from, train

    vectors = load_vectors(str(FIXTURES / "vectors.txt"))
    plain = {**TINY_CONFIG, "pool_mentions": False, "pool_document": False, "epochs": 3}
    train(TrainConfig(**plain), FIXTURES / "tiny_train.conll", FIXTURES / "tiny_dev.bio", str(tmp_path),
          vectors=vectors, quiet=True)
    before = Model.load(str(tmp_path))
    sentences, _ = read_conll(FIXTURES / "tiny_train.conll")
    params, config, featurizer, labels, _, _ = start_from(
        str(tmp_path), sentences, vectors, np.random.default_rng(0), lambda *a: None,
        pooling={"pool_mentions": True, "pool_document": True})
    assert config.pools and not before.config.pools
    after = Model(params, config, featurizer, labels, before.manifest)
    words = [s.words for s in sentences[:6]]
    batch_before, batch_after = before.batch(words), after.batch(words)
    for blocks in (np.zeros(6, dtype=int), np.arange(6)):  # one document, or six texts of one sentence
        np.testing.assert_allclose(after.scores(batch_after, after.groups(words, batch_after, blocks)),
                                   before.scores(batch_before), rtol=1e-5, atol=1e-5)
