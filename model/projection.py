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
_CHUNK = 512  # tokens per step: the (512, H) sum being built stays in cache while each slot is added


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
            rows = min(len(table), stored_rows)
            # Per slot, (rows + 1, H): the stored rows' terms, then a row of zeros for any row not stored.
            full = np.vstack([table[:rows] @ w, np.zeros((1, w.shape[1]), dtype=np.float32)])
            stored = [np.ascontiguousarray(full[:, s * self.hidden: (s + 1) * self.hidden])
                      for s in range(self.window)]
            self.tables.append((name, table, w, stored, rows))
            start += dim

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
        characters). Returns (N, H) float32.

        Each window slot's term is gathered straight from the stored rows (rows past them read a
        row of zeros); tokens whose rows are not stored, and unknown words' characters, have their
        terms worked out once per token and added to the windows they sit in. Every token's sum
        is taken in the same order whatever else the batch holds."""
        window, hidden = self.window, self.hidden
        z = np.empty((len(positions), hidden), dtype=np.float32)
        stored_ids = []
        extra_of = extra = None
        for name, table, w, stored, rows in self.tables:
            tid = ids[name]
            if rows < len(table):
                missing = (tid >= rows).nonzero()[0]
                if len(missing):
                    if extra_of is None:
                        extra_of = np.full(len(tid), -1, dtype=np.intp)
                        extra = []
                    terms = (table[tid[missing]] @ w).reshape(len(missing), window, hidden)
                    extra_of, extra = self._add_extra(extra_of, extra, missing, terms)
                    tid = np.minimum(tid, rows)  # row ``rows`` of the stored table is zeros
            stored_ids.append(tid)
        if unknown is not None and len(unknown[0]):
            if extra_of is None:
                extra_of, extra = np.full(len(stored_ids[0]), -1, dtype=np.intp), []
            extra_of, extra = self._add_extra(extra_of, extra, unknown[0],
                                              unknown[2].reshape(len(unknown[0]), window, hidden))
        if extra is not None:
            extra = np.concatenate(extra) if len(extra) > 1 else extra[0]
        for lo in range(0, len(positions), _CHUNK):
            pos = positions[lo: lo + _CHUNK]
            acc = z[lo: lo + _CHUNK]
            first = True
            for (_, _, _, stored, _), tid in zip(self.tables, stored_ids):
                for s in range(window):
                    if first:
                        np.take(stored[s], tid[pos[:, s]], axis=0, out=acc)
                        first = False
                    else:
                        acc += stored[s].take(tid[pos[:, s]], axis=0)
            if extra is not None:
                for s in range(window):
                    e = extra_of[pos[:, s]]
                    at = (e >= 0).nonzero()[0]
                    if len(at):
                        acc[at] += extra[e[at], s]
            acc += self.b
        return z

    @staticmethod
    def _add_extra(extra_of, extra, tokens, terms):
        """Terms (M, window, H) of ``tokens`` added to the per-token extras (one row per token)."""
        offset = sum(len(e) for e in extra)
        have = extra_of[tokens]
        new = have < 0
        if new.any():
            extra_of[tokens[new]] = offset + np.arange(int(new.sum()))
            extra.append(terms[new].copy())
        if (~new).any():  # a token with both a row not stored and unknown characters: add them up
            merged = np.concatenate(extra) if len(extra) > 1 else extra[0]
            merged[have[~new]] += terms[~new]
            extra[:] = [merged]
        return extra_of, extra
