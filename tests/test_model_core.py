import subprocess
import sys

import numpy as np
import pytest

from model import gradcheck
from model.decode import spans, transitions, viterbi
from model.features import Featurizer, build_affix_vocab
from model.layers import ACTIVATIONS
from model.network import Config, init_params, loss
from model.vocab import Vocab, casing, normalize
from model.windows import window_positions


def test_model_package_imports_numpy_only():
    code = ("import sys, model.predict, model.artifact, model.gradcheck; "
            "bad = [m for m in ('flask', 'gensim', 'werkzeug', 'prometheus_client') if m in sys.modules]; "
            "print(bad); sys.exit(1 if bad else 0)")
    assert subprocess.run([sys.executable, "-c", code], capture_output=True).returncode == 0


@pytest.mark.parametrize("pooling", [False, True], ids=["alone", "pooling"])
@pytest.mark.parametrize("activation", sorted(ACTIVATIONS))
def test_gradients_match_centred_differences(activation, pooling):
    errors = gradcheck.check(*gradcheck.tiny_problem(activation, pooling=pooling))
    tables = {"E", "F_case", "F_suffix", "F_gaz_LOC", "F_gaz_first"}
    assert set(errors) == tables | {"C", "Wc", "bc", "W", "b", "U", "c"} | ({"Um", "Ud"} if pooling else set())
    assert max(errors.values()) < 1e-7, errors


def test_gradcheck_cli_reports_every_activation():
    out = subprocess.run([sys.executable, "-m", "model.gradcheck"], capture_output=True, text=True)
    assert out.returncode == 0, out.stdout + out.stderr
    lines = " ".join(out.stdout.split())
    assert all(f"{name} {kind}" in lines for name in ACTIVATIONS for kind in ("alone", "pooling"))


def test_gradcheck_catches_a_wrong_gradient(monkeypatch):
    from model import layers
    monkeypatch.setitem(layers.ACTIVATIONS, "tanh", (np.tanh, lambda a: 1.0 - a))  # wrong derivative
    assert max(gradcheck.check(*gradcheck.tiny_problem("tanh")).values()) > 1e-3


def test_gradcheck_catches_a_wrong_pooling_gradient(monkeypatch):
    from model import layers
    monkeypatch.setattr(layers, "group_mean_backward", lambda dout, cache: dout)  # as if each token were alone
    errors = gradcheck.check(*gradcheck.tiny_problem("relu"))
    assert errors["Ud"] > 1e-3 and errors["W"] > 1e-3 and errors["U"] < 1e-7


def test_windows_pad_at_sentence_edges_and_never_cross_them():
    pos = window_positions([2, 3], radius=2)
    ids = np.array([10, 11, 20, 21, 22, 1, 2])[pos]  # the last two: left and right pads
    assert ids.tolist() == [[1, 1, 10, 11, 2], [1, 10, 11, 2, 2],
                            [1, 1, 20, 21, 22], [1, 20, 21, 22, 2], [20, 21, 22, 2, 2]]


def test_word_normalisation_and_casing():
    assert normalize("Paris1996") == "paris0000"
    assert [casing(w) for w in ["paris", "PARIS", "Paris", "McDonald", "1996", ",", "東京"]] == \
        ["lower", "upper", "title", "mixed", "numeric", "punct", "other"]


def test_embedding_gradient_adds_every_use_of_a_row():
    config = Config(radius=1, word_dim=2, hidden=3, features={})
    params = init_params(config, {"word": 4}, 2, np.random.default_rng(0), dtype=np.float64)
    windows = {"word": np.array([[3, 3, 3], [1, 3, 0]])}
    _, grads = loss(params, config, windows, np.array([0, 1]))
    dense = grads["E"].dense()
    assert sorted(grads["E"].rows.tolist()) == [0, 1, 3]
    assert np.all(dense[2] == 0) and np.any(dense[3] != 0)


def test_viterbi_never_emits_i_after_o():
    labels = ["O", "B-PER", "I-PER", "B-LOC", "I-LOC"]
    # Greedy would say O I-PER I-PER; the constrained best path must start the entity with B-.
    p = np.array([[0.9, 0.02, 0.04, 0.02, 0.02], [0.1, 0.35, 0.45, 0.05, 0.05], [0.1, 0.1, 0.7, 0.05, 0.05]])
    tags = [labels[i] for i in viterbi([np.log(p)], labels)[0]]
    assert tags == ["O", "B-PER", "I-PER"]
    allowed, start, _ = transitions(labels)
    assert not start[2] and not allowed[0, 2] and not allowed[3, 2] and allowed[1, 2]


def test_viterbi_batches_sentences_of_different_lengths():
    labels = ["O", "B-X", "I-X"]
    rng = np.random.default_rng(1)
    sents = [np.log(rng.dirichlet(np.ones(3), n)) for n in (1, 4, 2)]
    batched = viterbi(sents, labels)
    assert [len(t) for t in batched] == [1, 4, 2]
    assert [t.tolist() for t in batched] == [viterbi([s], labels)[0].tolist() for s in sents]


def test_spans_read_bio_and_bioes_as_conlleval_does():
    assert spans(["B-PER", "I-PER", "O", "I-LOC", "B-LOC", "I-LOC"]) == [("PER", 0, 2), ("LOC", 3, 4), ("LOC", 4, 6)]
    assert spans(["S-PER", "B-ORG", "I-ORG", "E-ORG", "O"]) == [("PER", 0, 1), ("ORG", 1, 4)]


def test_a_tiny_network_overfits_its_fixture():
    from training.conll import read_conll
    from training.optim import Adam

    sents, _ = read_conll("tests/fixtures/tiny_train.conll")
    words = [w for s in sents for w in s.words]
    config = Config(word_dim=8, hidden=32, features={"case": 4, "suffix": 4})
    vocabs = {"word": Vocab(sorted({normalize(w) for w in words})), "suffix": build_affix_vocab(words, "suffix", 3)}
    feat = Featurizer(config, vocabs)
    labels = sorted({t for s in sents for t in s.tags})
    windows = feat.windows([s.words for s in sents])
    y = np.array([labels.index(t) for s in sents for t in s.tags])
    params = init_params(config, {n: feat.table_size(n) for n in feat.names}, len(labels), np.random.default_rng(0))
    opt = Adam(params, lr=0.01)
    first = None
    for _ in range(150):
        J, grads = loss(params, config, windows, y)
        first = J if first is None else first
        opt.step(params, grads)
    assert first > 1.0 and J < 0.05


def test_decode_takes_the_argmax_where_valid_and_viterbi_elsewhere():
    from model.decode import decode

    labels = ["O", "B-PER", "I-PER", "E-PER", "S-PER", "B-LOC", "I-LOC", "E-LOC", "S-LOC"]
    rng = np.random.default_rng(5)
    lengths = rng.integers(1, 9, 300)
    # Peaked distributions: many argmax paths are valid, many are not.
    flat = rng.dirichlet(np.full(len(labels), 0.3), int(lengths.sum()))
    pieces = np.split(np.log(flat), np.cumsum(lengths)[:-1])
    expected = np.concatenate(viterbi(pieces, labels))
    got = decode(flat, lengths, labels)
    greedy_valid = (got == flat.argmax(axis=1))
    assert np.array_equal(got, expected)
    assert 0.2 < greedy_valid.mean() < 1.0


@pytest.mark.parametrize("stored_rows", [0, 7, 10_000])
def test_window_projection_is_the_hidden_layer_input(stored_rows):
    from model.features import affix
    from model.projection import WindowProjection

    config = Config(hidden=16, features={"case": 3, "suffix": 4})
    rng = np.random.default_rng(2)
    words = [f"w{i}" for i in range(40)] + ["Ab", "CD", "e-f", "9"]
    vocabs = {"word": Vocab(words), "suffix": build_affix_vocab(words, "suffix", 3)}
    featurizer = Featurizer(config, vocabs)
    params = init_params(config, {n: featurizer.table_size(n) for n in ("word", "case", "suffix")}, 5, rng)
    params = {k: v.astype(np.float32) for k, v in params.items()}
    # Some words outside the vocabulary, and more tokens than one chunk holds.
    sentences = [list(rng.choice(words + ["unseen", "Zz"], int(n))) for n in rng.integers(1, 30, 60)]
    assert sum(map(len, sentences)) > 512 and affix("unseen", "suffix", 3)
    ids, positions = featurizer.token_batch(sentences)
    windows = featurizer.windows(sentences)
    x = np.concatenate([params["E" if n == "word" else f"F_{n}"][windows[n]].astype(np.float64)
                        for n in ("word", "case", "suffix")], axis=2).reshape(len(positions), -1)
    expected = x @ params["W"].T.astype(np.float64) + params["b"]
    got = WindowProjection(params, config, stored_rows)(ids, positions)
    assert got.dtype == np.float32 and got.shape == expected.shape
    np.testing.assert_allclose(got, expected, rtol=1e-4, atol=1e-5)
    small = WindowProjection(params, config, stored_rows)(*featurizer.token_batch(sentences[:1]))
    np.testing.assert_allclose(small, expected[: len(sentences[0])], rtol=1e-4, atol=1e-5)


def test_character_vectors_and_small_tables_folded_into_stored_rows_give_the_networks_scores():
    from model.features import build_char_vocab
    from model.gazetteer import Gazetteer
    from model.network import loss
    from model.predict import Model

    config = Config(hidden=16, features={"case": 3, "gaz_LOC": 2, "gaz_PER": 3}, activation="relu", char_dim=4,
                    char_filters=6, char_length=8)
    rng = np.random.default_rng(4)
    words = [f"w{c}{d}" for c in "abcde" for d in "fghijk"] + ["Anna", "Oslo", "e-f", "9"]
    vocabs = {"word": Vocab([normalize(w) for w in words]),
              "chars": build_char_vocab(words + ["unseen", "Zoë"], min_count=1)}
    gazetteer = Gazetteer(["LOC", "PER"], {"LOC": [("oslo",), ("waf", "wbg"), ("wcf", "wcg", "wch")],
                                           "PER": [("anna",), ("anna", "wdf"), ("unseen",)]})
    featurizer = Featurizer(config, vocabs, gazetteer)
    sizes = {n: featurizer.table_size(n) for n in ["word", *config.features, "chars"]}
    params = {k: v.astype(np.float32) for k, v in init_params(config, sizes, 5, rng).items()}
    params["C"] *= 10  # characters that matter
    model = Model(params, config, featurizer, ["O", "B-PER", "I-PER", "B-LOC", "I-LOC"], {})
    model.projection.__init__(model.params, config, stored_rows=7, word_chars=model.word_chars)

    known = [list(rng.choice(words, int(n))) for n in rng.integers(1, 12, 40)]
    known += [["waf", "wbg", "Anna", "wdf", "wcf", "wcg", "wch", "Oslo"]] * 3
    windows = featurizer.windows(known)
    assert (windows["gaz_LOC"] > 0).any() and (windows["gaz_PER"] > 0).any()
    windows["chars"], windows["char_rows"] = featurizer.char_windows(windows["word"])
    expected = loss({k: v.astype(np.float64) for k, v in params.items()}, config, windows)
    np.testing.assert_allclose(model.scores(model.batch(known)), expected, rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(model.scores(model.batch(known * 10))[:len(expected)], expected, rtol=1e-4, atol=1e-4)

    # Unknown words: <unk>'s vector and their own characters.
    mixed = [s + ["unseen", "Zoë"] for s in known] * 20  # more tokens than one chunk
    batch = model.batch(mixed)
    assert batch[2] is not None and len(batch[2][0]) == 2 * len(mixed)
    x = model.inputs(batch).astype(np.float64)
    want = x @ params["W"].T.astype(np.float64) + params["b"]
    np.testing.assert_allclose(model.projection(*batch), want, rtol=1e-4, atol=1e-4)
    assert np.abs(batch[2][1]).max() > 0.1  # the unknown words' characters do count


def test_serving_spells_and_convolves_words_as_training_does():
    from model.features import build_char_vocab
    from model.layers import char_conv_forward, char_conv_max

    config = Config(features={"case": 3}, char_dim=4, char_filters=6, char_length=8)
    words = ["", "a", "Zoë", "abcdef", "abcdefg", "abcdefghijkl", "İstanbul", "😀x", "#tag", "@", "1996-08", "ab"]
    featurizer = Featurizer(config, {"word": Vocab(["x"]), "chars": build_char_vocab(words[:6], min_count=1)})
    vocab = featurizer.vocabs["chars"]
    for word, row in zip(words, featurizer.spell(words)):
        ids = [vocab.id("<w>"), *(vocab.index.get(ch, vocab.unk_id) for ch in normalize(word)), vocab.id("</w>")]
        ids = ids[: config.char_length]
        assert row.tolist() == ids + [0] * (config.char_length - len(ids)), word
    rng = np.random.default_rng(0)
    C, Wc, bc = rng.normal(size=(len(vocab), 4)), rng.normal(size=(6, 12)), rng.normal(size=6)
    spelled = featurizer.spell(words)
    np.testing.assert_allclose(char_conv_max(spelled, C, Wc, bc), char_conv_forward(spelled, C, Wc, bc)[0],
                               rtol=1e-12, atol=1e-12)


def test_viterbi_finds_the_best_valid_path_of_every_sentence_in_a_batch():
    import itertools

    labels = ["O", "B-PER", "I-PER", "E-PER", "S-PER", "B-LOC", "I-LOC", "E-LOC", "S-LOC"]
    allowed, start, end = transitions(labels)
    rng = np.random.default_rng(5)
    sentences = [np.log(rng.dirichlet(np.ones(len(labels)) * 0.3, size=n)) for n in (4, 1, 3, 4, 2, 3)]

    def best(lp):
        paths = (p for p in itertools.product(range(len(labels)), repeat=len(lp))
                 if start[p[0]] and end[p[-1]] and all(allowed[a, b] for a, b in zip(p, p[1:])))
        return list(max(paths, key=lambda p: lp[np.arange(len(lp)), p].sum()))

    assert [t.tolist() for t in viterbi(sentences, labels)] == [best(lp) for lp in sentences]


def test_a_vocabulary_is_spelled_as_its_words_would_be():
    from model.features import build_char_vocab

    config = Config(features={"case": 3}, char_dim=4, char_filters=6, char_length=8)
    words = ["oslo", "#x", "@", "0000", "zoë", "new-york"]  # normalised forms, as a vocabulary holds them
    featurizer = Featurizer(config, {"word": Vocab(words), "chars": build_char_vocab(words, min_count=1)})
    assert np.array_equal(featurizer.spellings[3:], featurizer.spell(words))


def test_a_sentence_gets_the_same_hidden_layer_alone_or_in_a_large_batch():
    from model.features import build_char_vocab
    from model.predict import Model
    from model.projection import _SMALL

    config = Config(hidden=16, features={"case": 3, "suffix": 4}, activation="relu", char_dim=4, char_filters=6,
                    char_length=8)
    rng = np.random.default_rng(7)
    words = [f"w{c}{d}{e}" for c in "abcde" for d in "fghijk" for e in "lmn"] + ["Anna", "Oslo", "e-f", "9"]
    vocabs = {"word": Vocab([normalize(w) for w in words]), "suffix": build_affix_vocab(words, "suffix", 3),
              "chars": build_char_vocab(words + ["unseen", "Zoë"], min_count=1)}
    featurizer = Featurizer(config, vocabs)
    sizes = {n: featurizer.table_size(n) for n in ("word", "case", "suffix", "chars")}
    params = {k: v.astype(np.float32) for k, v in init_params(config, sizes, 5, rng).items()}
    model = Model(params, config, featurizer, ["O", "B-PER", "I-PER", "B-LOC", "I-LOC"], {})
    sentences = [list(rng.choice(words + ["unseen", "Zoë"], int(n))) for n in rng.integers(1, 14, 80)]
    assert sum(map(len, sentences)) > _SMALL  # together they go the large-batch way, alone the small one
    together = model.projection(*model.batch(sentences))
    alone = np.vstack([model.projection(*model.batch([s])) for s in sentences])
    assert np.array_equal(together, alone)
    # Rows not stored are multiplied per request (float32 BLAS, whose rounding may follow the batch's size).
    model.projection.__init__(model.params, config, stored_rows=20, word_chars=model.word_chars)
    together = model.projection(*model.batch(sentences))
    alone = np.vstack([model.projection(*model.batch([s])) for s in sentences])
    np.testing.assert_allclose(together, alone, rtol=0, atol=1e-6)


def test_group_means_are_each_groups_mean_whatever_else_the_batch_holds():
    from model.layers import group_mean_backward, group_mean_forward
    rng = np.random.default_rng(5)
    a = rng.normal(size=(9, 4)).astype(np.float32)
    groups = np.array([3, 1, 3, 7, 1, 3, 0, 7, 2])
    m, cache = group_mean_forward(a, groups)
    for n in range(9):
        np.testing.assert_allclose(m[n], a[groups == groups[n]].mean(axis=0), rtol=1e-6)
    # The operator is a symmetric averaging matrix, so backward is that matrix applied to dout.
    G = (groups[:, None] == groups[None, :]) / np.bincount(groups)[groups][:, None]
    dout = rng.normal(size=(9, 4))
    np.testing.assert_allclose(group_mean_backward(dout, cache), G.T @ dout, rtol=1e-12)
    # Group 3's rows among others, or alone: the same float32 numbers.
    alone = group_mean_forward(a[groups == 3], np.zeros(3, dtype=int))[0]
    assert np.array_equal(alone, m[groups == 3])
    # Many rows (sorted sums) and a few (a product): the same numbers.
    many_groups = np.concatenate([groups, 100 + rng.integers(0, 50, 400)])
    many = np.vstack([a, rng.normal(size=(400, 4)).astype(np.float32)])
    assert np.array_equal(group_mean_forward(many, many_groups)[0][:9], m)
    np.testing.assert_allclose(group_mean_backward(np.vstack([dout, np.zeros((400, 4))]),
                                                   group_mean_forward(many, many_groups)[1])[:9], G.T @ dout)


def test_storing_more_or_fewer_words_terms_gives_the_same_answers(tiny_model_dir):
    from model.predict import Model, predict
    from tests.conftest import fixture_sentences
    texts = [" ".join(fixture_sentences()[i: i + 30]) for i in range(0, 120, 30)]  # passes of the large way
    few, many = Model.load(tiny_model_dir, stored_rows=3), Model.load(tiny_model_dir, stored_rows=10 ** 6)
    assert few.projection.tables[0][4] == 3 and many.projection.tables[0][4] == len(many.featurizer.vocabs["word"])
    for a, b in zip(predict(texts, few), predict(texts, many)):
        assert [e["label"] for e in a["entities"]] == [e["label"] for e in b["entities"]]
        for ta, tb in zip(a["tokens"], b["tokens"]):
            assert ta["tag"] == tb["tag"]
            assert max(abs(ta["probabilities"][k] - tb["probabilities"][k]) for k in ta["probabilities"]) <= 2e-6
