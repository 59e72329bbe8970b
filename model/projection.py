"""The hidden layer's input, z = x W^T + b, for token windows at serving time, without building x.

x is the window's slot vectors side by side, so x W^T is a sum over window slots s and feature
tables t of W[:, columns of (s, t)] @ table_t[id of the word in slot s]. The product of a table row
with each slot's block of W depends on the row alone: for the most frequent words (vocabularies
are stored most frequent first) and for small tables it is worked out once at load time, and a
window's z is then a sum of stored rows. Rows not stored are projected per request for the tokens
that use them, once per token rather than once per window slot.
"""
import numpy as np

from model.network import table_dims, table_key, table_names

STORED_ROWS = 4096  # per table: 4096 x (2r+1) x H float32 is 24 MB for r = 2, H = 300
_CHUNK = 512  # tokens per step, so a large batch never holds a (N, 2r+1, H) array whole


class WindowProjection:
    """z (N, H) = x W^T + b for windows given as token ids and window positions."""

    def __init__(self, params, config, stored_rows=STORED_ROWS, word_chars=None):
        """word_chars: (V, F) character vectors of the vocabulary's words, with character features.

        A word's character vector depends on the word alone, so it is part of the word's row: the
        products of both with their blocks of W are stored together for the most frequent words."""
        self.window, self.hidden = config.window, config.hidden
        self.b = params["b"]
        self.tables = []
        self.char_w = None
        start = 0
        for name, dim in zip(table_names(config), table_dims(config)):
            table = params[table_key(name)]
            w = self._block(params["W"], config, start, dim)                  # (dim, window * H)
            if name == "word" and word_chars is not None:
                self.char_w = self._block(params["W"], config, config.slot_dim - word_chars.shape[1],
                                          word_chars.shape[1])
                table = np.ascontiguousarray(np.hstack([table, word_chars]))
                w = np.vstack([w, self.char_w])
                self.char_w64 = self.char_w.astype(np.float64)
            stored = table[:stored_rows] @ w                                  # (rows, window * H)
            self.tables.append((name, table, w, stored, min(len(table), stored_rows)))
            start += dim
        self._slots = np.arange(self.window)

    def _block(self, W, config, start, dim):
        """(dim, window * H): a row of ``dim`` inputs at ``start`` of a slot, times this, gives its
        term for every slot at once."""
        columns = [slice(s * config.slot_dim + start, s * config.slot_dim + start + dim) for s in range(self.window)]
        return np.ascontiguousarray(np.concatenate([W[:, c].T for c in columns], axis=1))

    def char_terms(self, vectors):
        """(M, window * H) float32: the terms of character vectors (M, F) for every slot.

        In float64, so that a word's term does not depend on how many others share the product
        (BLAS takes other paths for one row than for many): the same text gets the same answer
        alone or in a batch."""
        return (vectors.astype(np.float64) @ self.char_w64).astype(np.float32)

    def __call__(self, ids, positions, unknown=None):
        """ids: {table name: (T,) ids}; positions: (N, 2r+1) indices into them; unknown: with
        character features, (token indices (M,), their character vectors (M, F), ``char_terms`` of
        them) for the words the vocabulary does not hold (their word row is <unk>'s, which has no
        characters). Returns (N, H) float32."""
        if len(positions) <= _CHUNK:
            return self._windows(ids, positions, unknown)
        z = np.empty((len(positions), self.hidden), dtype=np.float32)
        for lo in range(0, len(positions), _CHUNK):
            tokens, local = np.unique(positions[lo: lo + _CHUNK], return_inverse=True)
            part = None
            if unknown is not None:
                at = np.searchsorted(tokens, unknown[0]).clip(0, len(tokens) - 1)
                inside = tokens[at] == unknown[0]
                part = (at[inside], unknown[1][inside], unknown[2][inside])
            z[lo: lo + _CHUNK] = self._windows({name: tid[tokens] for name, tid in ids.items()},
                                               local.reshape(-1, self.window), part)
        return z

    def _windows(self, ids, positions, unknown=None):
        terms = None  # (T, window * H): each token's term for every slot it can sit in
        for name, table, w, stored, rows in self.tables:
            tid = ids[name]
            if rows:
                part = stored.take(tid, axis=0, mode="clip")  # ids past the stored rows: replaced below
            else:
                part = np.empty((len(tid), w.shape[1]), dtype=np.float32)
            if rows < len(table):
                missing = (tid >= rows).nonzero()[0]
                if len(missing):
                    part[missing] = table[tid[missing]] @ w
            if terms is None:
                terms = part
            else:
                terms += part  # both are this call's own arrays
        if unknown is not None and len(unknown[0]):
            terms[unknown[0]] += unknown[2]
        slot_terms = terms.reshape(-1, self.hidden)                               # (T * window, H)
        z = np.add.reduce(slot_terms.take(positions * self.window + self._slots, axis=0), axis=1)
        z += self.b
        return z
