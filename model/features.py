"""From the words of sentences to the window id matrices of every feature table."""
import numpy as np

from model.casing import REGIMES, sentence_regimes, word_form
from model.gazetteer import GAZETTEER, POSITIONS, category_of
from model.vocab import BOS, CASES, EOS, SPECIALS, UNK, Vocab, bare, casing, normalize
from model.windows import window_positions

PAD = "<pad>"
AFFIX_SPECIALS = (UNK, PAD)
# Characters: the pad is id 0 (model.layers.char_conv_forward reads a word's length from it).
CHAR_SPECIALS = (PAD, UNK, "<w>", "</w>")
_CASE_INDEX = {name: i for i, name in enumerate(CASES)}
_CACHE_WORDS = 200_000


def affix(word, name, length):
    """The prefix or suffix of the normalised word that the feature ``name`` looks at."""
    norm = normalize(word)
    return norm[-length:] if name == "suffix" else norm[:length]


class Featurizer:
    """Turns words into ids for each table the config names: ``word``, and any of
    ``case``, ``suffix``, ``prefix``, and ``gaz_<category>`` for each category of a gazetteer
    (``model.gazetteer``). ``vocabs`` maps ``word`` and each affix feature to a Vocab.
    """

    def __init__(self, config, vocabs, gazetteer=None):
        self.config = config
        self.vocabs = vocabs
        self.names = ["word", *config.features]
        # Tables whose ids depend on the word alone; a gazetteer's depend on its neighbours too.
        self.gaz_names = [n for n in self.names if category_of(n) is not None]
        self.word_names = [n for n in self.names if n not in self.gaz_names]
        self.gazetteer = None
        if self.gaz_names:
            self.use_gazetteer(gazetteer)
        # The casing table holds one row per casing and sentence regime when the model reads them together.
        self.regimes = "case" in config.features and config.case_regimes
        self._cache = {}  # word -> its row of _table
        self._table = np.zeros((0, len(self.word_names) + 1), dtype=np.int32)
        self._positions = {}  # window positions of a lone sentence, by its length
        self.chars = config.chars
        if self.chars and "chars" not in vocabs:
            raise ValueError("character features need a character vocabulary")
        self._spellings = None
        self._char_points = None
        for name in self.word_names:
            if name not in ("word", "case", "suffix", "prefix"):
                raise ValueError(f"unknown feature {name!r}: expected case, suffix, prefix or gaz_<category>")
            if name != "case" and name not in vocabs:
                raise ValueError(f"feature {name!r} needs a vocabulary")
        pads = [self.pads(name) for name in self.word_names]
        # The left and right pad ids of every table, then a pad's form.
        self._pad_rows = ([p[0] for p in pads] + [0], [p[1] for p in pads] + [0])

    def use_gazetteer(self, gazetteer):
        """Match with ``gazetteer`` from now on (the model's lists, or those plus a user's dictionary)."""
        wanted = [category_of(n) for n in self.gaz_names]
        if gazetteer is None or gazetteer.categories != wanted:
            raise ValueError(f"the features {self.gaz_names} need a gazetteer of the categories {wanted}")
        self.gazetteer = gazetteer

    def table_size(self, name):
        if category_of(name) is not None:
            return POSITIONS
        if name == "chars":
            return len(self.vocabs["chars"])
        if name == "case":
            return len(CASES) * (len(REGIMES) if self.regimes else 1)
        return len(self.vocabs[name])

    def pads(self, name):
        """(left, right) pad ids of a table."""
        if category_of(name) is not None:
            return 0, 0
        if name == "word":
            return self.vocabs["word"].id(BOS), self.vocabs["word"].id(EOS)
        if name == "case":
            return 0, 0
        pad = self.vocabs[name].id(PAD)
        return pad, pad

    def word_ids(self, word):
        """The id of ``word`` in every table of ``word_names``, in order, then its form (``model.casing``)."""
        ids = []
        for name in self.word_names:
            if name == "word":
                ids.append(self.vocabs["word"].index.get(normalize(word), self.vocabs["word"].unk_id))
            elif name == "case":
                ids.append(_CASE_INDEX[casing(bare(word))])
            else:
                vocab = self.vocabs[name]
                ids.append(vocab.index.get(affix(word, name, self.config.affix_length), vocab.unk_id))
        ids.append(word_form(word))
        return tuple(ids)

    def token_ids(self, words, extra_rows=()):
        """{table name: (n,) int32 ids, and "form": (n,) word forms} for a flat list of words, then
        any ``extra_rows`` of ids. One call at a time (a model's passes hold ``Model.lock``)."""
        # A word's ids depend on its string alone, so they are worked out once per distinct word and
        # kept as a row of a table; a batch is then one lookup of row numbers and one gather.
        cache = self._cache
        if len(cache) > _CACHE_WORDS:
            cache.clear()
            self._table = self._table[:0]
        get = cache.get
        index = [get(w, -1) for w in words]
        width = len(self.word_names) + 1
        if -1 in index:
            new = []
            for i, w in enumerate(words):
                if index[i] == -1:
                    index[i] = get(w, -1)
                    if index[i] == -1:
                        index[i] = cache[w] = len(self._table) + len(new)
                        new.append(self.word_ids(w))
            self._table = np.vstack([self._table, np.array(new, dtype=np.int32).reshape(-1, width)])
        table = self._table[np.array(index, dtype=np.intp)] if index else self._table[:0]
        if extra_rows:
            table = np.vstack([table, np.array(extra_rows, dtype=np.int32)])
        return {name: table[:, i] for i, name in enumerate([*self.word_names, "form"])}

    def token_batch(self, sentences):
        """Ids per token and window positions for sentences given as lists of words.

        Returns ({table name: (N + 2,) ids, the last two the left and right pads}, (N, 2r+1) positions
        into them); N counts all tokens. Windows are ``ids[name][positions]``.
        """
        lengths = tuple(len(s) for s in sentences)
        ids = self.token_ids([w for s in sentences for w in s], self._pad_rows)
        if self.gaz_names:
            matched = self.gazetteer.positions(sentences, pads=2)  # the pads: none
            ids.update({name: matched[:, i] for i, name in enumerate(self.gaz_names)})
            ids[GAZETTEER] = matched  # the same ids as one matrix (``model.projection``)
        if self.regimes and lengths:
            n = len(ids["case"]) - 2
            ids["case"][:n] += len(CASES) * sentence_regimes(ids["form"][:n], lengths).repeat(lengths)
        positions = self._positions.get(lengths) if len(lengths) == 1 else None
        if positions is None:
            positions = window_positions(lengths, self.config.radius)
            if len(lengths) == 1 and len(self._positions) < 1024:
                positions.flags.writeable = False  # shared by every later sentence of this length
                self._positions[lengths] = positions
        return ids, positions

    def spell(self, words, normalized=False):
        """(n, char_length) int32 character ids of words as vectors are looked up (``normalize``),
        between begin and end marks, cut to the length and padded with 0. ``normalized``: the words
        are normalised already (a vocabulary's are), so only a leading # or @ could still change."""
        vocab, length = self.vocabs["chars"], self.config.char_length
        begin, end = vocab.id("<w>"), vocab.id("</w>")
        if normalized:
            norms = [normalize(w) if w[:1] in ("#", "@") else w for w in words]
        else:
            norms = [normalize(w) for w in words]
        # All characters at once: code points looked up in the vocabulary's sorted code points.
        # surrogatepass: a lone surrogate (JSON text may hold one) is a code point like any other, here <unk>
        points = np.frombuffer("".join(norms).encode("utf-32-le", "surrogatepass"), dtype=np.uint32)
        ids = self._char_lookup(points)
        sizes = np.fromiter(map(len, norms), dtype=np.int64, count=len(norms))
        kept = np.minimum(sizes, length - 1)            # characters that fit after the begin mark
        out = np.zeros((len(norms), length), dtype=np.int32)
        out[:, 0] = begin
        rows = np.repeat(np.arange(len(norms)), kept)
        starts = np.cumsum(sizes) - sizes
        within = np.arange(kept.sum()) - np.repeat(np.cumsum(kept) - kept, kept)
        out[rows, 1 + within] = ids[np.repeat(starts, kept) + within]
        room = sizes + 1 < length                        # the end mark fits
        out[room.nonzero()[0], sizes[room] + 1] = end
        return out

    def _char_lookup(self, points):
        """(n,) int32 character ids of code points; <unk> for characters the vocabulary lacks."""
        if self._char_points is None:
            vocab = self.vocabs["chars"]
            chars = [(ord(c), i) for c, i in vocab.index.items() if len(c) == 1 and c not in CHAR_SPECIALS]
            chars.sort()
            self._char_points = (np.array([p for p, _ in chars], dtype=np.uint32),
                                 np.array([i for _, i in chars], dtype=np.int32), vocab.unk_id)
        known, ids, unk = self._char_points
        if not len(known):
            return np.full(len(points), unk, dtype=np.int32)
        at = np.searchsorted(known, points).clip(0, len(known) - 1)
        return np.where(known[at] == points, ids[at], unk).astype(np.int32)

    @property
    def spellings(self):
        """(V, char_length) character ids of every word of the vocabulary; the specials' rows are empty."""
        if self._spellings is None:
            words = self.vocabs["word"].words
            self._spellings = np.vstack([np.zeros((len(SPECIALS), self.config.char_length), dtype=np.int32),
                                         self.spell(words[len(SPECIALS):], normalized=True)])
        return self._spellings

    def char_windows(self, word_windows):
        """Character input of the network for windows of word ids: (chars (R, L) of the R distinct
        words, char_rows (N, 2r+1) indices into them, R for a pad or another special)."""
        rows, inverse = np.unique(word_windows, return_inverse=True)
        real = rows >= len(SPECIALS)
        index = np.where(real, np.cumsum(real) - 1, real.sum())
        return self.spellings[rows[real]], index[inverse].reshape(word_windows.shape)

    def windows(self, sentences):
        """{table name: (N, 2r+1) ids} for sentences given as lists of words; N counts all tokens."""
        padded, positions = self.token_batch(sentences)
        return {name: padded[name][positions] for name in self.names}


def build_char_vocab(words, min_count=2):
    """Characters of the normalised words seen at least ``min_count`` times, most frequent first."""
    counts = {}
    for w in words:
        for ch in normalize(w):
            counts[ch] = counts.get(ch, 0) + 1
    kept = sorted((c for c, n in counts.items() if n >= min_count), key=lambda c: (-counts[c], c))
    return Vocab(kept, specials=CHAR_SPECIALS, unk=UNK)


def build_affix_vocab(words, name, length, min_count=1):
    """Affixes seen at least ``min_count`` times in ``words``, most frequent first."""
    counts = {}
    for w in words:
        a = affix(w, name, length)
        counts[a] = counts.get(a, 0) + 1
    kept = sorted((a for a, n in counts.items() if n >= min_count), key=lambda a: (-counts[a], a))
    return Vocab(kept, specials=AFFIX_SPECIALS)
