"""The window network: embeddings -> affine -> f -> affine -> softmax, with its backward pass.

One params dict holds every weight; the gradients, the optimiser, the gradient check and the
artifact all share its keys: ``E`` (word vectors), ``F_<feature>`` (feature embeddings),
``C``, ``Wc``, ``bc`` (character embeddings and their convolution, when the config has them),
``W``, ``b`` (hidden layer), ``U``, ``c`` (tag scores), ``Um``, ``Ud`` (tag scores read from
the pooled hidden layer, when the config pools), ``vm`` (attention over the mentions), ``U0``,
``c0`` (the readout for a text of one sentence), and with a CRF output layer ``A``, ``A_start``,
``A_end`` (tag transition scores, ``model.crf``).

A window slot is its word's vector, then its feature embeddings, then (with character features)
the character vector of its word: the maximum over the word of a convolution of its characters'
embeddings. Pads have no characters: their character vector is 0.

Pooling (``pool_mentions``, ``pool_document``): a token's tag scores also read the hidden layer of
the other mentions of its word in its document, and of its whole document:

    m_t = mean of a_u over the tokens u of the same word (as the vocabulary reads it) in t's document
    d_t = mean of a_u over the tokens u of t's document
    s_t = U a_t + Um m_t + Ud d_t + c

A name's clearest window ("striker for Ajax") then informs its others ("AJAX" in a headline), and
the document's subject (a football report, a market summary) informs every token. Both means
include t itself; a word met once has m_t = a_t. The readout is linear, so Um m_t is the mean of
the readouts Um a_u: the means are taken over (N, K) scores rather than (N, H) hidden layers, which
costs K / H as much. Backward: with q = a Um^T and G the averaging over groups (symmetric),
dq = G ds, dUm = dq^T a, and da gets dq Um (``layers.group_mean_backward``).

Variants: ``pool_attention`` weighs the mentions by alpha = softmax over the group of vm . a_u
(``layers.group_attention_*``); ``pool_others`` reads the other mentions only, 0 for a word met once
(``layers.group_others_mean_*``); ``alone_head`` adds a second readout, s0_t = U0 a_t + c0, trained
on every token beside the pooled one (the two losses summed), which scores the tokens of a text of
one sentence, where there is no document to pool.
"""
from dataclasses import asdict, dataclass, field, fields

import numpy as np

from model import crf, layers


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
    crf: bool = False           # tag paths scored as a whole (model.crf) instead of each token alone
    pool_mentions: bool = False  # scores read the mean hidden layer of the word's mentions in the document
    pool_document: bool = False  # scores read the mean hidden layer of the document
    pool_attention: bool = False  # the mentions weighted by a learned score of each (attention), not equally
    pool_others: bool = False    # a token reads its word's other mentions only (nothing for a word met once)
    alone_head: bool = False     # a second readout of the hidden layer alone (U0, c0), for texts of one sentence

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
    if config.pool_mentions and config.pool_attention:
        params["vm"] = np.zeros(config.hidden)  # equal weights to start with: the mean
    if config.alone_head:
        params["U0"], params["c0"] = rng.uniform(-bound_u, bound_u, (n_tags, config.hidden)), np.zeros(n_tags)
    if config.crf:
        params["A"], params["A_start"], params["A_end"] = np.zeros((n_tags, n_tags)), np.zeros(n_tags), np.zeros(n_tags)
    return {k: v.astype(dtype) for k, v in params.items()}


def loss(params, config, windows, y=None, rng=None, lengths=None, allowed=None):
    """Scores, or loss and gradients.

    windows: {table name: (N, 2r+1) ids}, and with character features ``chars`` (R, L) character
    ids of R words and ``char_rows`` (N, 2r+1): the row of ``chars`` each slot's word is, R for a pad.
    y: (N,) gold tag ids. Without y returns scores (N, K). With y returns (J, grads), grads keyed
    like params; embedding grads are RowGrads. rng turns dropout on (training only).
    With a CRF the N tokens are whole sentences of ``lengths`` laid end to end, and J is the mean
    over tokens of -log p(gold path); ``allowed``: the scheme's moves (``model.decode.transitions``).
    """
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
    z, hidden_cache = layers.affine_forward(x, params["W"], params["b"])  # (N, H)
    a, act_cache = layers.activation_forward(z, config.activation)       # (N, H)
    s, score_cache = layers.affine_forward(a, params["U"], params["c"])  # (N, K)
    pool_caches = []
    for key, groups in config.pools:
        q = a @ params[key].T                                            # (N, K) each token read by this readout
        if key == "Um" and config.pool_attention:
            pooled, group_cache = layers.group_attention_forward(q, a @ params["vm"], windows[groups])
        elif key == "Um" and config.pool_others:
            pooled, group_cache = layers.group_others_mean_forward(q, windows[groups])
        else:
            pooled, group_cache = layers.group_mean_forward(q, windows[groups])  # (N, K) = Um m_t
        s += pooled
        pool_caches.append((key, group_cache))
    if y is None:
        return s

    if config.alone_head:  # trained on every token, so the hidden layer also reads well without any pooling
        s0, head_cache = layers.affine_forward(a, params["U0"], params["c0"])
        head_loss, head_ce_cache = layers.softmax_cross_entropy_forward(s0, y)
    if config.crf:
        data_loss, crf_cache = crf.crf_forward(s, lengths, y, params["A"], params["A_start"], params["A_end"], allowed)
    else:
        data_loss, ce_cache = layers.softmax_cross_entropy_forward(s, y)
    W, U = params["W"], params["U"]
    readouts = [params[key] for key, _ in config.pools]  # read like U, so regularised like U
    if config.alone_head:
        readouts.append(params["U0"])
        data_loss = data_loss + head_loss
    J = data_loss + 0.5 * config.l2 * (np.sum(W * W) + np.sum(U * U) + sum(np.sum(R * R) for R in readouts))

    grads = {}
    if config.crf:
        ds, dA, dA_start, dA_end = crf.crf_backward(1.0, crf_cache)
        dtype = params["A"].dtype
        grads["A"], grads["A_start"], grads["A_end"] = dA.astype(dtype), dA_start.astype(dtype), dA_end.astype(dtype)
    else:
        ds = layers.softmax_cross_entropy_backward(1.0, ce_cache)
    da, grads["U"], grads["c"] = layers.affine_backward(ds, score_cache)
    if config.alone_head:
        ds0 = layers.softmax_cross_entropy_backward(1.0, head_ce_cache)
        da0, grads["U0"], grads["c0"] = layers.affine_backward(ds0, head_cache)
        da += da0
    for key, group_cache in pool_caches:
        if key == "Um" and config.pool_attention:
            dq, de = layers.group_attention_backward(ds, group_cache)
            grads["vm"] = a.T @ de
            da += de[:, None] * params["vm"]
        elif key == "Um" and config.pool_others:
            dq = layers.group_others_mean_backward(ds, group_cache)
        else:
            dq = layers.group_mean_backward(ds, group_cache)             # (N, K)
        grads[key] = dq.T @ a
        da += dq @ params[key]
    dz = layers.activation_backward(da, act_cache)
    dx, grads["W"], grads["b"] = layers.affine_backward(dz, hidden_cache)
    if config.l2:
        grads["W"] += config.l2 * W
        grads["U"] += config.l2 * U
        for key in [key for key, _ in config.pools] + (["U0"] if config.alone_head else []):
            grads[key] += config.l2 * params[key]
    dx3 = layers.dropout_backward(dx, drop_cache).reshape(x3.shape)
    dims = table_dims(config) + ([config.char_filters] if config.chars else [])
    dparts = np.split(dx3, np.cumsum(dims)[:-1], axis=2)
    for name, dpart, cache in zip(table_names(config), dparts, emb_caches):
        grads[table_key(name)] = layers.embedding_backward(dpart, cache)
    if config.chars:
        dwords = layers.scatter_add_rows(windows["char_rows"].ravel(), dparts[-1].reshape(-1, config.char_filters),
                                         len(windows["chars"]) + 1)
        grads["C"], grads["Wc"], grads["bc"] = layers.char_conv_backward(dwords[:-1], char_cache)
    return J, grads
