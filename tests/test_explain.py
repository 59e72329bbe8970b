import numpy as np
import pytest

from model import network
from model.explain import attributions
from model.predict import predict


def numeric_attributions(model, batch, tags, groups, h=1e-5):
    """Gradient x input by centred differences, in float64, of the sum over tokens of log P[n, tag_n]
    as the network's own forward stages compute it, one input of one token at a time (a small step:
    relu's kink must not fall inside it)."""
    params64 = {k: v.astype(np.float64) for k, v in model.params.items()}
    x = model.inputs(batch).astype(np.float64)
    cfg = model.config

    def total_log_p(x):
        a = network.hidden_forward(x, params64, cfg)[0]
        s = network.readout_forward(a, params64, cfg, groups)[0] / model.temperature
        s = s - s.max(axis=1, keepdims=True)
        return (s - np.log(np.exp(s).sum(axis=1, keepdims=True)))[np.arange(len(tags)), tags].sum()

    grad = np.zeros_like(x)
    for i in np.ndindex(x.shape):
        step = np.zeros_like(x)
        step[i] = h
        grad[i] = (total_log_p(x + step) - total_log_p(x - step)) / (2 * h)
    return (grad * x).reshape(len(x), cfg.window, cfg.slot_dim).sum(axis=2)


@pytest.mark.parametrize("which", ["tiny_model", "tiny_pooling_model"])
def test_attributions_match_finite_differences(which, request):
    model = request.getfixturevalue(which)
    words = [["Anna", "Berg", "visited", "Oslo", "."], ["Berg", "of", "Helix", "fell", "in", "Oslo"]]
    batch = model.batch(words)
    groups = model.groups(words, batch, np.array([0, 0])) if model.config.pools else None
    assert (groups is not None) == (which == "tiny_pooling_model")
    tags = np.array([1, 2, 0, 3, 0, 0, 0, 4, 0, 0, 3]) % len(model.labels)
    analytic = attributions(model, batch, tags, groups)
    numeric = numeric_attributions(model, batch, tags, groups)
    assert analytic.shape == (11, model.config.window) and analytic.dtype == np.float32
    assert np.allclose(analytic, numeric, rtol=1e-3, atol=1e-4), np.abs(analytic - numeric).max()


def test_explanations_name_each_window_word_and_pad(tiny_model):
    tokens = predict(["Anna Berg visited Oslo."], tiny_model, explain=True)[0]["tokens"]
    first = tokens[0]["explanation"]
    assert [e["offset"] for e in first] == [-2, -1, 0, 1, 2]
    assert [e["text"] for e in first] == ["<s>", "<s>", "Anna", "Berg", "visited"]
    assert [e["text"] for e in tokens[-1]["explanation"]][-2:] == ["</s>", "</s>"]
    assert "explanation" not in predict(["Anna Berg"], tiny_model)[0]["tokens"][0]
