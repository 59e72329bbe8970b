"""Layers as forward/backward pairs. Each ``*_forward`` returns ``(out, cache)``; each
``*_backward(dout, cache)`` returns the gradients, every one in the shape of what it differentiates.
"""
import numpy as np


class RowGrad:
    """Gradient of an embedding table, held as the rows that were used.

    rows: (R,) unique row ids; values: (R, d). ``dense()`` gives the (V, d) gradient; the
    optimiser updates only ``rows``, so a step costs the rows a batch touched, not the table.
    """

    def __init__(self, rows, values, shape):
        self.rows, self.values, self.shape = rows, values, shape

    def dense(self):
        out = np.zeros(self.shape, dtype=self.values.dtype)
        out[self.rows] = self.values
        return out


def embedding_forward(ids, table):
    """ids: (N, w) ints; table: (V, d). Returns out (N, w, d)."""
    return table[ids], (ids, table.shape)


def scatter_add_rows(index, values, n_rows):
    """(n_rows, d): row i is the sum of the rows of values (n, d) whose index is i.

    One bincount over (row, column) cells: the same sums as np.add.at, several times faster."""
    d = values.shape[1]
    cells = (index[:, None] * d + np.arange(d)).ravel()
    out = np.bincount(cells, weights=values.ravel(), minlength=n_rows * d)
    return out.reshape(n_rows, d).astype(values.dtype, copy=False)


def embedding_backward(dout, cache):
    """dout: (N, w, d). Returns dtable as a RowGrad of shape (V, d).

    A row can fill several slots of several windows; every use adds its share.
    """
    ids, shape = cache
    rows, inverse = np.unique(ids.ravel(), return_inverse=True)
    return RowGrad(rows, scatter_add_rows(inverse.ravel(), dout.reshape(-1, shape[1]), rows.size), shape)


def affine_forward(x, W, b):
    """x: (N, D); W: (H, D); b: (H,). Returns out = x W^T + b, (N, H)."""
    out = x @ W.T
    out += b  # in place: a batch of a million tokens makes no second (N, H)
    return out, (x, W)


def affine_backward(dout, cache):
    """dout: (N, H). Returns dx (N, D), dW (H, D), db (H,)."""
    x, W = cache
    return dout @ W, dout.T @ x, dout.sum(axis=0)


def _sigmoid(z):
    np.tanh(0.5 * z, out=z)
    z += 1.0
    z *= 0.5
    return z


# f and f' by name; f' is written from the forward output a = f(z), so backward needs no z, and f
# overwrites z with a (no second (N, H) array: z is not needed once a exists).
ACTIVATIONS = {
    "tanh": (lambda z: np.tanh(z, out=z), lambda a: 1.0 - a * a),
    "relu": (lambda z: np.maximum(z, 0.0, out=z), lambda a: (a > 0).astype(a.dtype)),
    "sigmoid": (_sigmoid, lambda a: a * (1.0 - a)),
}


def activation_forward(z, name):
    """z: (N, H), overwritten. Returns a = f(z), (N, H)."""
    a = ACTIVATIONS[name][0](z)
    return a, (a, name)


def activation_backward(dout, cache):
    """dout: (N, H). Returns dz = dout * f'(z), (N, H): the lecture's local error signal."""
    a, name = cache
    return dout * ACTIVATIONS[name][1](a)


def dropout_forward(x, p, rng):
    """Inverted dropout: zero each unit with probability p and scale the rest by 1/(1-p)."""
    if p <= 0.0 or rng is None:
        return x, None
    mask = (rng.random(x.shape) >= p).astype(x.dtype) / (1.0 - p)
    return x * mask, mask


def dropout_backward(dout, cache):
    return dout if cache is None else dout * cache


def softmax(s):
    """Row-wise softmax of s (N, K); the row max is subtracted so exp never overflows."""
    e = np.exp(s - s.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


def softmax_cross_entropy_forward(s, y):
    """s: (N, K) scores; y: (N,) gold tag ids. Returns the mean negative log-likelihood."""
    shifted = s - s.max(axis=1, keepdims=True)
    log_z = np.log(np.exp(shifted).sum(axis=1))
    log_p = shifted[np.arange(len(y)), y] - log_z
    return -log_p.mean(), (np.exp(shifted - log_z[:, None]), y)


def softmax_cross_entropy_backward(dout, cache):
    """dout: scalar upstream gradient. Returns ds = dout * (P - Y) / N, (N, K)."""
    p, y = cache
    ds = p.copy()
    ds[np.arange(len(y)), y] -= 1.0
    return ds * (dout / len(y))


def char_conv_forward(chars, C, Wc, bc):
    """Each word's character vector: embeddings, a convolution over every ``width`` characters, the
    maximum of each filter over the word.

    chars: (R, L) character ids of R words, each between its begin and end marks, padded with 0;
    C: (n_chars, d); Wc: (F, width * d); bc: (F,). Returns out (R, F).
    Only positions whose window lies inside the word (marks included) compete for the maximum.
    """
    R, L = chars.shape
    F, width = Wc.shape[0], Wc.shape[1] // C.shape[1]
    P = L - width + 1
    emb = C[chars]                                                              # (R, L, d)
    patches = np.concatenate([emb[:, i: i + P] for i in range(width)], axis=2)  # (R, P, width * d)
    conv = (patches.reshape(R * P, -1) @ Wc.T).reshape(R, P, F).transpose(0, 2, 1).copy()  # (R, F, P)
    length = (chars != 0).sum(axis=1)
    outside = np.arange(P)[None, :] + width > length[:, None]                  # (R, P)
    outside[:, 0] = False  # a word shorter than the window still has its first position
    conv += np.where(outside, -np.inf, 0.0).astype(conv.dtype)[:, None, :]
    arg = conv.argmax(axis=2)                                                   # (R, F)
    out = conv.max(axis=2) + bc
    return out, (chars, C.shape, patches, arg, Wc)


def char_conv_max(chars, C, Wc, bc):
    """``char_conv_forward``'s out alone, for serving: (R, F). Words are taken a length at a time, so
    that only the positions inside a word are convolved and nothing is kept for a backward pass."""
    R, L = chars.shape
    F, width = Wc.shape[0], Wc.shape[1] // C.shape[1]
    out = np.empty((R, F), dtype=np.result_type(C, Wc))
    length = (chars != 0).sum(axis=1)
    for n in np.unique(length):
        rows = (length == n).nonzero()[0]
        P = max(int(n) - width + 1, 1)          # a word shorter than the window still has its first position
        emb = C[chars[rows, : P + width - 1]]                                      # (r, P + width - 1, d)
        patches = np.concatenate([emb[:, i: i + P] for i in range(width)], axis=2)  # (r, P, width * d)
        out[rows] = (patches.reshape(len(rows) * P, -1) @ Wc.T).reshape(len(rows), P, F).max(axis=1)
    return out + bc


def char_conv_backward(dout, cache):
    """dout: (R, F). Returns dC (n_chars, d), dWc (F, width * d), dbc (F,).

    The maximum passes each filter's gradient to the one position that won it: only that window's
    characters and that filter's weights get a share.
    """
    chars, c_shape, patches, arg, Wc = cache
    R, F = arg.shape
    d = c_shape[1]
    width = Wc.shape[1] // d
    won = patches[np.arange(R)[:, None], arg]                                   # (R, F, width * d)
    dWc = np.einsum("rf,rfk->fk", dout, won)
    dwon = dout[:, :, None] * Wc[None]                                          # (R, F, width * d)
    # The character at offset i of the winning window of (r, f) is chars[r, arg[r, f] + i].
    at = arg[:, :, None] + np.arange(width)                                     # (R, F, width)
    ids = np.take_along_axis(chars, at.reshape(R, -1), axis=1).ravel()
    dC = scatter_add_rows(ids, dwon.reshape(-1, d), c_shape[0])
    return dC, dWc, dout.sum(axis=0)


_DENSE_GROUPS = 256  # up to this many rows the averaging is one (N, N) product: fewer numpy calls


def group_mean_forward(a, groups):
    """Each row replaced by the mean of the rows of its group.

    a: (N, K); groups: (N,) ints, rows with the same value forming a group. Returns m (N, K),
    m[n] = (1 / |g|) sum_{u in g} a[u] for the group g of row n. Sums are taken in float64 and cast
    back, so that a group's mean does not depend on what else the batch holds, nor on which of the
    two ways (a product with the averaging matrix for a few rows, sorted sums for many) took it.
    """
    groups = np.asarray(groups)
    if len(groups) <= _DENSE_GROUPS:
        same = groups[:, None] == groups[None, :]
        sizes = same.sum(axis=1)
        cache = ("dense", same, sizes)                                     # the (N, N) same-group matrix
    else:
        order = np.argsort(groups, kind="stable")
        g = groups[order]
        starts = np.empty(len(g), dtype=bool)
        starts[:1] = True
        np.not_equal(g[1:], g[:-1], out=starts[1:])
        first = starts.nonzero()[0]
        counts = np.diff(np.append(first, len(g)))
        which = np.empty(len(g), dtype=np.intp)
        which[order] = np.cumsum(starts) - 1                               # (N,) each row's group, 0..G-1
        cache = ("sorted", (order, first, counts, which), counts[which])
    return _group_mean(a, cache), cache


def group_sizes(cache):
    """(N,) the size of each row's group, from a ``group_mean_forward`` cache."""
    return cache[2]


def _group_mean(a, cache):
    kind, how, sizes = cache
    if kind == "dense":
        return ((how @ a.astype(np.float64)) / sizes[:, None]).astype(a.dtype)
    order, first, counts, which = how
    if not len(a):
        return a.copy()
    sums = np.add.reduceat(a[order].astype(np.float64), first, axis=0)    # (G, K)
    return (sums[which] / sizes[:, None]).astype(a.dtype)


def group_mean_backward(dout, cache):
    """dout: (N, K). Returns da (N, K).

    m[n] = sum_u a[u] / |g| over the group g of n, so dJ/da[u] = sum over the rows n of u's group of
    dout[n] / |g|: the group mean of dout. The operator is symmetric; backward is forward again."""
    return _group_mean(dout, cache)
