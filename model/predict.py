"""Serving: text in, per-token type probabilities and entity spans out. No web framework here."""
import numpy as np

from model import artifact
from model.decode import decode, iob2_tags, spans, split_tag, transitions
from model.explain import attributions, slot_report
from model.network import table_key, table_names
from model.tokenize import tokenize


class Model:
    """A loaded artifact ready to predict: float32 weights, nothing kept for a backward pass."""

    def __init__(self, params, config, featurizer, labels, manifest):
        self.config, self.featurizer, self.labels, self.manifest = config, featurizer, list(labels), manifest
        self.params = {k: np.ascontiguousarray(v, dtype=np.float32) for k, v in params.items()}
        self.temperature = float(manifest.get("calibration", {}).get("temperature", 1.0))
        self.types = sorted({split_tag(t)[1] for t in self.labels if t != "O"})
        # Summing tag probabilities into type probabilities is one small matmul: (K, types + O).
        columns = self.types + ["O"]
        self.type_matrix = np.zeros((len(self.labels), len(columns)), dtype=np.float32)
        for k, tag in enumerate(self.labels):
            self.type_matrix[k, columns.index(split_tag(tag)[1] or "O")] = 1.0
        self.columns = columns
        self.transitions = transitions(self.labels)

    @classmethod
    def load(cls, directory):
        return cls(*artifact.load(directory))

    @property
    def name(self):
        return self.manifest.get("name", "nerve")

    @property
    def version(self):
        return self.manifest.get("version", self.manifest["sha256"][:12])

    def inputs(self, batch):
        """X (N, D) float32: each token's window, slot vectors side by side."""
        ids, positions = batch
        tokens = np.empty((len(positions) + 2, self.config.slot_dim), dtype=np.float32)  # (N + 2, slot)
        start = 0
        for name in table_names(self.config):
            table = self.params[table_key(name)]
            tokens[:, start: start + table.shape[1]] = table[ids[name]]
            start += table.shape[1]
        return np.take(tokens, positions, axis=0).reshape(len(positions), -1)

    def scores(self, batch):
        """(N, K) float32 tag scores of a ``Featurizer.token_batch``; nothing kept for a backward pass.

        Each token's slot vector is assembled once, then one gather of whole rows by window
        position and one reshape build X: cheaper than gathering every table per window slot.
        """
        p = self.params
        z = self.inputs(batch) @ p["W"].T                    # (N, H)
        z += p["b"]
        if self.config.activation == "tanh":
            np.tanh(z, out=z)
        elif self.config.activation == "relu":
            np.maximum(z, 0.0, out=z)
        else:
            np.tanh(0.5 * z, out=z)
            z += 1.0
            z *= 0.5
        s = z @ p["U"].T                                     # (N, K)
        s += p["c"]
        return s

    def probabilities(self, batch):
        """(N, K) float32 tag distributions of a ``Featurizer.token_batch``, temperature-scaled."""
        s = self.scores(batch)
        if self.temperature != 1.0:
            s /= self.temperature
        s -= s.max(axis=1, keepdims=True)
        np.exp(s, out=s)
        s /= s.sum(axis=1, keepdims=True)
        return s

    def tag_flat(self, sentences, explain=False):
        """All sentences (non-empty word lists) in one pass.

        Returns (tags (N,), probabilities (N, K), attributions (N, 2r+1) or None) over the N tokens
        laid end to end; attributions (see ``model.explain``) only with ``explain``.
        """
        lengths = [len(s) for s in sentences]
        batch = self.featurizer.token_batch(sentences)
        probs = self.probabilities(batch)
        tags = decode(probs, lengths, self.labels, self.transitions)
        return tags, probs, attributions(self, batch, tags) if explain else None

    def tag_sentences(self, sentences):
        """Per sentence given as a word list: (tag ids, tag probabilities)."""
        lengths = [len(s) for s in sentences]
        nonempty = [s for s in sentences if s]
        if nonempty:
            tags, probs, _ = self.tag_flat(nonempty)
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


def annotate(texts, model, labels=None, threshold=0.0, tokens=True, explain=False):
    """``predict``, plus the number of tokens tagged: (results, n_tokens)."""
    tokenized = [tokenize(t) for t in texts]
    words = [[tok for tok, _, _ in sent] for sents in tokenized for sent in sents]
    n = sum(len(w) for w in words)
    explain = explain and tokens
    tag_names, type_probs, attr = [], [], None
    if n:
        tags, probs, attr = model.tag_flat(words, explain)
        tag_names = [model.labels[i] for i in tags.tolist()]
        # Six decimals (rounded in float64, so that JSON shows them exactly): float32 carries about seven
        # digits, so more would be false precision.
        type_probs = np.round((probs @ model.type_matrix).astype(np.float64), 6).tolist()  # (N, types + O)
        attr = attr.tolist() if attr is not None else None
    wanted = set(labels) if labels is not None else None
    columns = {c: i for i, c in enumerate(model.columns)}
    results, offset, k = [], 0, 0
    for text, sents in zip(texts, tokenized):
        entities, token_rows = [], []
        for sent in sents:
            found = spans(tag_names[offset: offset + len(sent)])
            rows = type_probs[offset: offset + len(sent)]
            for typ, first, last in found:
                if wanted is not None and typ not in wanted:
                    continue
                column = columns[typ]
                score = sum(row[column] for row in rows[first:last]) / (last - first)
                if score < threshold:
                    continue
                start, end = sent[first][1], sent[last - 1][2]
                entities.append({"text": text[start:end], "label": typ, "start": start, "end": end,
                                 "score": score})
            if tokens:
                tags = iob2_tags(len(sent), found)
                for (tok, start, end), tag, row in zip(sent, tags, rows):
                    token_rows.append({"text": tok, "start": start, "end": end, "tag": tag,
                                       "probabilities": dict(zip(model.columns, row))})
                if explain:
                    for t, row in enumerate(attr[offset: offset + len(sent)]):
                        token_rows[len(token_rows) - len(sent) + t]["explanation"] = slot_report(words[k], t, row)
            offset += len(sent)
            k += 1
        result = {"entities": entities}
        if tokens:
            result["tokens"] = token_rows
        results.append(result)
    return results, n
