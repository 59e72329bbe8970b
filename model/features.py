"""From the words of sentences to the window id matrices of every feature table."""
import numpy as np

from model.vocab import BOS, CASES, EOS, UNK, Vocab, casing, normalize
from model.windows import window_positions

PAD = "<pad>"
AFFIX_SPECIALS = (UNK, PAD)
_CASE_INDEX = {name: i for i, name in enumerate(CASES)}


def affix(word, name, length):
    """The prefix or suffix of the normalised word that the feature ``name`` looks at."""
    norm = normalize(word)
    return norm[-length:] if name == "suffix" else norm[:length]


class Featurizer:
    """Turns words into ids for each table the config names: ``word``, and any of
    ``case``, ``suffix``, ``prefix``. ``vocabs`` maps ``word`` and each affix feature to a Vocab.
    """

    def __init__(self, config, vocabs):
        self.config = config
        self.vocabs = vocabs
        self.names = ["word", *config.features]
        for name in self.names:
            if name not in ("word", "case", "suffix", "prefix"):
                raise ValueError(f"unknown feature {name!r}: expected case, suffix or prefix")
            if name != "case" and name not in vocabs:
                raise ValueError(f"feature {name!r} needs a vocabulary")

    def table_size(self, name):
        return len(CASES) if name == "case" else len(self.vocabs[name])

    def pads(self, name):
        """(left, right) pad ids of a table."""
        if name == "word":
            return self.vocabs["word"].id(BOS), self.vocabs["word"].id(EOS)
        if name == "case":
            return 0, 0
        pad = self.vocabs[name].id(PAD)
        return pad, pad

    def token_ids(self, words):
        """{table name: (n,) int32 ids} for a flat list of words."""
        out = {}
        for name in self.names:
            if name == "word":
                out[name] = self.vocabs["word"].ids([normalize(w) for w in words])
            elif name == "case":
                out[name] = np.fromiter((_CASE_INDEX[casing(w)] for w in words), np.int32, len(words))
            else:
                length = self.config.affix_length
                out[name] = self.vocabs[name].ids([affix(w, name, length) for w in words])
        return out

    def token_batch(self, sentences):
        """Ids per token and window positions for sentences given as lists of words.

        Returns ({table name: (N + 2,) ids, the last two the left and right pads}, (N, 2r+1) positions
        into them); N counts all tokens. Windows are ``ids[name][positions]``.
        """
        lengths = [len(s) for s in sentences]
        ids = self.token_ids([w for s in sentences for w in s])
        padded = {name: np.concatenate([ids[name], np.array(self.pads(name), dtype=np.int32)]) for name in self.names}
        return padded, window_positions(lengths, self.config.radius)

    def windows(self, sentences):
        """{table name: (N, 2r+1) ids} for sentences given as lists of words; N counts all tokens."""
        padded, positions = self.token_batch(sentences)
        return {name: padded[name][positions] for name in self.names}


def build_affix_vocab(words, name, length, min_count=1):
    """Affixes seen at least ``min_count`` times in ``words``, most frequent first."""
    counts = {}
    for w in words:
        a = affix(w, name, length)
        counts[a] = counts.get(a, 0) + 1
    kept = sorted((a for a, n in counts.items() if n >= min_count), key=lambda a: (-counts[a], a))
    return Vocab(kept, specials=AFFIX_SPECIALS)
