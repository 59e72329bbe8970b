"""Tag sequences under BIO (or BIOES) constraints, and the entity spans they spell."""
import numpy as np

_TINY = 1e-12  # keeps log finite for a probability that underflowed to 0
BLOCKED = -1e9  # a forbidden move's score: it never beats a valid path


def split_tag(tag):
    """'B-PER' -> ('B', 'PER'); 'O' -> ('O', '')."""
    prefix, _, typ = tag.partition("-")
    return prefix, typ


def transitions(labels):
    """Allowed moves between tags as boolean arrays: (K, K) prev->cur, (K,) start, (K,) end.

    I-T (and E-T) may only follow B-T or I-T; in BIOES a sentence may not stop inside an entity
    and B-, S- and O may not follow an open B-/I-.
    """
    parts = [split_tag(t) for t in labels]
    bioes = any(p in ("E", "S") for p, _ in parts)
    k = len(labels)
    allowed = np.ones((k, k), dtype=bool)
    start = np.ones(k, dtype=bool)
    end = np.ones(k, dtype=bool)
    for j, (cp, ct) in enumerate(parts):
        continues = cp in ("I", "E")
        if continues:
            start[j] = False
        if bioes and cp in ("B", "I"):
            end[j] = False
        for i, (pp, pt) in enumerate(parts):
            open_prev = pp in ("B", "I")
            if continues:
                allowed[i, j] = open_prev and pt == ct
            elif bioes:
                allowed[i, j] = not open_prev
    return allowed, start, end


def decode(probs, lengths, labels, trans=None):
    """Best tag ids under the constraints for sentences laid end to end; the same answer as ``viterbi``
    over log ``probs``.

    With transitions worth 0 or -inf, the per-token argmax is the best path whenever it breaks no
    constraint, so Viterbi only runs on the sentences whose argmax path is invalid.
    probs: (N, K) tag probabilities for sentences of ``lengths`` (all > 0); trans: ``transitions(labels)``
    if already made. Returns (N,) tag ids.
    """
    allowed, start, end = trans if trans is not None else transitions(labels)
    lengths = np.asarray(lengths)
    greedy = probs.argmax(axis=1)
    if not len(greedy):
        return greedy
    first = lengths.cumsum() - lengths
    last = first + lengths - 1
    bad = np.zeros(len(greedy), dtype=bool)
    bad[1:] = ~allowed[greedy[:-1], greedy[1:]]
    bad[first] = ~start[greedy[first]]  # a sentence's first tag answers to the start, not the previous sentence
    bad[last] |= ~end[greedy[last]]
    redo = (np.add.reduceat(bad, first) > 0).nonzero()[0]
    if redo.size:
        pieces = [np.log(probs[first[i]: first[i] + lengths[i]] + _TINY) for i in redo]
        for i, tags in zip(redo, viterbi(pieces, labels, (allowed, start, end))):
            greedy[first[i]: first[i] + lengths[i]] = tags
    return greedy


def viterbi(log_probs, labels, trans=None):
    """Best tag ids per sentence under the constraints, batched over sentences.

    log_probs: list of (T_s, K) arrays. Returns a list of (T_s,) int arrays. A move the constraints
    forbid scores BLOCKED, allowed ones 0. The sentences are padded longest first into (n, T, K):
    at step t the sentences still running are the first rows, and each step works on a slice."""
    if not log_probs:
        return []
    moves, start, end = (np.where(ok, 0.0, BLOCKED) for ok in (trans if trans is not None else transitions(labels)))
    lengths = np.array([len(lp) for lp in log_probs])
    order = np.argsort(-lengths, kind="stable")
    t_max, k = int(lengths[order[0]]), log_probs[0].shape[1]
    E = np.zeros((len(order), t_max, k))
    for row, i in enumerate(order):
        E[row, : lengths[i]] = log_probs[i]
    running = np.searchsorted(-lengths[order], -np.arange(t_max), side="left")  # (T,) rows still going at t
    back = np.empty((len(order), t_max, k), dtype=np.intp)
    delta = E[:, 0] + start
    for t in range(1, t_max):
        a = running[t]
        cand = delta[:a, :, None] + moves                  # (a, K prev, K cur)
        back[:a, t] = cand.argmax(axis=1)
        delta[:a] = np.maximum.reduce(cand, axis=1) + E[:a, t]
    cur = (delta + end).argmax(axis=1)
    paths = np.zeros((len(order), t_max), dtype=np.int64)
    for t in range(t_max - 1, -1, -1):
        a = running[t]
        paths[:a, t] = cur[:a]
        if t > 0:
            cur[:a] = back[np.arange(a), t, cur[:a]]
    out = [None] * len(order)
    for row, i in enumerate(order):
        out[i] = paths[row, : lengths[i]]
    return out


def spans(tags):
    """Entity spans in a tag sequence as (type, first, last + 1) token indices, read as conlleval does."""
    out, open_type, open_start = [], None, 0
    for i, tag in enumerate(tags):
        prefix, typ = split_tag(tag)
        starts = prefix in ("B", "S") or (prefix in ("I", "E") and typ != open_type)
        if open_type is not None and (prefix == "O" or starts):
            out.append((open_type, open_start, i))
            open_type = None
        if prefix != "O" and open_type is None:
            open_type, open_start = typ, i
        if prefix in ("E", "S"):
            out.append((open_type, open_start, i + 1))
            open_type = None
    if open_type is not None:
        out.append((open_type, open_start, len(tags)))
    return out


def decoded_spans(tags, inside, continues):
    """Entity spans of a decoded tag sequence (sentences laid end to end) as (first, last + 1) arrays.

    tags: (N,) tag ids that satisfy ``transitions`` (``decode`` guarantees it), so an I- or E- tag
    always continues an entity of its own type from the same sentence, and a span starts exactly
    where an entity tag does not continue one. inside, continues: (K,) bool per tag id: not O; I- or E-.
    The same spans as ``spans`` reads, without a Python loop over tokens.
    """
    entity = inside[tags]
    next_continues = np.zeros(len(tags), dtype=bool)
    next_continues[:-1] = continues[tags[1:]]
    return (entity & ~continues[tags]).nonzero()[0], (entity & ~next_continues).nonzero()[0] + 1


def iob2_tags(length, found):
    """IOB2 tags of a sentence of ``length`` tokens holding the spans ``found``."""
    out = ["O"] * length
    for typ, first, last in found:
        out[first] = f"B-{typ}"
        out[first + 1: last] = [f"I-{typ}"] * (last - first - 1)
    return out


def to_iob2(tags):
    """IOB1, IOB2 or BIOES tags as IOB2: every entity starts with B-, inner tokens are I-."""
    return iob2_tags(len(tags), spans(tags))
