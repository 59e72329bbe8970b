"""Window positions: every token of a batch of sentences with its +-r neighbours."""
import numpy as np


def window_positions(lengths, radius):
    """Positions of each token's window in the flat token array, with pads marked.

    lengths: (S,) tokens per sentence; the N = sum(lengths) tokens are laid out flat.
    Returns (N, 2r+1) int64 indices into ``[tokens..., left_pad, right_pad]``: a slot before its
    sentence's start holds N (the left pad), one past its end holds N + 1 (the right pad).
    """
    lengths = np.asarray(lengths, dtype=np.int64)
    n = int(lengths.sum())
    starts = np.cumsum(lengths) - lengths
    sentence_start = np.repeat(starts, lengths)
    sentence_end = sentence_start + np.repeat(lengths, lengths)
    offsets = np.arange(-radius, radius + 1)
    pos = np.arange(n)[:, None] + offsets[None, :]
    before = pos < sentence_start[:, None]
    after = pos >= sentence_end[:, None]
    return np.where(before, n, np.where(after, n + 1, pos))
