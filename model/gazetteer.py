"""Phrase lists by category, matched in sentences: the knowledge the window's five words cannot hold.

A gazetteer holds, for each category (e.g. ``first``, ``last``, ``LOC``, ``ORG``, ``MISC``, or a
user's own type), phrases of up to ``MAX_WORDS`` words, normalised as the vocabulary reads words
(``model.vocab.normalize``), or kept exactly as written for entries that ask for case. In a
sentence, each category's matches are its longest phrases, left to right, not overlapping one
another; token t gets, per category, its position in a match: 0 none, 1 B, 2 I, 3 E, 4 S
(SPEC 2b). The network reads those ids through a small embedding table per category, exactly as
it reads casing.
"""
import bisect
import itertools

import numpy as np

from model.vocab import normalize

MAX_WORDS = 12  # the longest phrase matched (the public lists keep to 4: training/gazetteer.py)
NONE, B, I, E, S = range(5)
POSITIONS = 5
GAZETTEER = "<gazetteer>"  # a batch's (T, categories) position ids, beside each category's column
_SEEN_WORDS = 200_000


class Gazetteer:
    """Phrases per category. ``phrases``: {category: iterable of word tuples, normalised}; ``exact``:
    {category: iterable of word tuples matched as written}."""

    def __init__(self, categories, phrases=None, exact=None):
        self.categories = list(categories)
        self.phrases = {c: set() for c in self.categories}
        self.exact = {c: set() for c in self.categories}
        for c, items in (phrases or {}).items():
            self.phrases[c].update(tuple(p) for p in items)
        for c, items in (exact or {}).items():
            self.exact[c].update(tuple(p) for p in items)
        self._index()

    def _index(self):
        # phrase -> bit mask of its categories, and first word -> the longest phrase it starts.
        self._lookup, self._exact_lookup, self._starts, self._exact_starts = {}, {}, {}, {}
        self._seen = {}  # word -> (normalised, longest phrase it starts, longest exact one, one-word categories)
        self._categories_of = {0: ()}  # category bit mask -> its categories
        for bit, c in enumerate(self.categories):
            for table, starts, items in ((self._lookup, self._starts, self.phrases[c]),
                                         (self._exact_lookup, self._exact_starts, self.exact[c])):
                for p in items:
                    if 0 < len(p) <= MAX_WORDS:
                        table[p] = table.get(p, 0) | (1 << bit)
                        starts[p[0]] = max(starts.get(p[0], 0), len(p))
        # The first two words of every longer phrase.
        self._pairs = {p[:2] for p in self._lookup if len(p) > 1}
        self._exact_pairs = {p[:2] for p in self._exact_lookup if len(p) > 1}

    def __len__(self):
        return sum(len(self.phrases[c]) + len(self.exact[c]) for c in self.categories)

    def with_entries(self, phrases=(), exact=()):
        """A new gazetteer: this one plus (category, word tuple) entries, normalised or exact."""
        out = Gazetteer(self.categories, self.phrases, self.exact)
        for c, p in phrases:
            out.phrases[c].add(tuple(p))
        for c, p in exact:
            out.exact[c].add(tuple(p))
        out._index()
        return out

    def spans(self, words):
        """[(category index, start, end)] of a sentence's matches (end exclusive), per category the
        longest phrase at each place, left to right, none overlapping another of its category."""
        return self.sentence_spans([words])

    def sentence_spans(self, sentences):
        """[(category index, start, end)] of the matches of ``sentences`` (word lists), their tokens
        counted end to end: each sentence's ``spans``."""
        words = [w for s in sentences for w in s]
        if len(self._seen) > _SEEN_WORDS:
            self._seen.clear()
        # Per distinct word, worked out once: its normalised form, the longest phrases it may start, and
        # the categories of its one-word entries.
        get = self._seen.get
        info = [get(w) or self._word(w) for w in words]
        starts = [i for i, x in enumerate(info) if x[1] or x[2]]
        if not starts:
            return []
        n = len(words)
        ends = None  # where each sentence ends, for the few tokens that start a longer phrase
        taken = [0] * len(self.categories)  # per category: where its last match ended
        found = []
        for i in starts:
            norm, longest, longest_exact, singles = info[i]
            # A longer phrase needs its first two words in one sentence: the pair is looked up first.
            if i + 1 < n and ((longest > 1 and (norm, info[i + 1][0]) in self._pairs)
                              or (longest_exact > 1 and (words[i], words[i + 1]) in self._exact_pairs)):
                if ends is None:
                    ends = list(itertools.accumulate(map(len, sentences)))
                candidates = self._longer(words, info, i, ends[bisect.bisect_right(ends, i)])
                if candidates:
                    for length, mask in sorted(candidates, reverse=True):
                        for c in range(len(self.categories)):
                            if mask >> c & 1 and taken[c] <= i:
                                found.append((c, i, i + length))
                                taken[c] = i + length
                    continue
            for c in singles:  # most starts: a one-word entry and nothing longer
                if taken[c] <= i:
                    found.append((c, i, i + 1))
                    taken[c] = i + 1
        return found

    def _longer(self, words, info, i, end):
        """[(length, category mask)] of the phrases of two words or more at token ``i`` (its sentence
        ending at ``end``), and its one-word entry's; empty when no longer phrase is there."""
        candidates = []
        for kind, table, pairs, seq in ((1, self._lookup, self._pairs, None),
                                        (2, self._exact_lookup, self._exact_pairs, words)):
            longest = info[i][kind]
            if longest < 2 or i + 1 >= end:
                continue
            at = (lambda j: info[j][0]) if seq is None else seq.__getitem__
            if (at(i), at(i + 1)) not in pairs:
                continue
            for length in range(min(longest, end - i), 1, -1):
                mask = table.get(tuple(at(j) for j in range(i, i + length)))
                if mask:
                    candidates.append((length, mask))
        if candidates:
            single = self._lookup.get((info[i][0],), 0) | self._exact_lookup.get((words[i],), 0)
            if single:
                candidates.append((1, single))
        return candidates

    def _word(self, word):
        norm = normalize(word)
        mask = self._lookup.get((norm,), 0)
        if self._exact_lookup:
            mask |= self._exact_lookup.get((word,), 0)
        singles = self._categories_of.get(mask)
        if singles is None:
            singles = self._categories_of[mask] = tuple(c for c in range(len(self.categories)) if mask >> c & 1)
        info = self._seen[word] = (norm, self._starts.get(norm, 0), self._exact_starts.get(word, 0), singles)
        return info

    def positions(self, sentences, pads=0):
        """(N + pads, categories) int32 position ids of the tokens of ``sentences`` (word lists) laid
        end to end, then ``pads`` rows of none."""
        return position_ids(self.sentence_spans(sentences), sum(len(s) for s in sentences) + pads,
                            len(self.categories))

    def to_arrays(self):
        """{name: uint8 array} for the artifact's npz: each category's phrases, a line each."""
        arrays = {}
        for kind, lists in (("phrases", self.phrases), ("exact", self.exact)):
            for i, c in enumerate(self.categories):
                text = "\n".join(sorted(" ".join(p) for p in lists[c]))
                arrays[f"gazetteer_{kind}_{i}"] = np.frombuffer(text.encode("utf-8"), dtype=np.uint8)
        return arrays

    @classmethod
    def from_arrays(cls, categories, arrays):
        lists = {}
        for kind in ("phrases", "exact"):
            lists[kind] = {}
            for i, c in enumerate(categories):
                text = bytes(arrays[f"gazetteer_{kind}_{i}"]).decode("utf-8")
                lists[kind][c] = [tuple(line.split(" ")) for line in text.split("\n") if line]
        return cls(categories, lists["phrases"], lists["exact"])


def position_ids(spans, n, categories):
    """(n, categories) int32: B, I, E or S of each token in the ``spans`` [(category, start, end)] of
    its category, else 0."""
    out = np.zeros((n, categories), dtype=np.int32)
    if len(spans) < 64:  # a request's few matches: fewer steps one by one than numpy's calls cost
        for c, start, end in spans:
            if end - start == 1:
                out[start, c] = S
            else:
                out[start, c], out[start + 1: end - 1, c], out[end - 1, c] = B, I, E
        return out
    c, start, end = np.asarray(spans, dtype=np.int64).reshape(-1, 3).T
    single = end - start == 1
    out[start[single], c[single]] = S
    many = ~single
    inner = end[many] - start[many] - 2
    rows = np.repeat(start[many] + 1, inner) + (np.arange(inner.sum()) - np.repeat(np.cumsum(inner) - inner, inner))
    out[rows, np.repeat(c[many], inner)] = I
    out[start[many], c[many]] = B
    out[end[many] - 1, c[many]] = E
    return out


def feature_name(category):
    """The feature table of a category: ``gaz_<category>``."""
    return f"gaz_{category}"


def category_of(feature):
    return feature[4:] if feature.startswith("gaz_") else None
