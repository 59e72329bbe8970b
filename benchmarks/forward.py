"""Throughput of the batched predict path against the bare GEMMs of the same shapes, in one run.

    python benchmarks/forward.py [--model models/default] [--tokens 65536] [--repeats 7]

The figure is the ratio: predict throughput / bare-GEMM throughput (1.0 = no overhead at all).
Above 1.0 is possible: the hidden layer's input is a sum of stored per-word projections for the
most frequent words (model/projection.py), so uniformly random word ids (every row equally likely,
most of them not stored) are the worst case, and real text (the validation split, where found) the
usual one.
"""
import argparse
import os
import statistics
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)
# One BLAS thread, as each gunicorn worker runs (deploy/gunicorn.conf.py); set before numpy loads.
for _var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ[_var] = "1"

import numpy as np  # noqa: E402

from model.predict import Model, predict  # noqa: E402
from model.windows import window_positions  # noqa: E402

SENTENCE = "Peter Blackburn of the European Commission said on Thursday in Brussels that German lamb exports rose ."


def median_seconds(fn, repeats, inner=1):
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        for _ in range(inner):
            fn()
        times.append((time.perf_counter() - t0) / inner)
    return statistics.median(times), (max(times) - min(times)) / inner


def random_batch(model, n, rng, sentence_length=25):
    """A token batch of n random tokens in sentences of ``sentence_length``, as the featurizer builds it."""
    ids = {name: rng.integers(0, model.featurizer.table_size(name), n + 2).astype(np.int32)
           for name in model.featurizer.names}
    lengths = [sentence_length] * (n // sentence_length) + ([n % sentence_length] if n % sentence_length else [])
    return ids, window_positions(lengths, model.config.radius)


def text_batch(model, n, path):
    """A token batch of the first n tokens of a CoNLL file's sentences."""
    from training.conll import read_conll

    sentences, total = [], 0
    for s in read_conll(path)[0]:
        if total >= n:
            break
        sentences.append(s.words[: n - total])
        total += len(sentences[-1])
    return model.batch(sentences)


def compare(model, batch, repeats, inner, rng):
    n = len(batch[1])
    p = model.params
    x = rng.standard_normal((n, model.config.input_dim)).astype(np.float32)
    a = rng.standard_normal((n, model.config.hidden)).astype(np.float32)

    def gemms():
        x @ p["W"].T
        a @ p["U"].T

    model.probabilities(batch)  # warm up
    t_gemm, s_gemm = median_seconds(gemms, repeats, inner)
    t_pred, s_pred = median_seconds(lambda: model.probabilities(batch), repeats, inner)
    return t_gemm, t_pred, s_gemm, s_pred


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default=os.path.join(ROOT, "models", "default"))
    parser.add_argument("--tokens", type=int, default=65536)
    parser.add_argument("--repeats", type=int, default=7)
    args = parser.parse_args(argv)
    model = Model.load(args.model)
    rng = np.random.default_rng(0)
    print(f"model {model.name} {model.version}: D={model.config.input_dim} H={model.config.hidden} "
          f"K={len(model.labels)} {model.config.activation}; numpy {np.__version__}")
    valid = os.path.join(ROOT, "..", "shared", "data", "conll2003", "valid.txt")
    runs = [("batched, random ids", args.tokens, 1), ("25-token call, random ids", 25, 200)]
    if os.path.exists(valid):
        runs += [("batched, text", args.tokens, 1), ("25-token call, text", 25, 200)]
    for label, n, inner in runs:
        batch = text_batch(model, n, valid) if label.endswith("text") else random_batch(model, n, rng)
        t_gemm, t_pred, s_gemm, s_pred = compare(model, batch, args.repeats, inner, rng)
        print(f"{label:26s} N={n:6d}  predict {n / t_pred:12,.0f} tok/s ({t_pred * 1e3:8.3f} ms +-{s_pred * 1e3:.3f})"
              f"  bare GEMMs {n / t_gemm:12,.0f} tok/s ({t_gemm * 1e3:8.3f} ms)  ratio {t_gemm / t_pred:.2f}")
    t_text, _ = median_seconds(lambda: predict([SENTENCE], model), args.repeats, 200)
    print(f"end to end     one 18-token text through predict(): {t_text * 1e3:.3f} ms "
          f"(tokenize, features, forward, Viterbi, spans)")


if __name__ == "__main__":
    main()
