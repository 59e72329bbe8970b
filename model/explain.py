"""Why a token got its tag: gradient x input of the tag's log-probability, per window slot.

For token n with chosen tag k, the network's own backward pass (``model.network``) gives
d log P[n, k] / d x_n, the gradient with respect to the window input (D = (2r+1) * slot_dim).
Multiplied by x_n and summed over each slot's dimensions, it is one signed number per window word:
positive pushed towards the tag, negative away from it. All tokens at once, as one backward pass of
the sum of every token's log-probability of its tag: tokens read alone are independent, so each
token's gradient is its own; in a pooling model a window also pulls on the tags of the mentions and
the document it is pooled with, and that pull is counted in its attributions.
"""
import numpy as np

from model import layers, network
from model.vocab import BOS, EOS


def attributions(model, batch, tags, groups=None):
    """(N, 2r+1) float32 attributions for the tag ids ``tags`` (N,) of a token batch (``groups``: of a
    pooling model, ``Model.groups``)."""
    p, cfg = model.params, model.config
    x = model.inputs(batch)                                              # (N, D)
    a, hidden_cache = network.hidden_forward(x, p, cfg)                  # (N, H)
    s, readout_cache = network.readout_forward(a, p, cfg, groups)        # (N, K)
    probs = layers.softmax(s / model.temperature)
    # d log softmax(s / T)[k] / ds = (onehot(k) - P) / T
    ds = -probs
    ds[np.arange(len(tags)), tags] += 1.0
    ds /= model.temperature
    da = network.readout_backward(ds, readout_cache)[0]
    dx = network.hidden_backward(da, hidden_cache)[0]                    # (N, D)
    return (dx * x).reshape(len(x), cfg.window, cfg.slot_dim).sum(axis=2)


def slot_report(words, t, weights):
    """The explanation of token t of a sentence: one entry per window slot, pads named <s> and </s>."""
    radius = len(weights) // 2
    out = []
    for j, weight in enumerate(weights):
        i = t + j - radius
        text = BOS if i < 0 else EOS if i >= len(words) else words[i]
        out.append({"offset": j - radius, "text": text, "weight": weight})
    return out
