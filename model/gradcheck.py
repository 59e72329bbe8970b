"""Centred-difference check of every analytic gradient, on tiny seeded float64 models.

    python -m model.gradcheck            # every activation, with and without pooling;
                                         # exits 1 if any error exceeds 1e-7
"""
import argparse
import sys

import numpy as np

from model.layers import ACTIVATIONS, RowGrad
from model.network import Config, init_params, loss, table_key, table_names

H_STEP = 1e-4
TOLERANCE = 1e-7


def tiny_problem(activation, seed=0, pooling=True):
    """A seeded model small enough to perturb every weight: every feature kind (word vectors, casing,
    suffix, two gazetteer categories and character embeddings), and with ``pooling`` the readouts
    of the mentions and the document (``model.network``). Returns (params, config, windows, y).

    The scales keep both error sources of a centred difference far below the tolerance:
    inputs of about 0.2 keep the h^2 truncation term small, and a strong L2 term (quadratic, so
    differenced exactly) keeps gradient entries well above the roundoff floor eps * J / h.
    """
    rng = np.random.default_rng(seed)
    config = Config(radius=2, word_dim=3, hidden=5, activation=activation,
                    features={"case": 2, "suffix": 2, "gaz_LOC": 2, "gaz_first": 1},
                    l2=0.2, char_dim=2, char_filters=3, char_length=7,
                    pool_mentions=pooling, pool_document=pooling)
    sizes = {"word": 7, "case": 8, "suffix": 4, "gaz_LOC": 5, "gaz_first": 5, "chars": 6}
    params = init_params(config, sizes, n_tags=5, rng=rng, dtype=np.float64)
    for name in table_names(config):
        params[table_key(name)] = rng.normal(0, 0.2, params[table_key(name)].shape)
    params["C"] = rng.normal(0, 0.2, params["C"].shape)
    # A pad's character vector is 0, so some of W's entries get only the L2 term's gradient, l2 * W:
    # no entry so small that roundoff in J would swamp it.
    params["W"] = rng.choice([-1.0, 1.0], params["W"].shape) * rng.uniform(0.05, 0.35, params["W"].shape)
    params["b"] += rng.normal(0, 0.5, params["b"].shape)
    params["c"] += rng.normal(0, 0.5, params["c"].shape)
    for key, _ in config.pools:
        params[key] = rng.normal(0, 0.3, params[key].shape)
    n = 4
    windows = {name: rng.integers(0, sizes[name], (n, config.window)) for name in table_names(config)}
    # Five words of 3 to 7 characters (marks included), padded with 0; slots point at them or at a pad (5).
    lengths = np.array([3, 4, 5, 7, 6])
    chars = rng.integers(1, sizes["chars"], (len(lengths), config.char_length))
    chars[np.arange(config.char_length)[None, :] >= lengths[:, None]] = 0
    windows["chars"], windows["char_rows"] = chars, rng.integers(0, len(lengths) + 1, (n, config.window))
    # Tokens 0, 2 and 3 mentions of one word; 0 alone in its document, 1 to 3 in another.
    windows["mention_groups"], windows["doc_groups"] = np.array([0, 1, 0, 0]), np.array([5, 9, 9, 9])
    return params, config, windows, rng.integers(0, 5, n)


def relative_error(analytic, numeric):
    return np.abs(analytic - numeric) / np.maximum(np.abs(analytic) + np.abs(numeric), 1e-12)


def check(params, config, windows, y, h=H_STEP):
    """{param key: max relative error between its analytic and centred-difference gradient}."""
    _, grads = loss(params, config, windows, y)
    errors = {}
    for key, value in params.items():
        analytic = grads[key].dense() if isinstance(grads[key], RowGrad) else grads[key]
        numeric = np.zeros_like(value)
        for i in np.ndindex(value.shape):
            old = value[i]
            value[i] = old + h
            plus = loss(params, config, windows, y)[0]
            value[i] = old - h
            minus = loss(params, config, windows, y)[0]
            value[i] = old
            numeric[i] = (plus - minus) / (2 * h)
        errors[key] = float(relative_error(analytic, numeric).max())
    return errors


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--activation", choices=sorted(ACTIVATIONS), action="append")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    worst = 0.0
    for activation in args.activation or sorted(ACTIVATIONS):
        for pooling in (False, True):
            errors = check(*tiny_problem(activation, args.seed, pooling))
            worst = max(worst, *errors.values())
            print(f"{activation:8s} {'pooling' if pooling else 'alone':8s}"
                  + "  ".join(f"{k}={e:.1e}" for k, e in errors.items()))
    print(f"max relative error {worst:.2e} (tolerance {TOLERANCE:.0e})")
    return 0 if worst < TOLERANCE else 1


if __name__ == "__main__":
    sys.exit(main())
