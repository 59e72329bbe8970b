"""A linear-chain CRF over the window network's tag scores: sentence-level likelihood, its gradient,
posterior marginals and the best path.

For a sentence of T tokens with tag scores s_t (K,) from the network, transition scores A (K, K)
(A[i, j]: tag i followed by tag j), start scores a (K,) and end scores e (K,), a tag path y has the score

    score(y) = a[y_1] + sum_t s_t[y_t] + sum_{t>1} A[y_{t-1}, y_t] + e[y_T]

and probability p(y) = exp(score(y)) / Z, Z summed over all K^T paths. The loss of a sentence is
-log p(gold) = log Z - score(gold).

log Z by the forward algorithm, in log space:
    alpha_1 = a + s_1,    alpha_t[j] = s_t[j] + log sum_i exp(alpha_{t-1}[i] + A[i, j]),
    log Z = log sum_j exp(alpha_T[j] + e[j]).
Each step is computed as m + log(exp(alpha_{t-1} - m) @ exp(A)) with m = max_i alpha_{t-1}[i], so
nothing overflows: one (K, K) product per step, batched over sentences.
The backward algorithm gives what follows each position:
    beta_T = e,    beta_t[i] = log sum_j exp(A[i, j] + s_{t+1}[j] + beta_{t+1}[j]).
Then the marginals are p(y_t = j) = exp(alpha_t[j] + beta_t[j] - log Z), and the pair marginals
p(y_{t-1} = i, y_t = j) = exp(alpha_{t-1}[i] + A[i, j] + s_t[j] + beta_t[j] - log Z).

Gradients (d log Z / d theta is the expected count of what theta scores):
    dJ/ds_t[j]  = p(y_t = j) - [gold_t = j]
    dJ/dA[i, j] = sum_t p(y_{t-1} = i, y_t = j) - #(gold steps i -> j)
    dJ/da[j]    = p(y_1 = j) - [gold_1 = j],    dJ/de[j] = p(y_T = j) - [gold_T = j]

Moves the tag scheme forbids (I- after O, ...) score BLOCKED instead: their probability
is exactly 0 in float64, so the partition runs over valid paths only and a blocked entry's gradient
is 0. Gold paths are valid, so the loss stays finite.

Sentences of different lengths are laid out longest first in a (n, T_max, K) array: at step t the
sentences still running are the first ``running[t]`` rows, and each step works on a slice.
"""
import numpy as np

BLOCKED = -1e9  # as good as -inf: a blocked move never beats a valid path, and exp() of it is 0
_TINY = 1e-300  # a sum that underflowed to 0 stays a (hugely negative) finite log
_max = np.maximum.reduce  # ndarray.max without its Python wrapper: the loops below call it per token


def constrained(A, start, end, allowed):
    """Transition, start and end scores (float64): as given (None: 0) where ``allowed`` (the boolean
    (K, K), (K,), (K,) of ``model.decode.transitions``) permits a move, BLOCKED where it does not."""
    return tuple(np.where(ok, 0.0 if x is None else np.asarray(x, dtype=np.float64), BLOCKED)
                 for x, ok in zip((A, start, end), allowed))


class Layout:
    """Sentences of ``lengths`` (all > 0), laid end to end in N rows, as a padded longest-first batch.

    order: (n,) sentence in each padded row; lengths: (n,) their lengths; valid: (n, T) real cells;
    tok: flat row of each valid cell (row-major over valid); running: (T,) rows still going at step t.
    """

    def __init__(self, lengths):
        lengths = np.asarray(lengths, dtype=np.intp)
        self.order = np.argsort(-lengths, kind="stable")
        self.lengths = lengths[self.order]
        self.t_max = int(self.lengths[0])
        self.valid = np.arange(self.t_max) < self.lengths[:, None]
        starts = np.cumsum(lengths) - lengths
        self.tok = (starts[self.order][:, None] + np.arange(self.t_max))[self.valid]
        self.running = np.searchsorted(-self.lengths, -np.arange(self.t_max), side="left")
        self.rows = np.arange(len(lengths))
        self.cell_rows = np.nonzero(self.valid)[0]  # padded row of each valid cell

    def pad(self, flat):
        """(N, K) rows -> (n, T, K) float64; the cells past a sentence's end are left unset (never read)."""
        out = np.empty((len(self.lengths), self.t_max, flat.shape[1]))
        out[self.valid] = flat[self.tok]
        return out

    def unpad_marginals(self, alpha, beta, log_z):
        """(N, K) marginals exp(alpha + beta - log Z) in the flat order, worked out on real cells only."""
        out = np.empty((len(self.tok), alpha.shape[2]))
        out[self.tok] = alpha[self.valid]
        out[self.tok] += beta[self.valid]
        out[self.tok] -= log_z[self.cell_rows][:, None]
        return np.exp(out, out=out)


def forward_backward(E, layout, A, start, end):
    """alpha, beta (n, T, K) and log Z (n,) of padded emissions E under (constrained) scores."""
    n, t_max, k = E.shape
    expA = np.exp(A)
    running = layout.running
    alpha = np.empty_like(E)  # like E, set only within each sentence
    alpha[:, 0] = start + E[:, 0]
    for t in range(1, t_max):
        a = running[t]
        prev = alpha[:a, t - 1]
        m = _max(prev, axis=1, keepdims=True)
        alpha[:a, t] = E[:a, t] + m + np.log(np.maximum(np.exp(prev - m) @ expA, _TINY))
    last = alpha[layout.rows, layout.lengths - 1] + end
    m = _max(last, axis=1)
    log_z = m + np.log(np.exp(last - m[:, None]).sum(axis=1))
    beta = np.empty_like(E)
    beta[layout.rows, layout.lengths - 1] = end
    for t in range(t_max - 2, -1, -1):
        a = running[t + 1]
        nxt = E[:a, t + 1] + beta[:a, t + 1]
        m = _max(nxt, axis=1, keepdims=True)
        beta[:a, t] = m + np.log(np.maximum(np.exp(nxt - m) @ expA.T, _TINY))
    return alpha, beta, log_z


def marginals(s, lengths, A, start, end):
    """(N, K) posterior tag marginals of sentences laid end to end; A, start, end constrained."""
    layout = Layout(lengths)
    alpha, beta, log_z = forward_backward(layout.pad(s), layout, A, start, end)
    return layout.unpad_marginals(alpha, beta, log_z)


def crf_forward(s, lengths, y, A, start, end, allowed):
    """Mean over tokens of -log p(gold path), for sentences laid end to end.

    s: (N, K) tag scores; lengths: (n,) sentence lengths summing to N; y: (N,) gold tag ids (a valid
    path); A (K, K), start (K,), end (K,): transition scores; allowed: ``transitions(labels)``.
    Returns (J, cache).
    """
    lengths = np.asarray(lengths, dtype=np.intp)
    n_tok = len(y)
    A_c, start_c, end_c = constrained(A, start, end, allowed)
    layout = Layout(lengths)
    E = layout.pad(s)
    alpha, beta, log_z = forward_backward(E, layout, A_c, start_c, end_c)
    first = np.cumsum(lengths) - lengths
    last = first + lengths - 1
    inner = np.ones(n_tok, dtype=bool)
    inner[first] = False                                    # token t > 1 of its sentence: a gold step ends there
    gold = (s[np.arange(n_tok), y].sum(dtype=np.float64) + start_c[y[first]].sum() + end_c[y[last]].sum()
            + A_c[y[:-1], y[1:]][inner[1:]].sum())
    J = (log_z.sum() - gold) / n_tok
    cache = (s.dtype, y, first, last, inner, layout, E, alpha, beta, log_z, A_c)
    return J, cache


def crf_backward(dJ, cache):
    """(ds (N, K), dA (K, K), dstart (K,), dend (K,)) of ``crf_forward``'s J."""
    dtype, y, first, last, inner, layout, E, alpha, beta, log_z, A_c = cache
    n_tok, k = len(y), A_c.shape[0]
    scale = dJ / n_tok
    ds = layout.unpad_marginals(alpha, beta, log_z)        # (N, K)
    ds[np.arange(n_tok), y] -= 1.0
    # Pair marginals summed over all steps as one product: per step (row r, t > 1),
    # exp(alpha[r, t-1] - u) outer exp(E + beta at t - v), times exp(u + v - log Z_r), times exp(A).
    step = layout.valid.copy()
    step[:, 0] = False
    prev = alpha[:, :-1][step[:, 1:]]                       # (M, K) alpha at t-1 of each step
    here = E[step] + beta[step]                             # (M, K) at t
    u = _max(prev, axis=1, keepdims=True)
    v = _max(here, axis=1, keepdims=True)
    w = np.exp(u + v - log_z[np.nonzero(step)[0]][:, None])
    expected = np.exp(A_c) * (np.exp(prev - u).T @ (np.exp(here - v) * w))
    gold_pairs = np.bincount(y[:-1][inner[1:]] * k + y[1:][inner[1:]], minlength=k * k).reshape(k, k)
    dA = expected - gold_pairs
    dstart = ds[first].sum(axis=0)  # marginals of first tokens, gold already taken off
    dend = ds[last].sum(axis=0)
    return (ds * scale).astype(dtype), dA * scale, dstart * scale, dend * scale


def best_paths(s, lengths, A, start, end):
    """(N,) best tag ids of sentences laid end to end (Viterbi); A, start, end constrained."""
    layout = Layout(lengths)
    return viterbi(layout.pad(s), layout, A, start, end)


def viterbi(E, layout, A, start, end):
    """(N,) best tag ids, in the flat order, of padded emissions E (n, T, K)."""
    n, t_max, k = E.shape
    back = np.empty((n, t_max, k), dtype=np.int8 if k < 128 else np.int64)
    delta = E[:, 0] + start
    for t in range(1, t_max):
        a = layout.running[t]
        cand = delta[:a, :, None] + A                      # (a, K prev, K cur)
        back[:a, t] = cand.argmax(axis=1)
        delta[:a] = _max(cand, axis=1) + E[:a, t]
    cur = (delta + end).argmax(axis=1)
    tags = np.zeros((n, t_max), dtype=np.int64)
    for t in range(t_max - 1, -1, -1):
        a = layout.running[t]
        tags[:a, t] = cur[:a]
        if t > 0:
            cur[:a] = back[np.arange(a), t, cur[:a]]
    out = np.empty(len(layout.tok), dtype=np.int64)
    out[layout.tok] = tags[layout.valid]
    return out
