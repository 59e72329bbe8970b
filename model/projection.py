"""The hidden layer's input, z = x W^T + b, for token windows at serving time, without building x.

x is the window's slot vectors side by side, so x W^T is a sum over window slots s and feature
tables t of W[:, columns of (s, t)] @ table_t[id of the word in slot s]. The product of a table row
with each slot's block of W depends on the row alone: for the most frequent words (vocabularies
are stored most frequent first) and for small tables it is worked out once at load time, and a
window's z is then a sum of stored rows. Rows not stored are projected per request for the tokens
that use them, once per token rather than once per window slot.
"""
import numpy as np

from model.gazetteer import GAZETTEER, category_of
from model.network import table_dims, table_key, table_names

STORED_ROWS = 4096  # per table: 4096 x (2r+1) x H float32 is 24 MB for r = 2, H = 300
_CHUNK = 256  # tokens per step: the (256, H) sums being built stay in the core's own cache while each slot is added
_SMALL = 256  # batches of up to this many tokens gather whole rows (fewer numpy calls)
SMALL_TABLE = 64  # tables of this many rows or fewer (casing, gazetteer positions) are read as one
_COMBINATIONS_KEPT = 4096
_KEYS_LOOKED_UP = 1 << 20  # combinations found through an array of every key (4 MB at most) up to this many keys


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
            # (rows + 1, window * H): the stored rows' terms, then a row of zeros for any row not stored;
            # and a view of each slot's (rows + 1, H) columns.
            stored = np.zeros((rows + 1, w.shape[1]), dtype=np.float32)
            np.matmul(table[:rows], w, out=stored[:rows])  # in place: no second copy of it, even for a moment
            slots = [stored[:, s * self.hidden: (s + 1) * self.hidden] for s in range(self.window)]
            self.tables.append((name, table, w, (stored, slots), rows))
            start += dim
        # Several small tables (casing and a gazetteer's categories) are read as one: a token's ids
        # in all of them are one combination, whose summed terms are worked out once and kept, so a
        # window reads two tables (words and combinations) however many small ones the model has.
        small, size = [], 1
        for t in self.tables:
            if len(t[1]) <= SMALL_TABLE and t[4] == len(t[1]) and size * len(t[1]) < 2 ** 62:
                small.append(t)  # a combination's key is an int64: tables past that are read apart
                size *= len(t[1])
        self.small = small if len(small) > 1 else []
        self.strides = np.cumprod([1] + [len(t[1]) for t in self.small[:-1]]).astype(np.int64)
        # The gazetteer's tables come as the columns of one matrix too (``GAZETTEER``): one product
        # gives their part of every token's key.
        gaz = [n for n in table_names(config) if category_of(n) is not None]
        at = [i for i, t in enumerate(self.small) if category_of(t[0]) is not None]
        self.key_parts = [(t[0], int(self.strides[i])) for i, t in enumerate(self.small) if i not in at]
        self.gaz_key = None
        if at:
            columns = [gaz.index(self.small[i][0]) for i in at]
            self.gaz_key = (None if columns == list(range(len(gaz))) else columns, self.strides[at],
                            [(self.small[i][0], int(self.strides[i])) for i in at])
        self.others = [t for t in self.tables if not any(t is u for u in self.small)]
        self._forget_combinations(64)

    def _forget_combinations(self, capacity):
        """An empty store of combinations: their keys' rows (a dict, and as an array over every key
        when there are few enough keys: one gather finds a request's), and the rows (summed terms,
        window * H)."""
        self.combination_row = {}
        keys = int(np.prod([len(t[1]) for t in self.small])) if self.small else 0
        self._row_of_key = np.full(keys, -1, dtype=np.int32) if keys <= _KEYS_LOOKED_UP else None
        self._grow_combinations(capacity)

    def _grow_combinations(self, capacity):
        rows = np.zeros((capacity, self.window * self.hidden), dtype=np.float32)
        if self.combination_row:
            rows[: len(self.combination_row)] = self._combinations[: len(self.combination_row)]
        self._combinations = rows
        self._combination_slots = [rows[:, s * self.hidden: (s + 1) * self.hidden] for s in range(self.window)]

    def _block(self, W, config, start, dim):
        """(dim, window * H): a row of ``dim`` inputs at ``start`` of a slot, times this, gives its
        term for every slot at once."""
        columns = [slice(s * config.slot_dim + start, s * config.slot_dim + start + dim) for s in range(self.window)]
        return np.ascontiguousarray(np.concatenate([W[:, c].T for c in columns], axis=1))

    def batch_tables(self, ids):
        """(ids, tables) of a batch: the small tables replaced by the store of the combinations of
        their ids (each worked out once, in table order, and kept)."""
        if not self.small:
            return ids, self.tables
        key = self._keys(ids)
        lookup = self._row_of_key
        if lookup is not None and len(key) <= _SMALL:  # a request: its rows in one gather
            rows = lookup[key]
            if (rows >= 0).all():
                return self._with_combinations(ids, rows)
        if len(key) <= _SMALL:  # a request: a dict finds its few combinations faster than np.unique
            inverse, keys = None, key.tolist()
        else:
            keys, first, inverse = np.unique(key, return_index=True, return_inverse=True)
            keys = keys.tolist()
        get = self.combination_row.get
        rows = [get(k, -1) for k in keys]
        if -1 in rows:
            rows = self._add_combinations(ids, keys, rows, range(len(keys)) if inverse is None else first.tolist())
        rows = np.array(rows, dtype=np.intp)
        return self._with_combinations(ids, rows if inverse is None else rows[inverse.reshape(-1)])

    def _with_combinations(self, ids, rows):
        n = len(self.combination_row)
        stored = (self._combinations, self._combination_slots)
        return {**ids, "<small>": rows}, self.others + [("<small>", self._combinations[:n], None, stored, n)]

    def _keys(self, ids):
        """(T,) int64: each token's combination of the small tables' ids."""
        parts, key = self.key_parts, None
        if self.gaz_key is not None:
            columns, strides, apart = self.gaz_key
            matrix = ids.get(GAZETTEER)
            if matrix is None:
                parts = parts + apart
            else:
                key = (matrix if columns is None else matrix[:, columns]) @ strides
        if key is None:
            key = np.zeros(len(ids["word"]), dtype=np.int64)
        for name, stride in parts:
            key += ids[name] if stride == 1 else ids[name].astype(np.int64) * stride
        return key

    def _add_combinations(self, ids, keys, rows, at):
        """``rows`` with the combinations not stored yet added to the store; ``at``: a token holding each key."""
        new = dict.fromkeys(k for k, r in zip(keys, rows) if r == -1)
        if len(self.combination_row) + len(new) > _COMBINATIONS_KEPT:  # a full store starts again
            self._forget_combinations(64)
            new, rows = dict.fromkeys(keys), [-1] * len(keys)
        needed = len(self.combination_row) + len(new)
        if needed > len(self._combinations):
            self._grow_combinations(max(needed, 2 * len(self._combinations)))
        store = self.combination_row
        for j, (k, token) in enumerate(zip(keys, at)):
            if rows[j] == -1:
                if k not in store:
                    self._combinations[len(store)] = self._combination(ids, token)
                    store[k] = len(store)
                    if self._row_of_key is not None:
                        self._row_of_key[k] = store[k]
                rows[j] = store[k]
        return rows

    def _combination(self, ids, at):
        """The summed terms of the small tables' rows that token ``at`` reads, in table order."""
        row = None
        for name, _, _, (stored, _), _ in self.small:
            part = stored[ids[name][at]]
            row = part.copy() if row is None else row + part
        return row

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

        A token's term in a slot is the sum over tables of its stored row (or, for a row not stored,
        its product worked out once per token), plus an unknown word's characters' term; a window's z
        is the sum of its slots' terms, slot by slot, plus b. Small batches gather each token's terms
        for every slot at once, then the windows' slots; large ones gather each slot of every window
        straight from the stored rows, so that what is being summed stays in cache. Both add the same
        numbers in the same order: a text gets the same z alone or in any batch (to within float32
        rounding for rows not stored, whose products BLAS may round differently for another batch)."""
        ids, tables = self.batch_tables(ids)
        if len(positions) <= _SMALL:
            return self._gathered(ids, tables, positions, unknown)
        window, hidden = self.window, self.hidden
        steps = np.arange(0, len(positions) + _CHUNK, _CHUNK)
        per_table = []  # (ids into the stored rows, (row of each token's own term or -1, the terms) or None)
        for name, table, w, _, rows in tables:
            tid, own = ids[name], None
            if rows < len(table):
                missing = (tid >= rows).nonzero()[0]
                if len(missing):
                    own = (_indexed(len(tid), missing), table[tid[missing]] @ w)
                    tid = np.minimum(tid, rows)  # row ``rows`` of the stored terms is zeros
            per_table.append((tid, own))
        chars = None
        if unknown is not None and len(unknown[0]):
            chars = (_indexed(len(ids["word"]), unknown[0]), unknown[2])
        if len(per_table) == 2 and per_table[0][1] is not None and per_table[1][1] is None:
            # Words and one table stored whole (casing, in the shipped model): a word not stored has a
            # stored term of 0, so its own term added after the other table's is the same sum,
            # (0 + case) + own == (0 + own) + case; and such a word is never one outside the
            # vocabulary. Both kinds of own terms are then added in one go.
            chars = _merged(per_table[0][1], chars)
            per_table[0] = (per_table[0][0], None)
        per_table = [(tid, own and _slot_rows(*own, positions, steps)) for tid, own in per_table]
        chars = chars and _slot_rows(*chars, positions, steps)
        z = np.empty((len(positions), hidden), dtype=np.float32)
        for step, lo in enumerate(steps[:-1].tolist()):
            pos = positions[lo: lo + _CHUNK]
            acc = z[lo: lo + _CHUNK]
            for s in range(window):
                at_slot, cols = pos[:, s], slice(s * hidden, (s + 1) * hidden)
                term = None
                for (_, _, _, (_, slots), _), (tid, own) in zip(tables, per_table):
                    part = slots[s][tid[at_slot]]  # indexing a view gathers just its columns; take would copy it
                    if term is None:
                        term = part
                    else:
                        term += part
                    if own is not None:
                        _add_rows(term, own, s, step, lo, cols)
                if chars is not None:
                    _add_rows(term, chars, s, step, lo, cols)
                if s == 0:
                    acc[...] = term
                else:
                    acc += term
            acc += self.b
        return z

    def _gathered(self, ids, tables, positions, unknown):
        """z of a small batch: each token's terms for every slot, then each window's slots summed."""
        terms = None  # (T, window * H)
        for name, table, w, (stored, _), rows in tables:
            tid = ids[name]
            part = stored.take(tid, axis=0, mode="clip")  # ids past the stored rows: replaced below
            if rows < len(table):
                missing = (tid >= rows).nonzero()[0]
                if len(missing):
                    part[missing] = table[tid[missing]] @ w
            if terms is None:
                terms = part
            else:
                terms += part
        if unknown is not None and len(unknown[0]):
            terms[unknown[0]] += unknown[2]
        slot_terms = terms.reshape(-1, self.hidden)                              # (T * window, H)
        z = np.add.reduce(slot_terms.take(positions * self.window + np.arange(self.window), axis=0), axis=1)
        z += self.b
        return z


def _indexed(n_tokens, tokens):
    """(T,) the row of each of ``tokens`` (0, 1, ...), -1 for the others."""
    out = np.full(n_tokens, -1, dtype=np.intp)
    out[tokens] = np.arange(len(tokens))
    return out


def _merged(own, chars):
    """One (row of each token or -1, rows) of two such for disjoint sets of tokens (``chars`` may be None)."""
    if chars is None:
        return own
    row_of = own[0].copy()
    at = chars[0] >= 0
    row_of[at] = chars[0][at] + len(own[1])
    return row_of, np.vstack([own[1], chars[1]])


def _slot_rows(row_of, rows, positions, steps):
    """For each window slot s: (the windows (W_s,) whose slot s holds a token with a row of its own,
    that row's number in ``rows`` for each, where each step of windows starts among them), and ``rows``.
    row_of: (T,) the row of each token, -1 for none; steps: (n + 1,) the first window of each step."""
    per_slot = []
    for s in range(positions.shape[1]):
        e = row_of[positions[:, s]]
        at = (e >= 0).nonzero()[0]
        per_slot.append((at, e[at], np.searchsorted(at, steps)))
    return per_slot, rows


def _add_rows(term, own, s, step, lo, cols):
    """term[i] += the ``cols`` of its token's own row, for the windows of this step whose slot ``s``
    holds such a token (``_slot_rows``); ``lo``: the step's first window."""
    (at, e, bounds), rows = own[0][s], own[1]
    a, b = bounds[step], bounds[step + 1]
    if b > a:
        term[at[a:b] - lo] += rows[e[a:b], cols]
