import numpy as np

from model.explain import attributions
from model.predict import predict


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
            s += np.array([a[g == g[n]].mean(axis=0) for n in range(n_tokens)]) @ params64[key].T
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


def test_explanations_name_each_window_word_and_pad(tiny_model):
    tokens = predict(["Anna Berg visited Oslo."], tiny_model, explain=True)[0]["tokens"]
    first = tokens[0]["explanation"]
    assert [e["offset"] for e in first] == [-2, -1, 0, 1, 2]
    assert [e["text"] for e in first] == ["<s>", "<s>", "Anna", "Berg", "visited"]
    assert [e["text"] for e in tokens[-1]["explanation"]][-2:] == ["</s>", "</s>"]
    assert "explanation" not in predict(["Anna Berg"], tiny_model)[0]["tokens"][0]
