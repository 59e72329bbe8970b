"""The window network: embeddings -> affine -> f -> affine -> softmax, with its backward pass.

One params dict holds every weight; the gradients, the optimiser, the gradient check and the
artifact all share its keys: ``E`` (word vectors), ``F_<feature>`` (feature embeddings),
``C``, ``Wc``, ``bc`` (character embeddings and their convolution, when the config has them),
``W``, ``b`` (hidden layer), ``U``, ``c`` (tag scores), and ``Um``, ``Ud`` (tag scores read from
the pooled hidden layer, when the config pools).

The network is three stages, each a forward/backward pair, and ``loss`` composes them:

    input_forward    x = [slot vectors of the window]      (N, D), with input dropout in training
    hidden_forward   a = f(x W^T + b)                        (N, H)
    readout_forward  s = a U^T + c (+ pooled readouts)       (N, K)

Serving runs the same stages: its stored per-word projections (``model.projection``) are a cache
of ``x W^T + b`` handed to ``hidden_forward``; explanations (``model.explain``) run the stages'
backward passes.

A window slot is its word's vector, then its feature embeddings, then (with character features)
the character vector of its word: the maximum over the word of a convolution of its characters'
embeddings. Pads have no characters: their character vector is 0.

Pooling (``pool_mentions``, ``pool_document``; off in the shipped model): a token's tag scores also
read the hidden layer of the other mentions of its word in its document, and of its whole document:

    m_t = mean of a_u over the tokens u of the same word (as the vocabulary reads it) in t's document
    d_t = mean of a_u over the tokens u of t's document
    s_t = U a_t + Um m_t + Ud d_t + c

Both means include t itself; a word met once has m_t = a_t. The readout is linear, so Um m_t is
the mean of the readouts Um a_u: the means are taken over (N, K) scores rather than (N, H) hidden
layers. Backward: with q = a Um^T and G the averaging over groups (symmetric), dq = G ds,
dUm = dq^T a, and da gets dq Um (``layers.group_mean_backward``).
"""
from dataclasses import asdict, dataclass, field, fields

import numpy as np

from model import layers

# Options measured and removed (training/ABLATION.md); an artifact written before may name them, off.
RETIRED = frozenset({"crf", "pool_attention", "pool_others", "alone_head"})


@dataclass
class Config:
    """Everything needed to rebuild the network from its weights."""

    radius: int = 2
    word_dim: int = 50
    hidden: int = 300
    activation: str = "tanh"
    features: dict = field(default_factory=lambda: {"case": 4, "suffix": 16})
    affix_length: int = 3
    dropout: float = 0.0
    l2: float = 0.0
    case_regimes: bool = False  # casing rows per sentence regime (model.casing): lower, upper, title, cased
    char_dim: int = 0           # character embedding size; 0: no character features
    char_filters: int = 0       # convolution filters: the size of a word's character vector
    char_width: int = 3         # characters each filter sees
    char_length: int = 20       # characters of a word read, marks included
    pool_mentions: bool = False  # scores read the mean hidden layer of the word's mentions in the document
    pool_document: bool = False  # scores read the mean hidden layer of the document

    @property
    def pools(self):
        """(params key, groups key of ``loss``'s windows) of each pooled input of the tag scores."""
        return ([("Um", "mention_groups")] if self.pool_mentions else []) + \
            ([("Ud", "doc_groups")] if self.pool_document else [])

    @property
    def window(self):
        return 2 * self.radius + 1

    @property
    def chars(self):
        return self.char_dim > 0 and self.char_filters > 0

    @property
    def slot_dim(self):
        return self.word_dim + sum(self.features.values()) + (self.char_filters if self.chars else 0)

    @property
    def input_dim(self):
        return self.window * self.slot_dim

    def to_dict(self):
        return asdict(self)

    @classmethod
    def from_dict(cls, data):
        for key in RETIRED & set(data):
            if data[key]:
                raise ValueError(f"the model uses {key!r}, an option nerve no longer has (its figures are in "
                                 "training/ABLATION.md): retrain it without")
        data = {k: v for k, v in data.items() if k not in RETIRED}
        known = {f.name for f in fields(cls)}
        unknown = set(data) - known
        if unknown:
            raise ValueError(f"unknown config keys: {sorted(unknown)}")
        config = cls(**data)
        if config.activation not in layers.ACTIVATIONS:
            raise ValueError(f"unknown activation {config.activation!r}: one of {sorted(layers.ACTIVATIONS)}")
        return config


def table_key(name):
    """Params key of a feature table: ``E`` for words, ``F_<name>`` for the others."""
    return "E" if name == "word" else f"F_{name}"


def table_names(config):
    return ["word", *config.features]


def table_dims(config):
    return [config.word_dim, *config.features.values()]


def init_params(config, table_sizes, n_tags, rng, word_vectors=None, dtype=np.float32):
    """Fresh params. table_sizes: {table name: rows}, and ``chars`` with character features;
    word_vectors: optional (V, word_dim) start for E."""
    params = {}
    for name, dim in zip(table_names(config), table_dims(config)):
        params[table_key(name)] = rng.normal(0.0, 0.1, (table_sizes[name], dim))
    if config.chars:
        fan_in = config.char_width * config.char_dim
        params["C"] = rng.normal(0.0, 0.1, (table_sizes["chars"], config.char_dim))
        params["Wc"] = rng.uniform(-1, 1, (config.char_filters, fan_in)) * np.sqrt(3.0 / fan_in)
        params["bc"] = np.zeros(config.char_filters)
    if word_vectors is not None:
        params["E"] = np.array(word_vectors, dtype=np.float64)
    bound_w = np.sqrt(6.0 / (config.input_dim + config.hidden))
    bound_u = np.sqrt(6.0 / (config.hidden + n_tags))
    params["W"] = rng.uniform(-bound_w, bound_w, (config.hidden, config.input_dim))
    params["b"] = np.zeros(config.hidden)
    params["U"] = rng.uniform(-bound_u, bound_u, (n_tags, config.hidden))
    params["c"] = np.zeros(n_tags)
    for key, _ in config.pools:
        params[key] = rng.uniform(-bound_u, bound_u, (n_tags, config.hidden))
    return {k: v.astype(dtype) for k, v in params.items()}


def input_forward(params, config, windows, rng=None):
    """x (N, D): each window's slot vectors side by side; rng turns input dropout on (training only).

    windows: {table name: (N, 2r+1) ids}, and with character features ``chars`` (R, L) character
    ids of R words and ``char_rows`` (N, 2r+1): the row of ``chars`` each slot's word is, R for a pad."""
    parts, emb_caches = [], []
    for name in table_names(config):
        out, cache = layers.embedding_forward(windows[name], params[table_key(name)])
        parts.append(out)
        emb_caches.append(cache)
    if config.chars:
        words, char_cache = layers.char_conv_forward(windows["chars"], params["C"], params["Wc"], params["bc"])
        words = np.vstack([words, np.zeros((1, words.shape[1]), dtype=words.dtype)])  # row R: a pad's
        parts.append(words[windows["char_rows"]])                                      # (N, w, F)
    x3 = np.concatenate(parts, axis=2)                      # (N, w, slot_dim)
    x, drop_cache = layers.dropout_forward(x3.reshape(len(x3), -1), config.dropout, rng)  # (N, D)
    chars = (windows["char_rows"], len(windows["chars"]), char_cache) if config.chars else None
    return x, (config, x3.shape, emb_caches, chars, drop_cache)


def input_backward(dx, cache):
    """dx: (N, D). Returns the grads of the tables (RowGrads) and of the character convolution."""
    config, shape, emb_caches, chars, drop_cache = cache
    dx3 = layers.dropout_backward(dx, drop_cache).reshape(shape)
    dims = table_dims(config) + ([config.char_filters] if config.chars else [])
    dparts = np.split(dx3, np.cumsum(dims)[:-1], axis=2)
    grads = {}
    for name, dpart, emb_cache in zip(table_names(config), dparts, emb_caches):
        grads[table_key(name)] = layers.embedding_backward(dpart, emb_cache)
    if chars is not None:
        char_rows, n_words, char_cache = chars
        dwords = layers.scatter_add_rows(char_rows.ravel(), dparts[-1].reshape(-1, config.char_filters), n_words + 1)
        grads["C"], grads["Wc"], grads["bc"] = layers.char_conv_backward(dwords[:-1], char_cache)
    return grads


def hidden_forward(x, params, config, z=None):
    """a (N, H) = f(x W^T + b). z: x W^T + b, when a cache in front of this layer (the serving
    projection, ``model.projection``) has worked it out without building x."""
    hidden_cache = None
    if z is None:
        z, hidden_cache = layers.affine_forward(x, params["W"], params["b"])  # (N, H)
    a, act_cache = layers.activation_forward(z, config.activation)            # (N, H)
    return a, (hidden_cache, act_cache)


def hidden_backward(da, cache):
    """da: (N, H). Returns dx (N, D), and the grads of W and b."""
    hidden_cache, act_cache = cache
    dz = layers.activation_backward(da, act_cache)
    dx, dW, db = layers.affine_backward(dz, hidden_cache)
    return dx, {"W": dW, "b": db}


def readout_forward(a, params, config, groups=None):
    """s (N, K): the tag scores of hidden layers a (N, H). groups: with pooling, {"mention_groups",
    "doc_groups"}: (N,) group ids (``model.document``); None reads every token alone (its own group)."""
    s, score_cache = layers.affine_forward(a, params["U"], params["c"])       # (N, K)
    pool_caches = []
    for key, name in config.pools:
        q = a @ params[key].T                                                 # (N, K) each token read by this readout
        if groups is None:
            pooled, group_cache = q, None
        else:
            pooled, group_cache = layers.group_mean_forward(q, groups[name])  # (N, K) = Um m_t
        s += pooled
        pool_caches.append((key, group_cache))
    return s, (a, params, score_cache, pool_caches)


def readout_backward(ds, cache):
    """ds: (N, K). Returns da (N, H), and the grads of U, c and the pooled readouts."""
    a, params, score_cache, pool_caches = cache
    grads = {}
    da, grads["U"], grads["c"] = layers.affine_backward(ds, score_cache)
    for key, group_cache in pool_caches:
        dq = ds if group_cache is None else layers.group_mean_backward(ds, group_cache)  # (N, K)
        grads[key] = dq.T @ a
        da += dq @ params[key]
    return da, grads


def loss(params, config, windows, y=None, rng=None):
    """Scores, or loss and gradients.

    windows: ``input_forward``'s, and with pooling the groups of ``readout_forward`` under the same keys.
    y: (N,) gold tag ids. Without y returns scores (N, K). With y returns (J, grads), grads keyed
    like params; embedding grads are RowGrads. rng turns dropout on (training only).
    """
    x, input_cache = input_forward(params, config, windows, rng)
    a, hidden_cache = hidden_forward(x, params, config)
    s, readout_cache = readout_forward(a, params, config, windows if config.pools else None)
    if y is None:
        return s
    data_loss, ce_cache = layers.softmax_cross_entropy_forward(s, y)
    W, U = params["W"], params["U"]
    readouts = [params[key] for key, _ in config.pools]  # read like U, so regularised like U
    J = data_loss + 0.5 * config.l2 * (np.sum(W * W) + np.sum(U * U) + sum(np.sum(R * R) for R in readouts))

    ds = layers.softmax_cross_entropy_backward(1.0, ce_cache)
    da, grads = readout_backward(ds, readout_cache)
    dx, hidden_grads = hidden_backward(da, hidden_cache)
    grads.update(hidden_grads)
    if config.l2:
        for key in ["W", "U", *(key for key, _ in config.pools)]:
            grads[key] += config.l2 * params[key]
    grads.update(input_backward(dx, input_cache))
    return J, grads
