import numpy as np

from model.explain import attributions
from model.predict import Model, predict


def numeric_attributions(model, batch, tags, groups, h=1e-3):
    """Gradient x input by centred differences of log P[n, tag] in float64, one input of one token at a
    time (a pooling model's means move with it)."""
    params64 = {k: v.astype(np.float64) for k, v in model.params.items()}
    x = model.inputs(batch).astype(np.float64)
    cfg = model.config
    n_tokens = len(tags)

    def log_p(x):
        z = x @ params64["W"].T + params64["b"]
        a = {"tanh": np.tanh, "relu": lambda v: np.maximum(v, 0), "sigmoid": lambda v: 1 / (1 + np.exp(-v))}[
            cfg.activation](z)
        s = a @ params64["U"].T + params64["c"]
        for key, name in cfg.pools:
            g = groups[name]
            if key == "Um" and cfg.pool_attention:  # the group's rows weighted by the softmax of a . vm
                e = a @ params64["vm"]
                weights = [np.exp(e[g == g[n]] - e[g == g[n]].max()) for n in range(n_tokens)]
                pooled = np.array([(w / w.sum()) @ a[g == g[n]] for n, w in enumerate(weights)])
            else:
                pooled = np.array([a[g == g[n]].mean(axis=0) for n in range(n_tokens)])
            s += pooled @ params64[key].T
        if cfg.alone_head:
            alone = groups["alone"]
            s[alone] = a[alone] @ params64["U0"].T + params64["c0"]
        s = s / model.temperature
        s = s - s.max(axis=1, keepdims=True)
        return (s - np.log(np.exp(s).sum(axis=1, keepdims=True)))[np.arange(n_tokens), tags]

    grad = np.zeros_like(x)
    for n in range(n_tokens):
        for d in range(x.shape[1]):
            step = np.zeros_like(x)
            step[n, d] = h
            grad[n, d] = (log_p(x + step)[n] - log_p(x - step)[n]) / (2 * h)
    return (grad * x).reshape(len(x), cfg.window, cfg.slot_dim).sum(axis=2)


def test_attributions_match_finite_differences(tiny_model):
    words = [["Anna", "Berg", "visited", "Oslo", "."], ["Berg", "of", "Helix", "fell", "in", "Oslo"]]
    batch = tiny_model.batch(words)
    groups = tiny_model.groups(words, batch, np.array([0, 0]))
    assert tiny_model.config.pools and len(set(groups["mention_groups"])) < 11  # Berg and Oslo twice
    tags = np.array([1, 2, 0, 3, 0, 0, 0, 4, 0, 0, 3]) % len(tiny_model.labels)
    analytic = attributions(tiny_model, batch, tags, groups)
    numeric = numeric_attributions(tiny_model, batch, tags, groups)
    assert analytic.shape == (11, tiny_model.config.window) and analytic.dtype == np.float32
    assert np.allclose(analytic, numeric, rtol=1e-3, atol=1e-4), np.abs(analytic - numeric).max()


def test_attributions_of_attention_pooling_match_finite_differences(tiny_model_dir, tmp_path):
    from conftest import FIXTURES, TINY_CONFIG
    from training.embeddings import load_vectors
    from training.train import TrainConfig, train

    train(TrainConfig(**{**TINY_CONFIG, "pool_attention": True, "epochs": 8}), FIXTURES / "tiny_train.conll",
          FIXTURES / "tiny_dev.bio", str(tmp_path), vectors=load_vectors(str(FIXTURES / "vectors.txt")), quiet=True)
    model = Model.load(str(tmp_path))
    assert model.attention and np.abs(model.params["vm"]).max() > 0  # the weights moved from equal
    words = [["Anna", "Berg", "visited", "Oslo", "."], ["Berg", "of", "Helix", "fell", "in", "Oslo"]]
    batch = model.batch(words)
    groups = model.groups(words, batch, np.array([0, 0]))
    tags = np.array([1, 2, 0, 3, 0, 0, 0, 4, 0, 0, 3]) % len(model.labels)
    analytic = attributions(model, batch, tags, groups)
    numeric = numeric_attributions(model, batch, tags, groups)
    assert np.allclose(analytic, numeric, rtol=1e-3, atol=1e-4), np.abs(analytic - numeric).max()


def test_explanations_name_each_window_word_and_pad(tiny_model):
    tokens = predict(["Anna Berg visited Oslo."], tiny_model, explain=True)[0]["tokens"]
    first = tokens[0]["explanation"]
    assert [e["offset"] for e in first] == [-2, -1, 0, 1, 2]
    assert [e["text"] for e in first] == ["<s>", "<s>", "Anna", "Berg", "visited"]
    assert [e["text"] for e in tokens[-1]["explanation"]][-2:] == ["</s>", "</s>"]
    assert "explanation" not in predict(["Anna Berg"], tiny_model)[0]["tokens"][0]
