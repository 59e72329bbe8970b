"""The document cue: a word's type read from all its mentions in the document, not from one window alone.

A name is written the same way throughout a news story, a ticket or a thread, and some of its
mentions have clearer windows than others ("Ajax" after "striker for", against "Ajax" alone in a
headline). Each token's type distribution tau_t (the types and O, its tag probabilities summed per
type) is mixed with the mean over every mention u of the same word (compared lower-cased) in the
same document block:

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

BLOCK_TOKENS = 4096


def blocks(lengths, docs, size=BLOCK_TOKENS):
    """(S,) block id of each sentence, for sentences of ``lengths`` in documents ``docs`` (the
    sentences of a document consecutive): a new block at each new document and wherever the block
    would grow past ``size`` tokens."""
    out, block, previous, count = [], -1, object(), 0
    for length, doc in zip(lengths, docs):
        if doc != previous or (count and count + length > size):
            block, previous, count = block + 1, doc, 0
        count += length
        out.append(block)
    return np.array(out, dtype=np.intp)


def mention_groups(words, token_blocks):
    """(N,) id per token of (block, lower-cased word): tokens with the same id are mentions of one word."""
    ids = {}
    return np.fromiter((ids.setdefault((b, w.lower()), len(ids)) for b, w in zip(token_blocks.tolist(), words)),
                       dtype=np.intp, count=len(words))


def document_cue(probs, groups, weight, type_matrix, tag_column):
    """(N, K) tag probabilities with the document cue: ``probs`` (N, K) of tokens grouped by
    ``mention_groups``; ``type_matrix`` (K, C) sums tags into types; ``tag_column`` (K,) a tag's type.
    Sums run over tokens in their order, so a block's numbers do not depend on the tokens around it."""
    counts = np.bincount(groups)
    rows = (counts[groups] > 1).nonzero()[0]
    if not rows.size or weight <= 0:
        return probs
    g = groups[rows]
    p = probs[rows].astype(np.float64)                            # (R, K)
    n = counts[g][:, None]
    mean_p = np.stack([np.bincount(g, weights=p[:, k], minlength=len(counts)) for k in range(p.shape[1])],
                      axis=1)[g] / n                               # (R, K) the word's mean tag probabilities
    tau = p @ type_matrix                                          # (R, C)
    mean_tau = mean_p @ type_matrix
    new = (1.0 - weight) * tau + weight * mean_tau
    own, mean_own = tau[:, tag_column], mean_tau[:, tag_column]    # (R, K) each tag's type mass
    share = np.where(own > 0, p / np.where(own > 0, own, 1.0),
                     np.where(mean_own > 0, mean_p / np.where(mean_own > 0, mean_own, 1.0), 0.0))
    out = probs.copy()
    out[rows] = share * new[:, tag_column]
    return out
