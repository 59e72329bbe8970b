"""Vocabularies and the discrete features a token contributes to its window slot."""
import re

import numpy as np

UNK, BOS, EOS = "<unk>", "<s>", "</s>"
SPECIALS = (UNK, BOS, EOS)

CASES = ("<pad>", "lower", "upper", "title", "mixed", "numeric", "punct", "other")
_DIGIT = re.compile(r"\d")


def bare(word):
    """A #hashtag or @mention without its mark: the word it is made of."""
    return word[1:] if len(word) > 1 and word[0] in "#@" else word


def normalize(word):
    """Lower-case, map every digit to 0 and drop a hashtag's or mention's mark: the form word vectors
    are looked up by."""
    return _DIGIT.sub("0", bare(word).lower())


def casing(word):
    """One of CASES: the information that lower-casing throws away."""
    if not any(ch.isalnum() for ch in word):
        return "punct"
    if not any(ch.isalpha() for ch in word):
        return "numeric"
    if word.islower():
        return "lower"
    if word.isupper():
        return "upper"
    rest_has_upper = any(ch.isupper() for ch in word[1:])
    if word[0].isupper() and not rest_has_upper:
        return "title"
    if rest_has_upper:
        return "mixed"
    return "other"


class Vocab:
    """Strings to ids. Index 0..len(specials)-1 are the specials; unknown strings map to ``unk``."""

    def __init__(self, words, specials=SPECIALS, unk=UNK):
        self.words = list(specials) + [w for w in words if w not in set(specials)]
        self.index = {w: i for i, w in enumerate(self.words)}
        if len(self.index) != len(self.words):
            raise ValueError("vocabulary holds a word twice")
        self.unk_id = self.index[unk]

    def __len__(self):
        return len(self.words)

    def ids(self, strings):
        """(n,) int32 ids of ``strings``."""
        get, unk = self.index.get, self.unk_id
        return np.fromiter((get(s, unk) for s in strings), dtype=np.int32, count=len(strings))

    def id(self, string):
        return self.index[string]
