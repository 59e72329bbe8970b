"""Offline training: CoNLL data, word vectors, optimiser, trainer, evaluation, report."""
