"""The CRF layer against a brute-force enumeration of every tag path of tiny sentences."""
import itertools

import numpy as np
import pytest

from model import crf
from model.decode import transitions

LABELS = ["O", "B-X", "I-X", "E-X", "S-X"]


def path_scores(s, A, start, end):
    """Every path of one sentence and its score: (paths (K^T, T), scores (K^T,))."""
    t, k = s.shape
    paths = np.array(list(itertools.product(range(k), repeat=t)))
    scores = s[np.arange(t), paths].sum(axis=1) + start[paths[:, 0]] + end[paths[:, -1]]
    scores += A[paths[:, :-1], paths[:, 1:]].sum(axis=1)
    return paths, scores


def brute_force(s, A, start, end):
    """(log Z, marginals (T, K), pair marginals summed over steps (K, K), best path) by enumeration."""
    paths, scores = path_scores(s, A, start, end)
    log_z = np.logaddexp.reduce(scores)
    p = np.exp(scores - log_z)
    t, k = s.shape
    marg = np.zeros((t, k))
    pairs = np.zeros((k, k))
    for path, q in zip(paths, p):
        marg[np.arange(t), path] += q
        np.add.at(pairs, (path[:-1], path[1:]), q)
    return log_z, marg, pairs, paths[scores.argmax()]


@pytest.fixture
def problem():
    """Three sentences (4, 1 and 3 tokens) laid end to end, with learned-looking scores, in float64."""
    rng = np.random.default_rng(3)
    lengths = [4, 1, 3]
    s = rng.normal(0, 2, (sum(lengths), len(LABELS)))
    A, start, end = rng.normal(0, 1, (5, 5)), rng.normal(0, 1, 5), rng.normal(0, 1, 5)
    return s, lengths, crf.constrained(A, start, end, transitions(LABELS))


def sentences(s, lengths):
    return np.split(s, np.cumsum(lengths)[:-1])


def test_log_partition_and_marginals_match_every_path_summed(problem):
    s, lengths, (A, start, end) = problem
    layout = crf.Layout(lengths)
    _, _, log_z = crf.forward_backward(layout.pad(s), layout, A, start, end)
    log_z = log_z[np.argsort(layout.order)]  # back to sentence order
    got = np.split(crf.marginals(s, lengths, A, start, end), np.cumsum(lengths)[:-1])
    for i, sent in enumerate(sentences(s, lengths)):
        want_z, want_marg, _, _ = brute_force(sent, A, start, end)
        assert abs(log_z[i] - want_z) < 1e-9
        np.testing.assert_allclose(got[i], want_marg, atol=1e-9, rtol=0)


def test_blocked_moves_have_no_probability(problem):
    s, lengths, (A, start, end) = problem
    marg = crf.marginals(s, lengths, A, start, end)
    first = np.cumsum(lengths) - lengths
    assert np.all(marg[first][:, [2, 3]] == 0.0)  # no sentence starts inside an entity (I-X, E-X)
    np.testing.assert_allclose(marg.sum(axis=1), 1.0, atol=1e-12)


def test_gradient_is_marginals_minus_gold_and_expected_minus_gold_counts(problem):
    s, lengths, (A, start, end) = problem
    y = np.array([1, 2, 3, 0, 4, 0, 1, 3])  # B I E O | S | O B E: valid paths
    J, cache = crf.crf_forward(s, lengths, y, A, start, end, transitions(LABELS))
    ds, dA, dstart, dend = crf.crf_backward(1.0, cache)
    n = len(y)
    want_j, want_ds = 0.0, np.zeros_like(s)
    want_dA, want_dstart, want_dend = np.zeros((5, 5)), np.zeros(5), np.zeros(5)
    offset = 0
    for sent, length in zip(sentences(s, lengths), lengths):
        gold = y[offset: offset + length]
        log_z, marg, pairs, _ = brute_force(sent, A, start, end)
        gold_score = sent[np.arange(length), gold].sum() + start[gold[0]] + end[gold[-1]] + A[gold[:-1], gold[1:]].sum()
        want_j += (log_z - gold_score) / n
        want_ds[offset: offset + length] = marg
        want_ds[np.arange(offset, offset + length), gold] -= 1.0
        want_dA += pairs
        np.add.at(want_dA, (gold[:-1], gold[1:]), -1.0)
        want_dstart += marg[0]
        want_dstart[gold[0]] -= 1.0
        want_dend += marg[-1]
        want_dend[gold[-1]] -= 1.0
        offset += length
    assert abs(J - want_j) < 1e-9
    np.testing.assert_allclose(ds, want_ds / n, atol=1e-9, rtol=0)
    np.testing.assert_allclose(dA, want_dA / n, atol=1e-9, rtol=0)
    np.testing.assert_allclose(dstart, want_dstart / n, atol=1e-9, rtol=0)
    np.testing.assert_allclose(dend, want_dend / n, atol=1e-9, rtol=0)


def test_best_path_is_the_highest_scoring_of_all_paths(problem):
    s, lengths, (A, start, end) = problem
    got = np.split(crf.best_paths(s, lengths, A, start, end), np.cumsum(lengths)[:-1])
    for i, sent in enumerate(sentences(s, lengths)):
        assert got[i].tolist() == brute_force(sent, A, start, end)[3].tolist()


def test_long_sentences_with_extreme_scores_stay_finite():
    rng = np.random.default_rng(0)
    lengths = [300, 2, 57]
    s = rng.normal(0, 40, (sum(lengths), len(LABELS)))
    A, start, end = crf.constrained(rng.normal(0, 5, (5, 5)), np.zeros(5), np.zeros(5), transitions(LABELS))
    marg = crf.marginals(s, lengths, A, start, end)
    assert np.isfinite(marg).all()
    np.testing.assert_allclose(marg.sum(axis=1), 1.0, atol=1e-9)


def test_a_crf_model_serves_brute_force_marginals_and_the_best_path(tiny_crf_model):
    from model.predict import predict

    model = tiny_crf_model
    words = ["Anna", "Berg", "visited", "Oslo"]
    batch = model.batch([words])
    s = model.scores(batch, model.groups([words], batch)).astype(np.float64)  # the sentence read as its document
    A, start, end = model.crf_scores
    _, marg, _, best = brute_force(s, A, start, end)
    t = model.temperature
    want = brute_force(s / t, A / t, start / t, end / t)[1]
    tags, probs = model.tag_sentences([words])
    assert tags[0].tolist() == best.tolist()
    np.testing.assert_allclose(probs[0], want, atol=1e-6)  # float32
    rows = predict([" ".join(words)], model)[0]["tokens"]
    for row, p in zip(rows, want):
        for typ in model.types:
            own = sum(p[k] for k, lab in enumerate(model.labels) if lab.endswith("-" + typ))
            assert abs(row["probabilities"][typ] - own) < 1e-5


def test_a_crf_model_round_trips_and_its_transitions_are_checked(tiny_crf_model_dir, tmp_path):
    import json
    import shutil

    from model.artifact import ArtifactError
    from model.predict import Model, predict

    model = Model.load(str(tiny_crf_model_dir))
    assert model.config.crf and model.params["A"].shape == (len(model.labels),) * 2
    text = ["Anna Berg visited Oslo on Monday; mail anna@example.com"]
    assert all(e["text"] != "anna@example.com" for e in predict(text, model)[0]["entities"])
    broken = tmp_path / "m"
    shutil.copytree(tiny_crf_model_dir, broken)
    manifest = json.loads((broken / "model.json").read_text())
    manifest["config"]["crf"] = False  # the weights hold transitions
    (broken / "model.json").write_text(json.dumps(manifest))
    with pytest.raises(ArtifactError, match=r"unexpected \['A', 'A_end', 'A_start'\]"):
        Model.load(str(broken))


def test_a_trained_model_gets_a_crf_layer_on_top(tiny_model_dir, tiny_model, tmp_path):
    from conftest import FIXTURES, TINY_CONFIG
    from model.predict import Model, predict
    from training.embeddings import load_vectors
    from training.train import TrainConfig, train

    assert not tiny_model.config.crf
    train(TrainConfig(**{**TINY_CONFIG, "crf": True, "epochs": 3}), FIXTURES / "tiny_train.conll",
          FIXTURES / "tiny_dev.bio", str(tmp_path / "m"), vectors=load_vectors(str(FIXTURES / "vectors.txt")),
          quiet=True, init_from=str(tiny_model_dir))
    model = Model.load(str(tmp_path / "m"))
    assert model.config.crf and model.labels == tiny_model.labels
    old_words = tiny_model.featurizer.vocabs["word"].words
    assert model.featurizer.vocabs["word"].words[: len(old_words)] == old_words
    assert np.abs(model.params["A"]).max() > 0  # the transitions were trained from 0
    text = ["Anna Berg visited Oslo on Monday."]
    assert [e["label"] for e in predict(text, model)[0]["entities"]] == [
        e["label"] for e in predict(text, tiny_model)[0]["entities"]]


def test_the_weight_average_follows_the_weights_at_its_decay():
    from training.train import WeightAverage

    params = {"W": np.zeros((2, 2))}
    average = WeightAverage(params, decay=0.9, every=2)
    params["W"] += 1.0
    for _ in range(6):  # three updates of the average
        average.update(params)
    np.testing.assert_allclose(average.params["W"], 1.0 - 0.9 ** 3)
    assert params["W"][0, 0] == 1.0  # the weights themselves are left alone


def test_a_crf_model_fine_tuned_on_a_new_type_keeps_its_old_transitions(tiny_crf_model_dir, tiny_crf_model, tmp_path):
    from conftest import FIXTURES, TINY_CONFIG
    from model.predict import Model
    from training.embeddings import load_vectors
    from training.train import TrainConfig, train

    drugs = FIXTURES / "drugs"
    train(TrainConfig(**{**TINY_CONFIG, "epochs": 2, "lr": 0.0}), drugs / "train.jsonl", drugs / "dev.jsonl",
          str(tmp_path / "m"), vectors=load_vectors(str(FIXTURES / "vectors.txt")), quiet=True,
          init_from=str(tiny_crf_model_dir))
    model = Model.load(str(tmp_path / "m"))
    k = len(tiny_crf_model.labels)
    assert model.config.crf and "S-DRUG" in model.labels and model.params["A"].shape == (len(model.labels),) * 2
    assert np.array_equal(model.params["A"][:k, :k], tiny_crf_model.params["A"])  # lr 0: nothing else moved
    assert not model.params["A"][k:].any() and not model.params["A"][:, k:].any()
