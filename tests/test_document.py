"""The document cue: mentions of a word in one document pull towards their common type."""
import numpy as np
import pytest
from test_predict import assert_same_answers

from model import document
from model.predict import Model, predict

LABELS = ["O", "B-LOC", "S-LOC", "B-PER", "S-PER"]
TYPE_MATRIX = np.array([[0, 0, 1], [1, 0, 0], [1, 0, 0], [0, 1, 0], [0, 1, 0]], dtype=np.float32)  # LOC, PER, O
TAG_COLUMN = np.array([2, 0, 0, 1, 1])


def test_blocks_start_at_each_document_and_where_a_block_would_grow_too_long():
    assert document.blocks([3, 4, 2, 5, 1], [0, 0, 0, 1, 1], size=8).tolist() == [0, 0, 1, 2, 2]
    assert document.blocks([9, 2], [0, 0], size=8).tolist() == [0, 1]  # a long sentence is a block of its own


def test_mentions_of_a_word_move_towards_their_mean_type_and_others_stay():
    probs = np.array([[0.1, 0.2, 0.6, 0.05, 0.05],   # "Jordan": mostly LOC here
                      [0.8, 0.1, 0.1, 0.0, 0.0],     # "said": alone, left as it is
                      [0.2, 0.0, 0.0, 0.4, 0.4]])    # "jordan": PER here, no LOC at all
    groups = document.mention_groups(["Jordan", "said", "jordan"], np.zeros(3, dtype=np.intp), [7, 4, 7], unk_id=0)
    assert groups[0] == groups[2] != groups[1]
    out = document.document_cue(probs, groups, 0.5, TYPE_MATRIX, TAG_COLUMN)
    assert np.array_equal(out[1], probs[1])
    np.testing.assert_allclose(out.sum(axis=1), 1.0)
    tau, new = probs @ TYPE_MATRIX, out @ TYPE_MATRIX
    np.testing.assert_allclose(new[0], 0.5 * tau[0] + 0.25 * (tau[0] + tau[2]))
    np.testing.assert_allclose(new[0], new[2] + 0.5 * (tau[0] - tau[2]))
    # within a type the tags keep their shares: B-LOC : S-LOC stays 1 : 3 for the first mention
    assert out[0, 1] / out[0, 2] == pytest.approx(1 / 3)
    # the second mention had no LOC at all: it takes the word's mean shares within LOC
    assert out[2, 1] / out[2, 2] == pytest.approx(1 / 3)


def test_a_type_with_a_subnormal_probability_takes_the_words_mean_and_nothing_overflows():
    tiny = np.finfo(np.float32).tiny
    probs = np.array([[1.0, tiny / 8, 0.0, 0.0, 0.0],    # LOC below the smallest normal float
                      [0.2, 0.3, 0.5, 0.0, 0.0]], dtype=np.float32)
    groups = document.mention_groups(["Oslo", "Oslo"], np.zeros(2, dtype=np.intp), [7, 7], unk_id=0)
    with np.errstate(all="raise"):
        out = document.document_cue(probs, groups, 0.25, TYPE_MATRIX, TAG_COLUMN)
    assert np.isfinite(out).all()
    np.testing.assert_allclose(out.sum(axis=1), 1.0, rtol=1e-6)
    assert out[0, 1] / out[0, 2] == pytest.approx(out[1, 1] / out[1, 2])  # the word's shares within LOC


def test_mentions_in_other_blocks_do_not_meet():
    probs = np.array([[0.0, 0.0, 1.0, 0.0, 0.0], [0.0, 0.0, 0.0, 0.0, 1.0]])
    groups = document.mention_groups(["Jordan", "Jordan"], np.array([0, 1]), [7, 7], unk_id=0)
    assert np.array_equal(document.document_cue(probs, groups, 0.5, TYPE_MATRIX, TAG_COLUMN), probs)


def test_words_outside_the_vocabulary_are_told_apart_by_their_normalised_form():
    words = ["Zorblat", "#zorblat", "Quenty", "ZORBLAT", "Oslo"]
    groups = document.mention_groups(words, np.zeros(5, dtype=np.intp), [0, 0, 0, 0, 9], unk_id=0)
    assert groups[0] == groups[1] == groups[3] and len({groups[0], groups[2], groups[4]}) == 3


def with_cue(model, weight):
    manifest = {**model.manifest, "document": {"weight": weight}}
    return Model(model.params, model.config, model.featurizer, model.labels, manifest)


@pytest.fixture
def cued_model(tiny_model):
    return with_cue(tiny_model, 0.5)


def test_trained_models_record_the_cue_they_are_served_with(tiny_model, tmp_path):
    from conftest import FIXTURES, TINY_CONFIG
    from training.embeddings import load_vectors
    from training.train import TrainConfig, train

    assert tiny_model.manifest["document"] == {"weight": 0.25} and tiny_model.doc_weight == 0.25
    manifest = train(TrainConfig(**{**TINY_CONFIG, "epochs": 2, "doc_weight": 0.0}), FIXTURES / "tiny_train.conll",
                     FIXTURES / "tiny_dev.bio", str(tmp_path), vectors=load_vectors(str(FIXTURES / "vectors.txt")),
                     quiet=True)
    assert "document" not in manifest and Model.load(str(tmp_path)).doc_weight == 0.0


def test_a_text_reads_the_same_alone_in_a_batch_and_in_many_passes(cued_model, monkeypatch):
    from model import predict as predict_module

    text = "Anna Berg visited Oslo .\nBerg met Lind in Oslo on Monday .\nberg said Oslo was cold ."
    others = ["Lind joined Helix .", "Oslo and Berg ."]
    alone = predict([text], cued_model)
    # the same entities and tags; probabilities to float32 rounding (the products' blocking differs by batch)
    assert_same_answers(predict([others[0], text, others[1]], cued_model)[1:2], alone, 2e-6)
    monkeypatch.setattr(predict_module, "PASS_TOKENS", 5)
    assert_same_answers(predict([others[0], text, others[1]], cued_model)[1:2], alone, 2e-6)


def test_the_cue_changes_what_a_repeated_word_reads_as(tiny_model, cued_model):
    text = "Anna Berg visited Oslo .\nBerg met Lind in Oslo on Monday .\nberg said Oslo was cold ."
    plain = predict([text], with_cue(tiny_model, 0.0))[0]["tokens"]
    cued = predict([text], cued_model)[0]["tokens"]
    bergs = [i for i, t in enumerate(plain) if t["text"].lower() == "berg"]
    mean = np.mean([plain[i]["probabilities"]["PER"] for i in bergs])
    for i in bergs:  # each mention half-way to the mean
        assert cued[i]["probabilities"]["PER"] == pytest.approx(0.5 * plain[i]["probabilities"]["PER"] + 0.5 * mean,
                                                                abs=2e-6)


def test_a_bad_cue_weight_is_refused_at_load(tiny_model_dir, tmp_path):
    import json
    import shutil

    from model.artifact import ArtifactError

    shutil.copytree(tiny_model_dir, tmp_path / "m")
    manifest = json.loads((tmp_path / "m" / "model.json").read_text())
    manifest["document"] = {"weight": 1.5}
    (tmp_path / "m" / "model.json").write_text(json.dumps(manifest))
    with pytest.raises(ArtifactError, match="document cue weight 1.5"):
        Model.load(str(tmp_path / "m"))


def test_a_blocks_numbers_are_the_same_in_a_small_pass_and_a_large_one():
    rng = np.random.default_rng(0)
    groups = np.concatenate([rng.integers(0, 30, 200), 1000 + np.repeat(np.arange(300), 2)])  # others: pairs
    probs = rng.dirichlet(np.ones(5), size=len(groups)).astype(np.float32)
    large = document.document_cue(probs, groups, 0.25, TYPE_MATRIX, TAG_COLUMN)    # 800 mentions: sorted sums
    small = document.document_cue(probs[:200], groups[:200], 0.25, TYPE_MATRIX, TAG_COLUMN)  # a product
    assert np.array_equal(small, large[:200])


def test_a_long_text_is_read_in_blocks_each_as_if_alone(cued_model, monkeypatch):
    monkeypatch.setattr(document, "BLOCK_TOKENS", 12)
    lines = ["Anna Berg visited Oslo .", "Berg met Lind in Oslo on Monday .", "berg said Oslo was cold .",
             "Lind joined Helix .", "Helix hired Berg ."]
    whole = predict(["\n".join(lines)], cued_model)[0]["tokens"]
    ids = document.blocks([len(line.split()) for line in lines], [0] * len(lines)).tolist()
    assert len(set(ids)) > 2
    apart = []
    for block in sorted(set(ids)):
        apart += predict(["\n".join(line for line, b in zip(lines, ids) if b == block)], cued_model)[0]["tokens"]
    assert [(t["text"], t["tag"]) for t in whole] == [(t["text"], t["tag"]) for t in apart]
    for t, u in zip(whole, apart):
        assert max(abs(t["probabilities"][k] - u["probabilities"][k]) for k in t["probabilities"]) <= 2e-6


def test_many_tokens_are_grouped_as_a_few_are():
    rng = np.random.default_rng(1)
    vocab = {"oslo": 5, "berg": 6, "the": 7}
    words = list(rng.choice(["Oslo", "oslo", "Berg", "the", "Zorblat", "zorblat", "#Zorblat", "Quenty", "1996", "1997"],
                            600))
    ids = [vocab.get(w.lower(), 0) for w in words]
    blocks = np.repeat([0, 1, 2], 200)
    many = document.mention_groups(words, blocks, ids, unk_id=0)                    # 600 tokens: sorted
    few = np.concatenate([document.mention_groups(words[i: i + 200], blocks[i: i + 200], ids[i: i + 200], unk_id=0)
                          for i in range(0, 600, 200)])                              # 200 at a time: a dict
    same_many = many[:, None] == many[None, :]
    same_few = (few[:, None] == few[None, :]) & (blocks[:, None] == blocks[None, :])
    assert np.array_equal(same_many, same_few)


def test_a_word_reads_its_other_mentions_in_its_text_and_nothing_of_other_texts(tiny_pooling_model):
    words = [["Berg", "visited", "Oslo", "."], ["berg", "met", "Lind", "in", "Oslo", "on", "Monday", "."]]
    batch = tiny_pooling_model.batch(words)
    together = tiny_pooling_model.scores(batch, tiny_pooling_model.groups(words, batch, np.array([0, 0])))  # one text
    apart = tiny_pooling_model.scores(batch, tiny_pooling_model.groups(words, batch, np.array([0, 1])))     # two texts
    # Pooling: Berg's and Oslo's scores move once the words have other mentions in their text ...
    assert np.abs(together[[0, 2]] - apart[[0, 2]]).max() > 1e-2
    # ... and a text takes nothing from another, in one batch or in one request.
    first = tiny_pooling_model.batch(words[:1])
    model = tiny_pooling_model
    np.testing.assert_allclose(apart[:4], model.scores(first, model.groups(words[:1], first)), atol=1e-5)
    alone = predict(["Berg visited Oslo ."], tiny_pooling_model)
    assert_same_answers(predict(["Berg visited Oslo .", "berg met Lind in Oslo on Monday ."], tiny_pooling_model)[:1],
                        alone, 2e-6)
