"""The document cue: a word's type read from all its mentions in the document, not from one window alone.

A name is written the same way throughout a news story, a ticket or a thread, and some of its
mentions have clearer windows than others ("Ajax" after "striker for", against "Ajax" alone in a
headline). Each token's type distribution tau_t (the types and O, its tag probabilities summed per
type) is mixed with the mean over every mention u of the same word (compared as the vocabulary
reads words: lower-cased, digits as 0) in the same document block:

    tau'_t = (1 - w) tau_t + w mean_u tau_u

and its tag probabilities are rescaled type by type, p'_t[k] = p_t[k] tau'_t[type k] / tau_t[type k]:
they still sum to 1 and keep the shares of B-, I-, E-, S- within a type (a type the token had no
probability of at all takes the shares of the word's mean). Tags are then decoded from p'. A word
met once in its block is left as it is.

A document is cut into blocks of whole sentences of at most BLOCK_TOKENS tokens, counted from its
start: a text's answer depends on the text alone, not on what else is tagged with it, nor on how a
large job is cut into passes.
"""
import numpy as np

from model import layers
from model.vocab import normalize

BLOCK_TOKENS = 4096
_SMALL = 256


def blocks(lengths, docs, size=None):
    """(S,) block id of each sentence, for sentences of ``lengths`` in documents ``docs`` (the
    sentences of a document consecutive): a new block at each new document and wherever the block
    would grow past ``size`` (BLOCK_TOKENS) tokens."""
    size = size or BLOCK_TOKENS
    out, block, previous, count = [], -1, object(), 0
    for length, doc in zip(lengths, docs):
        if doc != previous or (count and count + length > size):
            block, previous, count = block + 1, doc, 0
        count += length
        out.append(block)
    return np.array(out, dtype=np.intp)


def mention_groups(words, token_blocks, word_ids, unk_id):
    """(N,) id per token of (block, word): tokens with the same id are mentions of one word.

    A word is compared as the vocabulary reads it (``model.vocab.normalize``: lower-cased, digits as
    0, a hashtag's mark dropped): by its id (N,) ``word_ids``, or by its normalised form for the
    words outside the vocabulary (``unk_id``)."""
    if len(words) <= _SMALL:  # a request's few tokens: a few Python steps beat a dozen numpy calls
        ids = {}
        return np.array([ids.setdefault((b, k if k != unk_id else normalize(w)), len(ids))
                         for b, k, w in zip(np.asarray(token_blocks).tolist(), np.asarray(word_ids).tolist(), words)],
                        dtype=np.intp)
    keys = np.asarray(word_ids, dtype=np.int64).copy()
    unknown = (keys == unk_id).nonzero()[0]
    forms = {}
    if unknown.size:
        keys[unknown] = unk_id + 1 + keys.max() + np.array([forms.setdefault(normalize(words[i]), len(forms))
                                                             for i in unknown.tolist()])
    combined = np.asarray(token_blocks, dtype=np.int64) * (int(keys.max()) + 1) + keys
    return np.unique(combined, return_inverse=True)[1].reshape(-1)


def document_cue(probs, groups, weight, type_matrix, tag_column):
    """(N, K) tag probabilities with the document cue: ``probs`` (N, K) float32 of tokens grouped by
    ``mention_groups``; ``type_matrix`` (K, C) sums tags into types; ``tag_column`` (K,) a tag's type.
    A block's numbers do not depend on the tokens around it."""
    counts = np.bincount(groups)
    rows = (counts[groups] > 1).nonzero()[0]
    if not rows.size or weight <= 0:
        return probs
    g = groups[rows]
    p = probs[rows]                                                # (R, K)
    mean_p = layers.group_mean_forward(p, g)[0]                   # (R, K) the word's mean tag probabilities
    tau = p @ type_matrix                                          # (R, C)
    mean_tau = mean_p @ type_matrix
    new = (1.0 - weight) * tau + weight * mean_tau
    # Below the smallest normal float, new / tau overflows: such a type counts as one the token had none of.
    tiny = np.finfo(probs.dtype).tiny
    has = tau > tiny
    ratio = np.divide(new, tau, out=np.zeros_like(new), where=has)
    cued = p * ratio[:, tag_column]
    # A type the token had no probability of: its share of ``new`` split as the word's mean splits it.
    if has.all():
        missing = ()
    else:
        missing = (~has & (new > 0)).any(axis=1).nonzero()[0]
    if len(missing):
        m_tau = mean_tau[missing][:, tag_column]
        from_mean = mean_p[missing] * (new[missing][:, tag_column] / np.where(m_tau > tiny, m_tau, 1.0))
        cued[missing] = np.where(has[missing][:, tag_column], cued[missing], from_mean)
    out = probs.copy()
    out[rows] = cued
    return out
