"""Why a token got its tag: gradient x input of the tag's log-probability, per window slot.

For token n with chosen tag k, the model's own backward pass gives d log P[n, k] / d x_n, the
gradient with respect to the window input (D = (2r+1) * slot_dim). A pooling model's scores also
read the mean hidden layer of the token's mentions and document, to which the token's own hidden
layer contributes 1/|group|: that share is its window's, the rest is other windows'. Multiplied by x_n and summed
over each slot's dimensions, it is one signed number per window word: positive pushed towards
the tag, negative away from it. All tokens at once; no per-token Python loop.
"""
import numpy as np

from model import layers
from model.vocab import BOS, EOS


def attributions(model, batch, tags, groups=None):
    """(N, 2r+1) float32 attributions for the tag ids ``tags`` (N,) of a token batch (``groups``: of a
    pooling model, ``Model.groups``)."""
    p, cfg = model.params, model.config
    x = model.inputs(batch)                                              # (N, D)
    z, hidden_cache = layers.affine_forward(x, p["W"], p["b"])           # (N, H)
    a, act_cache = layers.activation_forward(z, cfg.activation)
    s, score_cache = layers.affine_forward(a, p["U"], p["c"])            # (N, K)
    shares = []
    for key, name in cfg.pools:
        q = a @ p[key].T                                                 # (N, K)
        if key == "Um" and cfg.pool_attention and groups is not None:
            # The token's own share of its group's weighted sum: alpha_t q_t, and its score's pull on the weights.
            pooled, cache = layers.group_attention_forward(q, a @ p["vm"], groups[name])
            s += pooled
            shares.append((key, (cache[2], q, pooled)))
            continue
        if key == "Um" and cfg.pool_others:  # the other mentions only: none of it is the token's own
            if groups is not None:
                s += layers.group_others_mean_forward(q, groups[name])[0]
            continue
        pooled, cache = (q, None) if groups is None else layers.group_mean_forward(q, groups[name])
        s += pooled
        counts = np.ones(len(a)) if cache is None else layers.group_sizes(cache)
        shares.append((key, counts))
    alone = None
    if cfg.alone_head:  # a text of one sentence is scored by the readout trained for no document
        alone = np.ones(len(a), dtype=bool) if groups is None else groups["alone"]
        s[alone] = a[alone] @ p["U0"].T + p["c0"]
    probs = layers.softmax(s / model.temperature)
    # d log softmax(s / T)[k] / ds = (onehot(k) - P) / T
    ds = -probs
    ds[np.arange(len(tags)), tags] += 1.0
    ds /= model.temperature
    da = layers.affine_backward(ds, score_cache)[0]
    for key, counts in shares:
        if isinstance(counts, tuple):
            alpha, q, pooled = counts
            da += alpha[:, None] * (ds @ p[key] + ((ds * (q - pooled)).sum(axis=1))[:, None] * p["vm"])
            continue
        da += (ds @ p[key]) / counts[:, None].astype(da.dtype)
    if alone is not None and alone.any():
        da[alone] = ds[alone] @ p["U0"]
    dz = layers.activation_backward(da, act_cache)
    dx = layers.affine_backward(dz, hidden_cache)[0]                     # (N, D)
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
