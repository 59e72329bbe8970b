"""Optimisers over the params dict. Embedding grads arrive as RowGrads and update only their rows."""
import numpy as np

from model.layers import RowGrad


class SGD:
    """Plain gradient descent, as in the lecture: theta -= lr * grad."""

    def __init__(self, params, lr=0.1):
        self.lr = lr

    def step(self, params, grads):
        for key, g in grads.items():
            if isinstance(g, RowGrad):
                np.subtract.at(params[key], g.rows, self.lr * g.values)
            else:
                params[key] -= self.lr * g


class AdaGrad:
    """Per-weight learning rates that shrink with the squared gradients seen so far."""

    def __init__(self, params, lr=0.05, eps=1e-8):
        self.lr, self.eps = lr, eps
        self.h = {k: np.zeros_like(v) for k, v in params.items()}

    def step(self, params, grads):
        for key, g in grads.items():
            h = self.h[key]
            if isinstance(g, RowGrad):
                h[g.rows] += g.values * g.values
                params[key][g.rows] -= self.lr * g.values / (np.sqrt(h[g.rows]) + self.eps)
            else:
                h += g * g
                params[key] -= self.lr * g / (np.sqrt(h) + self.eps)


class Adam:
    """Adam; for embedding tables the moments of untouched rows wait (lazy Adam), so a step
    costs the rows a batch used, not the whole table."""

    def __init__(self, params, lr=1e-3, beta1=0.9, beta2=0.999, eps=1e-8):
        self.lr, self.beta1, self.beta2, self.eps = lr, beta1, beta2, eps
        self.m = {k: np.zeros_like(v) for k, v in params.items()}
        self.v = {k: np.zeros_like(v) for k, v in params.items()}
        self.t = 0

    def step(self, params, grads):
        self.t += 1
        b1, b2 = self.beta1, self.beta2
        lr = self.lr * np.sqrt(1 - b2 ** self.t) / (1 - b1 ** self.t)
        for key, g in grads.items():
            m, v = self.m[key], self.v[key]
            if isinstance(g, RowGrad):
                rows = g.rows
                m[rows] = b1 * m[rows] + (1 - b1) * g.values
                v[rows] = b2 * v[rows] + (1 - b2) * g.values * g.values
                params[key][rows] -= lr * m[rows] / (np.sqrt(v[rows]) + self.eps)
            else:
                m *= b1
                m += (1 - b1) * g
                v *= b2
                v += (1 - b2) * g * g
                params[key] -= lr * m / (np.sqrt(v) + self.eps)


OPTIMISERS = {"sgd": SGD, "adagrad": AdaGrad, "adam": Adam}
