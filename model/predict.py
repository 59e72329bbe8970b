"""Serving: text in, per-token type probabilities and entity spans out. No web framework here."""
import threading
from itertools import groupby
from operator import itemgetter

import numpy as np

from model import artifact, document, layers, network
from model.casing import ADDRESS
from model.decode import decode, decoded_spans, split_tag, transitions
from model.dictionary import forced_matcher
from model.explain import attributions, slot_report
from model.network import table_key, table_names
from model.projection import STORED_ROWS, WindowProjection
from model.tokenize import tokenize

UNKNOWN_KEPT = 4096  # unknown words whose terms are kept: 4096 x (2r+1) x H float32 is 24 MB for r = 2, H = 300
PASS_TOKENS = 4096  # a pass takes ~10 ms: the longest a huge request keeps others of its worker waiting


class Model:
    """A loaded artifact ready to predict: float32 weights, nothing kept for a backward pass."""

    def __init__(self, params, config, featurizer, labels, manifest, stored_rows=STORED_ROWS):
        self.config, self.featurizer, self.labels, self.manifest = config, featurizer, list(labels), manifest
        self.params = {k: np.ascontiguousarray(v, dtype=np.float32) for k, v in params.items()}
        self.temperature = float(manifest.get("calibration", {}).get("temperature", 1.0))
        # The document cue (model.document), for models whose tokens are decoded from their probabilities.
        self.doc_weight = float(manifest.get("document", {}).get("weight", 0.0))
        self.types = sorted({split_tag(t)[1] for t in self.labels if t != "O"})
        self.columns = self.types + ["O"]
        parts = [split_tag(t) for t in self.labels]
        # Per tag id: its column in ``columns`` (types, then O), whether it is an entity tag, and
        # whether it continues an entity (I-, E-).
        self.tag_column = np.array([self.columns.index(typ or "O") for _, typ in parts])
        self.tag_inside = np.array([typ != "" for _, typ in parts])
        self.tag_continues = np.array([prefix in ("I", "E") for prefix, _ in parts])
        # Summing tag probabilities into type probabilities is one small matmul: (K, types + O).
        self.type_matrix = np.zeros((len(self.labels), len(self.columns)), dtype=np.float32)
        self.type_matrix[np.arange(len(self.labels)), self.tag_column] = 1.0
        # IOB2 tag names: "B-<type t>" at 1 + 2t, "I-<type t>" at 2 + 2t.
        self.iob2_names = ["O"] + [f"{p}-{typ}" for typ in self.types for p in "BI"]
        self.transitions = transitions(self.labels)
        self.o_row = np.zeros(len(self.labels), dtype=np.float32)
        if "O" in self.labels:
            self.o_row[self.labels.index("O")] = 1.0
        self.token_rows = token_rows_builder(self.iob2_names, self.columns)
        self.unk_id = featurizer.vocabs["word"].unk_id
        self.word_chars = self.char_vectors(featurizer.spellings) if config.chars else None
        self._unknown = {}  # words outside the vocabulary: (character vector, its terms), by word
        self.projection = WindowProjection(self.params, config, stored_rows, word_chars=self.word_chars)
        self.gazetteer = featurizer.gazetteer  # the model's own lists; a dictionary adds to a copy
        self.dictionary, self.forced = None, None
        self.dictionary_refused = None  # the last dictionary this model could not use (not tried again)
        # Passes of several threads at once would only trade the GIL and the caches back and
        # forth (numpy lets go of the GIL in every large operation): one pass at a time.
        self.lock = threading.Lock()

    @classmethod
    def load(cls, directory, stored_rows=STORED_ROWS):
        """The model of an artifact directory; ``stored_rows``: the most frequent rows of each table
        whose terms in the hidden layer are worked out at load (``model.projection``): more cost
        memory and load time, and save work on every window that reads them."""
        return cls(*artifact.load(directory), stored_rows=stored_rows)

    def use_dictionary(self, dictionary):
        """Serve with a user's ``model.dictionary.Dictionary`` (None: the model's own lists only).
        Raises DictionaryError, before changing anything, if the model cannot use it."""
        categories = self.gazetteer.categories if self.gazetteer is not None else []
        phrases, exact, forced = dictionary.split(self.types, categories) if dictionary else ([], [], [])
        gazetteer = self.gazetteer.with_entries(phrases, exact) if self.gazetteer is not None and dictionary else None
        with self.lock:  # between passes: a pass reads one dictionary throughout
            if self.gazetteer is not None:
                self.featurizer.use_gazetteer(gazetteer or self.gazetteer)
            self.dictionary, self.forced = dictionary, forced_matcher(forced)

    def force(self, probs, sentences):
        """Rows of ``probs`` (N, K) of the tokens a hard rule of the dictionary covers set to its tags."""
        offset = 0
        for words in sentences:
            for c, start, end in self.forced.spans(words):
                label = self.forced.categories[c]
                for t in range(start, end):
                    prefix = "S" if end - start == 1 else "B" if t == start else "E" if t == end - 1 else "I"
                    if f"{prefix}-{label}" not in self.labels:  # BIO tags
                        prefix = "B" if t == start else "I"
                    probs[offset + t] = 0.0
                    probs[offset + t, self.labels.index(f"{prefix}-{label}")] = 1.0
            offset += len(words)

    @property
    def name(self):
        return self.manifest.get("name", "nerve")

    @property
    def version(self):
        return self.manifest.get("version", self.manifest["sha256"][:12])

    def char_vectors(self, spellings):
        """(n, F) float32 character vectors of words given as character ids; empty spellings give 0."""
        out = np.zeros((len(spellings), self.config.char_filters), dtype=np.float32)
        p = self.params
        for lo in range(0, len(spellings), 8192):
            rows = spellings[lo: lo + 8192]
            real = (rows != 0).any(axis=1)
            if real.any():
                out[lo: lo + 8192][real] = layers.char_conv_max(rows[real], p["C"], p["Wc"], p["bc"])
        return out

    def batch(self, sentences):
        """The network's input for sentences given as word lists: (ids, positions) of
        ``Featurizer.token_batch``, then (token indices, character vectors, their terms in the hidden
        layer) of the words outside the vocabulary (None without character features or such words).
        Both are worked out once per word and kept for the next request (up to UNKNOWN_KEPT words)."""
        ids, positions = self.featurizer.token_batch(sentences)
        if self.word_chars is None:
            return ids, positions, None
        where = (ids["word"][: len(positions)] == self.unk_id).nonzero()[0]
        if not where.size:
            return ids, positions, None
        flat = [w for s in sentences for w in s]
        words = [flat[i] for i in where]
        cache = self._unknown
        if len(cache) > UNKNOWN_KEPT:
            cache.clear()
        new = [w for w in dict.fromkeys(words) if w not in cache]
        if new:
            vectors = self.char_vectors(self.featurizer.spell(new))
            cache.update(zip(new, zip(vectors, self.projection.char_terms(vectors))))
        kept = [cache[w] for w in words]
        return ids, positions, (where, np.array([v for v, _ in kept]), np.array([t for _, t in kept]))

    def inputs(self, batch):
        """X (N, D) float32: each token's window, slot vectors side by side."""
        ids, positions, unknown = batch
        tokens = np.empty((len(positions) + 2, self.config.slot_dim), dtype=np.float32)  # (N + 2, slot)
        start = 0
        for name in table_names(self.config):
            table = self.params[table_key(name)]
            tokens[:, start: start + table.shape[1]] = table[ids[name]]
            start += table.shape[1]
        if self.word_chars is not None:
            tokens[:, start:] = self.word_chars[ids["word"]]
            if unknown is not None:
                tokens[unknown[0], start:] = unknown[1]
        return np.take(tokens, positions, axis=0).reshape(len(positions), -1)

    def scores(self, batch, groups=None):
        """(N, K) float32 tag scores of a ``batch``; nothing kept for a backward pass. ``groups``: with
        a pooling model, ``Model.groups`` of the batch's tokens (without: every token alone). The
        network's own stages, with the hidden layer's product read from the stored projections."""
        a = network.hidden_forward(None, self.params, self.config, z=self.projection(*batch))[0]
        return network.readout_forward(a, self.params, self.config, groups)[0]

    def groups(self, sentences, batch, blocks=None):
        """{"mention_groups", "doc_groups"}: (N,) for the tokens of ``sentences`` and their ``batch``, the
        mentions of one word in one document block and the tokens of one block (``blocks``: (S,) per
        sentence; without it each sentence is a block of its own)."""
        lengths = [len(s) for s in sentences]
        if blocks is None:
            blocks = np.arange(len(sentences))
        blocks = np.asarray(blocks)
        token_blocks = np.repeat(blocks, lengths)
        n = len(batch[1])
        return {"mention_groups": document.mention_groups([w for s in sentences for w in s], token_blocks,
                                                          batch[0]["word"][:n], self.unk_id),
                "doc_groups": token_blocks}

    def probabilities(self, batch, groups=None):
        """(N, K) float32 tag distributions of a ``batch``, temperature-scaled. ``groups``: as for ``scores``."""
        s = self.scores(batch, groups)
        if self.temperature != 1.0:
            s /= self.temperature
        s -= np.maximum.reduce(s, axis=1, keepdims=True)
        np.exp(s, out=s)
        s /= np.add.reduce(s, axis=1, keepdims=True)
        return s

    def tag_flat(self, sentences, explain=False, blocks=None):
        """All sentences (non-empty word lists) in one pass.

        Returns (tags (N,), probabilities (N, K), attributions (N, 2r+1) or None) over the N tokens
        laid end to end; attributions (see ``model.explain``) only with ``explain``. ``blocks``: (S,)
        the document block of each sentence (``model.document.blocks``), for the document cue; without
        it every sentence is read alone.
        """
        lengths = [len(s) for s in sentences]
        batch = self.batch(sentences)
        cue = blocks is not None and self.doc_weight > 0
        groups = self.groups(sentences, batch, blocks) if self.config.pools or cue else None
        # A URL or an e-mail address is never an entity, whatever its neighbours suggest.
        addresses = (batch[0]["form"][: len(batch[1])] == ADDRESS).nonzero()[0]
        probs = self.probabilities(batch, groups=groups)
        if cue:
            probs = document.document_cue(probs, groups["mention_groups"], self.doc_weight, self.type_matrix,
                                          self.tag_column)
        if addresses.size:
            probs[addresses] = self.o_row
        if self.forced is not None:
            self.force(probs, sentences)
        tags = decode(probs, lengths, self.labels, self.transitions)
        return tags, probs, attributions(self, batch, tags, groups) if explain else None

    def tag_sentences(self, sentences, docs=None):
        """Per sentence given as a word list: (tag ids, tag probabilities); ``docs``: the document of
        each sentence (the sentences of a document consecutive), for the document cue."""
        lengths = [len(s) for s in sentences]
        nonempty = [s for s in sentences if s]
        if nonempty:
            blocks = None if docs is None else document.blocks([n for n in lengths if n],
                                                               [d for d, n in zip(docs, lengths) if n])
            tags, probs, _ = self.tag_flat(nonempty, blocks=blocks)
        else:
            tags, probs = np.zeros(0, dtype=np.int64), np.zeros((0, len(self.labels)), dtype=np.float32)
        bounds = np.cumsum(lengths)[:-1]
        return np.split(tags, bounds), np.split(probs, bounds)


def predict(texts, model, labels=None, threshold=0.0, tokens=True, explain=False):
    """Entities (and per-token detail) for each text, in one batched pass over all their sentences.

    Returns one dict per text: {"entities": [{"text","label","start","end","score"}], "tokens": [...]}.
    A span's score is the mean over its tokens of the probability of its type, P(B-T) + P(I-T).
    """
    return annotate(texts, model, labels, threshold, tokens, explain)[0]


def confidence(tokens):
    """The probability of the least sure token's most likely type (None for no tokens): how sure the
    model is of a text or sentence as a whole."""
    return min((max(t["probabilities"].values()) for t in tokens), default=None)


def annotate(texts, model, labels=None, threshold=0.0, tokens=True, explain=False, pass_tokens=PASS_TOKENS):
    """``predict``, plus the number of tokens tagged: (results, n_tokens).

    The sentences of all texts go through the network together, in passes of whole sentences of
    up to about ``pass_tokens`` tokens (one pass for all but huge requests; a job with no one else
    waiting may take larger passes, which cost less per token); spans, scores and tags
    are worked out over all tokens of a pass at once, and only the output objects are built one
    by one. A model runs one pass at a time (``Model.lock``).
    """
    explain = explain and tokens
    wanted = set(labels) if labels is not None else None
    results = [{"entities": [], "tokens": []} if tokens else {"entities": []} for _ in texts]
    n = 0
    for piece in _passes(texts, pass_tokens):
        with model.lock:
            n += _annotate_pass(piece, texts, model, results, wanted, threshold, tokens, explain)
    return results, n


def _passes(texts, size):
    """Lists of (text index, sentence, block): whole document blocks (``model.document``) of whole
    sentences, in text order, each list ``size`` tokens or fewer (but for a block larger alone)."""
    piece, count, block = [], 0, 0
    for i, text in enumerate(texts):
        sentences = tokenize(text)
        lengths = [len(s) for s in sentences]
        if sum(lengths) <= document.BLOCK_TOKENS:  # nearly every text: one block
            ids = [0] * len(sentences)
        else:
            ids = document.blocks(lengths, [i] * len(sentences)).tolist()
        for _, group in groupby(zip(ids, sentences, lengths), key=itemgetter(0)):
            group = list(group)
            n = sum(length for _, _, length in group)
            if piece and count + n > size:
                yield piece
                piece, count = [], 0
            piece.extend((i, sent, block) for _, sent, _ in group)
            count += n
            block += 1
    if piece:
        yield piece


def _annotate_pass(piece, texts, model, results, wanted, threshold, tokens, explain):
    """Tag the sentences of ``piece`` and add their entities (and tokens) to ``results``; returns their token count."""
    sentences = [sent for _, sent, _ in piece]
    flat = [tok for sent in sentences for tok in sent]
    n = len(flat)
    lengths = [len(sent) for sent in sentences]
    words = [[tok for tok, _, _ in sent] for sent in sentences]
    tags, probs, attr = model.tag_flat(words, explain, np.array([b for _, _, b in piece]))
    # Six decimals (rounded in float64, so that JSON shows them exactly): float32 carries about
    # seven digits, so more would be false precision.
    type_probs = (probs @ model.type_matrix).astype(np.float64).round(6)   # (N, types + O)
    firsts, ends = decoded_spans(tags, model.tag_inside, model.tag_continues)
    columns = model.tag_column[tags]                                            # (N,)
    span_columns = columns[firsts]
    # Each span's own tokens summed (not differences of a running sum over the pass, whose rounding
    # would depend on what else the pass holds): the same text scores the same alone or in a batch.
    own = np.zeros(n + 1)
    own[:n] = type_probs[np.arange(n), columns]  # the probability of each token's own type
    bounds = np.empty(2 * len(firsts), dtype=np.intp)
    bounds[0::2], bounds[1::2] = firsts, ends
    sums = np.add.reduceat(own, bounds)[0::2] if len(bounds) else own[:0]
    scores = (sums / (ends - firsts)).round(6)
    text_of = np.array([i for i, _, _ in piece]).repeat(lengths)
    for first, end, column, score in zip(firsts.tolist(), ends.tolist(), span_columns.tolist(), scores.tolist()):
        label = model.columns[column]
        if (wanted is not None and label not in wanted) or score < threshold:
            continue
        i = text_of[first]
        start, stop = flat[first][1], flat[end - 1][2]
        results[i]["entities"].append({"text": texts[i][start:stop], "label": label, "start": start, "end": stop,
                                       "score": score})
    if tokens:
        iob2 = np.where(model.tag_inside[tags], 2 + 2 * columns, 0)
        iob2[firsts] -= 1
        token_rows = model.token_rows(flat, iob2.tolist(), type_probs.tolist())
        if explain:
            add_explanations(token_rows, words, attr.tolist())
        offset = 0
        for (i, _, _), length in zip(piece, lengths):
            results[i]["tokens"].extend(token_rows[offset: offset + length])
            offset += length
    return n


def token_rows_builder(tag_names, columns):
    """A function (tokens, IOB2 tag ids, probability rows) -> the answer's token objects.

    Each token's probabilities are written as a dict literal over these columns, which builds them
    about 40% faster than ``dict(zip(columns, row))``: the bulk of a large answer. The generated
    source holds only names made here (k0, p0, ...); the columns and tag names are passed in as
    values, never written into code.
    """
    keys = [f"k{i}" for i in range(len(columns))]
    probs = [f"p{i}" for i in range(len(columns))]
    source = (f"def token_rows(flat, tags, rows, names=names, {', '.join(f'{k}={k}' for k in keys)}):\n"
              f"    return [{{'text': tok, 'start': start, 'end': end, 'tag': names[tag], "
              f"'probabilities': {{{', '.join(f'{k}: {p}' for k, p in zip(keys, probs))}}}}}\n"
              f"            for (tok, start, end), tag, ({', '.join(probs)},) in zip(flat, tags, rows)]\n")
    namespace = {"names": list(tag_names), **dict(zip(keys, columns))}
    exec(source, namespace)  # nosec B102 - the source holds only the identifiers made above
    return namespace["token_rows"]


def add_explanations(token_rows, words, attr):
    """Give each token row its explanation; rows, sentences' ``words`` and ``attr`` rows in the same order."""
    k = 0
    for sent in words:
        for t in range(len(sent)):
            token_rows[k]["explanation"] = slot_report(sent, t, attr[k])
            k += 1
