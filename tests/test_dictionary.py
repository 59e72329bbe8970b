"""Gazetteers and users' dictionaries: matching, the file format, and a served dictionary re-read live."""
import json
import os
import signal
import subprocess
import time

import numpy as np
import pytest

from model.dictionary import Dictionary, DictionaryError
from model.gazetteer import B, E, Gazetteer, I, S
from model.predict import Model, predict
from model.vocab import normalize


def test_longest_matches_per_category_left_to_right():
    g = Gazetteer(["LOC", "ORG"], {"LOC": [("new", "york"), ("york",), ("new", "york", "city", "hall")],
                                   "ORG": [("new", "york", "times")]})
    words = "The New York Times said New York City Hall and York".split()
    pos = g.positions([words, words[:3]])
    assert pos[:11, 0].tolist() == [0, B, E, 0, 0, B, I, I, E, 0, S]
    assert pos[:11, 1].tolist() == [0, B, I, E, 0, 0, 0, 0, 0, 0, 0]
    assert pos[11:, 0].tolist() == [0, B, E]  # each sentence matched on its own


def test_matching_reads_words_as_the_vocabulary_does_unless_case_is_asked():
    g = Gazetteer(["ORG"], {"ORG": [("acme", "0000")]}, {"ORG": [("NeXT",)]})
    assert g.spans(["ACME", "2024", "NeXT", "next"]) == [(0, 0, 2), (0, 2, 3)]


def test_the_gazetteer_survives_the_artifacts_arrays():
    g = Gazetteer(["first", "DRUG"], {"first": [("anna",)], "DRUG": [("co", "codamol")]}, {"DRUG": [("XR",)]})
    back = Gazetteer.from_arrays(g.categories, g.to_arrays())
    assert back.phrases == g.phrases and back.exact == g.exact


BAD_LINES = [
    ("{not json", "invalid JSON"),
    ("[1, 2]", "expected a JSON object"),
    ('{"pattern": "x"}', '"label" must be'),
    ('{"label": "ORG"}', '"pattern" must be'),
    ('{"label": "ORG", "pattern": ""}', "has 0 words"),
    ('{"label": "ORG", "pattern": "' + " ".join("abcdefghijklm") + '"}', "has 13 words"),
    ('{"label": "ORG", "pattern": "x", "force": "yes"}', '"force" must be true or false'),
    ('{"label": "ORG", "pattern": "x", "colour": 1}', "unknown keys"),
    ('{"label": "ORG", "pattern": [{"SHAPE": "Xx"}]}', '"pattern" must be'),
]


@pytest.mark.parametrize("line, message", BAD_LINES)
def test_a_bad_line_is_named(line, message):
    data = ('{"label": "ORG", "pattern": "Fine Corp"}\n\n// a comment\n' + line + "\n").encode()
    with pytest.raises(DictionaryError, match=message) as e:
        Dictionary.parse(data, "mine.jsonl")
    assert str(e.value).startswith("mine.jsonl:4:")


def test_token_patterns_and_case_as_spacy_writes_them():
    d = Dictionary.parse(b'{"label": "ORG", "pattern": [{"LOWER": "zentrix"}, {"LOWER": "dynamics"}]}\n'
                         b'{"label": "ORG", "pattern": [{"ORTH": "ZX"}]}\n'
                         b'{"label": "PER", "pattern": "Xi Jinping", "case": true, "id": "xi"}\n')
    assert [(e[1], e[2], e[3]) for e in d.entries] == [("ORG", ("zentrix", "dynamics"), False), ("ORG", ("ZX",), True),
                                                      ("PER", ("Xi", "Jinping"), True)]
    phrases, exact, forced = d.split(["ORG", "PER"], ["first", "last", "ORG"])
    assert phrases == [("ORG", ("zentrix", "dynamics"))] and not forced
    assert exact == [("ORG", ("ZX",)), ("first", ("Xi",)), ("last", ("Jinping",))]


def test_a_label_the_model_can_neither_weigh_nor_tag_is_refused(tiny_gazetteer_model_dir):
    model = Model.load(str(tiny_gazetteer_model_dir))
    d = Dictionary.parse(b'{"label": "ORG", "pattern": "Fine"}\n{"label": "DRUG", "pattern": "zorbex"}\n', "d")
    with pytest.raises(DictionaryError, match="d:2: .*'DRUG'"):
        model.use_dictionary(d)
    forced = Dictionary.parse(b'{"label": "DRUG", "pattern": "zorbex", "force": true}\n', "d")
    with pytest.raises(DictionaryError, match="d:1: \"force\" needs a type the model tags"):
        model.use_dictionary(forced)
    assert model.dictionary is None


def test_a_forced_entry_is_always_its_span(tiny_model_dir):
    model = Model.load(str(tiny_model_dir))
    text = "Yesterday qwzx plonk met the board in a small room ."
    model.use_dictionary(Dictionary.parse(b'{"label": "ORG", "pattern": "Qwzx Plonk", "force": true}\n'))
    [answer] = predict([text], model)
    assert {"text": "qwzx plonk", "label": "ORG", "start": 10, "end": 20, "score": 1.0} in answer["entities"]
    assert answer["tokens"][1]["probabilities"]["ORG"] == 1.0
    model.use_dictionary(None)
    assert "qwzx plonk" not in [e["text"] for e in predict([text], model)[0]["entities"]]


INVENTED = [  # names no list or vector knows
    ({"label": "ORG", "pattern": "Zentrix Dynamics"}, "We talked to people from Zentrix Dynamics about it ."),
    ({"label": "LOC", "pattern": "Quorvath"}, "Most of them came back from Quorvath last week ."),
    ({"label": "PER", "pattern": "Tavi Brennomar"}, "The award went to Tavi Brennomar in the end ."),
]
FORCED = ({"label": "ORG", "pattern": "Plonkwise", "force": True}, "They say plonkwise will sell .")


def _label_of(answer, name):
    return [e["label"] for e in answer["entities"] if e["text"].lower() == name.lower()]


def _type_probability(answer, entry):
    words = entry["pattern"].split()
    return [t["probabilities"][entry["label"]] for t in answer["tokens"] if t["text"] in words]


def test_a_served_dictionary_is_read_again_when_the_file_changes(tmp_path, tiny_gazetteer_model_dir):
    from server import Server

    model = Model.load(str(tiny_gazetteer_model_dir))
    assert model.gazetteer is not None and len(model.gazetteer) > 10_000
    path = tmp_path / "dictionary.jsonl"
    path.write_text("")
    texts = [text for _, text in INVENTED] + [FORCED[1], "EU rejects German call to boycott British lamb ."]
    server = Server(tmp_path, model_dir=tiny_gazetteer_model_dir, NERVE_DICTIONARY=path)
    try:
        status, _, answer = server.ner({"texts": texts})
        assert status == 200
        # An empty dictionary: the same answers as none.
        assert answer["results"] == predict(texts, model)
        before = [server.ner({"text": t})[2] for _, t in INVENTED]

        _write(path, [entry for entry, _ in INVENTED] + [FORCED[0]])
        forced = _until(lambda: server.ner({"text": FORCED[1]})[2], lambda a: _label_of(a, "plonkwise") == ["ORG"])
        assert [e["score"] for e in forced["entities"] if e["text"] == "plonkwise"] == [1.0]
        after = [server.ner({"text": t})[2] for _, t in INVENTED]
        for b, a, (entry, _) in zip(before, after, INVENTED):  # weighed in context: never less likely
            assert sum(_type_probability(a, entry)) >= sum(_type_probability(b, entry)), entry
        # Every worker reads the file within half a second: many requests, so that both have answered.
        infos = _until(lambda: [server.request("GET", "/v1/model")[2] for _ in range(12)],
                       lambda infos: all(i["dictionary"]["entries"] == len(INVENTED) + 1 for i in infos))
        assert all(i["dictionary"]["error"] is None and i["dictionary"]["version"] for i in infos)

        path.write_text(json.dumps(INVENTED[0][0]) + "\n{\"label\": \"ORG\", \"pattern\": 7}\n")
        info = _until(lambda: server.request("GET", "/v1/model")[2], lambda i: i["dictionary"]["error"])
        assert f"{path}:2:" in info["dictionary"]["error"] and info["dictionary"]["entries"] == len(INVENTED) + 1
        # The previous dictionary keeps serving, on every worker.
        assert all(_label_of(server.ner({"text": FORCED[1]})[2], "plonkwise") == ["ORG"] for _ in range(6))
        _, _, metrics = server.request("GET", "/metrics")
        assert 'nerve_dictionary_reloads_total{result="refused"}' in metrics
        # A worker started while the file is bad (one killed, and respawned) serves the last good one too.
        workers = subprocess.run(["pgrep", "-P", str(server.proc.pid)], capture_output=True, text=True).stdout.split()
        os.kill(int(workers[0]), signal.SIGKILL)
        assert _until(lambda: set(subprocess.run(["pgrep", "-P", str(server.proc.pid)], capture_output=True,
                                                 text=True).stdout.split()) - set(workers), bool)
        server.wait_listening()
        assert all(_label_of(server.ner({"text": FORCED[1]})[2], "plonkwise") == ["ORG"] for _ in range(12))
    finally:
        server.stop()


def test_a_dictionary_entry_is_weighed_in_context(tiny_gazetteer_model_dir):
    """Its words' tag scores move towards its type (before the temperature, which the tiny dev split
    sets so low that served probabilities round to 0 or 1)."""
    model = Model.load(str(tiny_gazetteer_model_dir))

    def type_share(entry, text):
        words = text.split()
        s = model.scores(model.batch([words])).astype(np.float64)
        p = np.exp(s - s.max(axis=1, keepdims=True))
        p /= p.sum(axis=1, keepdims=True)
        columns = [i for i, t in enumerate(model.labels) if t.endswith("-" + entry["label"])]
        rows = [i for i, w in enumerate(words) if w in entry["pattern"].split()]
        return p[np.ix_(rows, columns)].sum()

    before = [type_share(e, t) for e, t in INVENTED]
    model.use_dictionary(Dictionary.parse("".join(json.dumps(e) + "\n" for e, _ in INVENTED).encode()))
    assert model.featurizer.gazetteer.spans("from Zentrix Dynamics".split()) == [(3, 1, 3)]
    after = [type_share(e, t) for e, t in INVENTED]
    assert all(a > b for a, b in zip(after, before)), (before, after)


def _write(path, entries):
    tmp = path.with_suffix(".tmp")
    tmp.write_text("".join(json.dumps(e) + "\n" for e in entries))
    tmp.replace(path)


def _until(get, ok, seconds=10):
    deadline = time.monotonic() + seconds
    while True:
        value = get()
        if ok(value) or time.monotonic() > deadline:
            assert ok(value), value
            return value
        time.sleep(0.2)


def test_positions_are_the_same_whichever_way_they_are_built():
    rng = np.random.default_rng(0)
    g = Gazetteer(["A", "B"], {"A": [("x",), ("x", "y")], "B": [("y", "z", "x")]})
    sentences = [list(rng.choice(["x", "y", "z", "w"], size=int(rng.integers(1, 12)))) for _ in range(200)]
    joined = g.positions(sentences)
    alone = np.vstack([g.positions([s]) for s in sentences])
    assert (joined == alone).all() and joined.max() <= S and set(np.unique(joined)) <= {0, B, I, E, S}


def _greedy(g, words):
    """Per category, scanning left to right: the longest phrase of it at each place not yet covered."""
    found = []
    norms = [normalize(w) for w in words]
    for c, category in enumerate(g.categories):
        i = 0
        while i < len(words):
            lengths = [n for n in range(min(4, len(words) - i), 0, -1)
                       if tuple(norms[i:i + n]) in g.phrases[category] or tuple(words[i:i + n]) in g.exact[category]]
            if lengths:
                found.append((c, i, i + lengths[0]))
            i += lengths[0] if lengths else 1
    return sorted(found)


def test_matches_are_those_of_a_plain_greedy_scan():
    rng = np.random.default_rng(1)
    vocab = ["x", "y", "z", "w", "X", "Y", "Zed"]
    phrases = {c: {tuple(rng.choice(vocab[:4], size=int(rng.integers(1, 5)))) for _ in range(12)} for c in "ABC"}
    exact = {c: {tuple(rng.choice(vocab[4:], size=int(rng.integers(1, 3)))) for _ in range(3)} for c in "ABC"}
    g = Gazetteer(list("ABC"), phrases, exact)
    sentences = [list(rng.choice(vocab, size=int(rng.integers(1, 15)))) for _ in range(300)]
    for s in sentences:
        assert sorted(g.spans(s)) == _greedy(g, s), s
    offsets = np.cumsum([0] + [len(s) for s in sentences])
    joined = g.sentence_spans(sentences)
    assert sorted(tuple(x) for x in joined) == sorted(
        (c, a + o, b + o) for s, o in zip(sentences, offsets) for c, a, b in _greedy(g, s))


def test_a_fine_tuned_model_takes_a_dictionarys_new_type_as_a_category(tmp_path, tiny_gazetteer_model_dir):
    """Its new table's columns start at 0 (the same scores, whatever the new category matches), and
    the model trained from it reads the list for the new type."""
    from conftest import FIXTURES, TINY_GAZETTEER
    from training.embeddings import load_vectors
    from training.spans import read_data
    from training.train import TrainConfig, fine_tuned_gazetteer, start_from, train

    drugs = FIXTURES / "drugs"
    vectors = load_vectors(str(FIXTURES / "vectors.txt"))
    sentences = read_data(drugs / "train.jsonl")[0]
    cfg = TrainConfig(**{**TINY_GAZETTEER, "epochs": 4, "dictionary": str(drugs / "dictionary.jsonl")})
    before = Model.load(str(tiny_gazetteer_model_dir))
    own = read_data(FIXTURES / "tiny_train.conll")[0]  # its own data: no words added to the vocabulary
    params, config, featurizer, labels, _, _ = start_from(
        str(tiny_gazetteer_model_dir), own, vectors, np.random.default_rng(0), lambda *a: None,
        knowledge=fine_tuned_gazetteer(cfg, own, lambda *a: None))
    assert featurizer.gazetteer.categories == before.gazetteer.categories + ["DRUG"]
    assert "gaz_DRUG" in config.features and params["F_gaz_DRUG"].shape == (5, 4)
    grown = Model(params, config, featurizer, labels, before.manifest)
    words = [s.words for s in sentences[:20]]
    assert grown.batch(words)[0]["gaz_DRUG"].any()  # the list matches some of these words
    old_rows = [labels.index(t) for t in before.labels]
    np.testing.assert_allclose(grown.scores(grown.batch(words))[:, old_rows], before.scores(before.batch(words)),
                               rtol=1e-5, atol=1e-5)

    out = tmp_path / "drugs"
    train(cfg, drugs / "train.jsonl", drugs / "dev.jsonl", str(out), vectors=vectors, quiet=True,
          init_from=str(tiny_gazetteer_model_dir))
    model = Model.load(str(out))
    assert model.gazetteer.categories[-1] == "DRUG" and "DRUG" in model.types
    assert model.manifest["gazetteer"]["dictionary"]["entries"] == len(Dictionary.read(drugs / "dictionary.jsonl"))
    assert np.abs(model.params["W"]).sum() > 0 and model.config.features["gaz_DRUG"] == 4
    model.use_dictionary(Dictionary.parse(b'{"label": "DRUG", "pattern": "zorvaxin"}\n'))
    drug = len(model.gazetteer.categories) - 1
    assert model.featurizer.gazetteer.spans("took zorvaxin daily".split()) == [(drug, 1, 2)]


def test_the_combinations_store_answers_alike_however_it_finds_or_refills_them():
    """A request's combinations found through the array, through the dict alone, or worked out again
    after the store starts afresh, and a large batch's through np.unique: the same scores (the
    shipped model: casing and five gazetteer categories)."""
    from conftest import DEFAULT_MODEL

    model = Model.load(str(DEFAULT_MODEL))
    words = "Anna Berg flew from New York to Oslo with Zentrix Dynamics".split()
    model.use_dictionary(Dictionary.parse(b'{"label": "ORG", "pattern": "Zentrix Dynamics"}\n'))
    first = model.scores(model.batch([words]))
    projection = model.projection
    assert len(projection.small) == 6 and projection._row_of_key is not None
    assert (model.scores(model.batch([words])) == first).all()  # found through the array
    projection._forget_combinations(64)
    assert (model.scores(model.batch([words])) == first).all()  # worked out again
    projection._row_of_key = None
    assert (model.scores(model.batch([words])) == first).all()  # through the dict
    many = [words] * 40  # more tokens than a request's path takes
    # (its products go through BLAS in other shapes: equal to float32 rounding)
    np.testing.assert_allclose(model.scores(model.batch(many))[: len(words)], first, rtol=1e-5, atol=1e-5)


def test_a_dictionary_phrase_longer_than_the_lists_is_matched_whole():
    d = Dictionary.parse(b'{"label": "ORG", "pattern": "University of California , Los Angeles Medical Center"}\n')
    phrases, _, _ = d.split(["ORG"], ["ORG"])
    g = Gazetteer(["ORG"]).with_entries(phrases)
    words = "She studied at University of California , Los Angeles Medical Center in 1990".split()
    assert g.spans(words) == [(0, 3, 11)]
    assert g.positions([words])[3:11, 0].tolist() == [B] + [I] * 6 + [E]
