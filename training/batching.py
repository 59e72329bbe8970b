"""What one epoch shows the network: its sentences in random batches, casings drawn afresh, and for a
pooling model whole document blocks with their groups of mentions."""
import numpy as np

from model import document
from training.recase import recase


def casing_windows(featurizer, sentences, casings):
    """(casings, N, 2r+1) casing-table windows of the sentences shown in each casing; None without a casing table."""
    if "case" not in featurizer.names:
        return None
    return np.stack([featurizer.windows([recase(s.words, c) for s in sentences])["case"] for c in casings])


def epoch_casings(rng, shares, lengths, sentence_blocks=None):
    """(N,) index of the casing each token is shown in this epoch: one draw per sentence, or with
    ``sentence_blocks`` (the block of each sentence) one per document block, as users' documents come."""
    if sentence_blocks is None:
        return rng.choice(len(shares), size=len(lengths), p=shares).repeat(lengths)
    return rng.choice(len(shares), size=int(sentence_blocks.max()) + 1, p=shares)[sentence_blocks].repeat(lengths)


def batches(rng, sentences, starts, batch_size, sentence_blocks=None):
    """Token indices of each step of an epoch over ``sentences`` (indices; ``starts``: (n + 1,) token
    offsets): tokens in random order, ``batch_size`` at a time; or, with ``sentence_blocks`` (the
    document block of every sentence, for pooling), whole blocks in random order, as many as make
    ``batch_size`` tokens (at least one), so that a batch holds every mention of its words in their
    documents."""
    if sentence_blocks is not None:
        ordered = np.sort(sentences)
        units = np.split(ordered, (np.diff(sentence_blocks[ordered]) != 0).nonzero()[0] + 1)
    else:
        tokens = np.concatenate([np.arange(starts[i], starts[i + 1]) for i in sentences])
        order = rng.permutation(tokens)
        for lo in range(0, len(order), batch_size):
            yield order[lo: lo + batch_size]
        return
    # Whole units (sentences, or blocks of them) in random order, as many as make batch_size tokens.
    sizes = np.array([int((starts[np.asarray(u) + 1] - starts[np.asarray(u)]).sum()) for u in units])
    order = rng.permutation(len(units))
    ends = np.cumsum(sizes[order])
    lo = 0
    while lo < len(order):
        hi = int(np.searchsorted(ends, (ends[lo - 1] if lo else 0) + batch_size)) + 1
        chosen = np.concatenate([units[i] for i in order[lo:hi]]).astype(np.intp)
        yield np.concatenate([np.arange(starts[i], starts[i + 1]) for i in chosen])
        lo = hi


def token_groups(featurizer, sentences, windows, radius, block_tokens):
    """(sentence blocks (S,), {"mention_groups", "doc_groups"}: (N,)) of ``sentences`` and their
    ``windows``, as ``Model.groups`` finds them at serving, but for blocks of at most ``block_tokens``
    (a batch holds whole blocks: data with few document marks still makes many steps an epoch)."""
    lengths = [len(s.words) for s in sentences]
    blocks = document.blocks(lengths, [s.doc for s in sentences], block_tokens)
    words = [w for s in sentences for w in s.words]
    centre, unk_id = windows["word"][:, radius], featurizer.vocabs["word"].unk_id
    token_blocks = np.repeat(blocks, lengths)
    return blocks, {"mention_groups": document.mention_groups(words, token_blocks, centre, unk_id),
                    "doc_groups": token_blocks}
