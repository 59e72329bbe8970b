"""Serving: text in, per-token type probabilities and entity spans out. No web framework here."""
import numpy as np

from model import artifact
from model.decode import spans, split_tag, to_iob2, viterbi
from model.network import table_key, table_names
from model.tokenize import tokenize

_TINY = 1e-12


class Model:
    """A loaded artifact ready to predict: float32 weights, no caches kept between calls."""

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

    @classmethod
    def load(cls, directory):
        return cls(*artifact.load(directory))

    @property
    def name(self):
        return self.manifest.get("name", "nerve")

    @property
    def version(self):
        return self.manifest.get("version", self.manifest["sha256"][:12])

    def scores(self, batch):
        """(N, K) float32 tag scores of a ``Featurizer.token_batch``; nothing kept for a backward pass.

        Each token's slot vector is assembled once, then one gather of whole rows by window
        position and one reshape build X: cheaper than gathering every table per window slot.
        """
        p = self.params
        ids, positions = batch
        tokens = np.empty((len(positions) + 2, self.config.slot_dim), dtype=np.float32)  # (N + 2, slot)
        start = 0
        for name in table_names(self.config):
            table = p[table_key(name)]
            tokens[:, start: start + table.shape[1]] = table[ids[name]]
            start += table.shape[1]
        x = np.take(tokens, positions, axis=0).reshape(len(positions), -1)  # (N, D)
        z = x @ p["W"].T                                     # (N, H)
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

    def tag_sentences(self, sentences):
        """For sentences given as word lists: (tag ids per sentence, tag probabilities per sentence)."""
        sentences = [s for s in sentences]
        if not any(sentences):
            return [np.zeros(0, dtype=np.int64) for _ in sentences], [np.zeros((0, len(self.labels)))] * len(sentences)
        nonempty = [s for s in sentences if s]
        probs = self.probabilities(self.featurizer.token_batch(nonempty))
        bounds = np.cumsum([len(s) for s in nonempty])[:-1]
        per_sentence = np.split(probs, bounds)
        tags = viterbi([np.log(p + _TINY) for p in per_sentence], self.labels)
        it_t, it_p = iter(tags), iter(per_sentence)
        out_t, out_p = [], []
        for s in sentences:
            out_t.append(next(it_t) if s else np.zeros(0, dtype=np.int64))
            out_p.append(next(it_p) if s else np.zeros((0, len(self.labels)), dtype=np.float32))
        return out_t, out_p


def predict(texts, model, labels=None, threshold=0.0, tokens=True):
    """Entities (and per-token detail) for each text, in one batched pass over all their sentences.

    Returns one dict per text: {"entities": [{"text","label","start","end","score"}], "tokens": [...]}.
    A span's score is the mean over its tokens of the probability of its type, P(B-T) + P(I-T).
    """
    return annotate(texts, model, labels, threshold, tokens)[0]


def annotate(texts, model, labels=None, threshold=0.0, tokens=True):
    """``predict``, plus the number of tokens tagged: (results, n_tokens)."""
    tokenized = [tokenize(t) for t in texts]
    flat = [[tok[0] for tok in sent] for sents in tokenized for sent in sents]
    tag_ids, probs = model.tag_sentences(flat)
    wanted = set(labels) if labels is not None else None
    results, k = [], 0
    for text, sents in zip(texts, tokenized):
        entities, token_rows = [], []
        for sent in sents:
            tags = to_iob2([model.labels[i] for i in tag_ids[k]])
            type_probs = probs[k] @ model.type_matrix           # (T, types + O)
            k += 1
            for typ, first, last in spans(tags):
                if wanted is not None and typ not in wanted:
                    continue
                score = float(type_probs[first:last, model.columns.index(typ)].mean())
                if score < threshold:
                    continue
                start, end = sent[first][1], sent[last - 1][2]
                entities.append({"text": text[start:end], "label": typ, "start": start, "end": end,
                                 "score": score})
            if tokens:
                for (tok, start, end), tag, row in zip(sent, tags, type_probs.tolist()):
                    token_rows.append({"text": tok, "start": start, "end": end, "tag": tag,
                                       "probabilities": dict(zip(model.columns, row))})
        result = {"entities": entities}
        if tokens:
            result["tokens"] = token_rows
        results.append(result)
    return results, sum(len(s) for s in flat)
