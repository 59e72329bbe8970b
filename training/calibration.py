"""Temperature scaling of the tag distribution, and how well probabilities match frequencies.

A model's tag distribution is given as a function ``log_probs(T) -> (N, K)`` log-probabilities at
temperature T: each token's softmax of its scores / T (``softmax_log_probs``), and with the document
cue applied after it (``with_document_cue``).
"""
import numpy as np

from model import document

_TINY = 1e-30


def softmax_log_probs(scores):
    """log softmax(scores / T) as a function of T."""
    def log_probs(temperature):
        s = scores / temperature
        s = s - s.max(axis=1, keepdims=True)
        return s - np.log(np.exp(s).sum(axis=1, keepdims=True))
    return log_probs


def with_document_cue(log_probs, groups, weight, model):
    """``log_probs`` with the document cue (``model.document``) applied to the probabilities, tokens
    grouped by ``groups`` (``mention_groups``)."""
    def cued(temperature):
        probs = np.exp(log_probs(temperature))
        return np.log(document.document_cue(probs, groups, weight, model.type_matrix, model.tag_column) + _TINY)
    return cued


def nll(log_probs, gold, temperature, subset=slice(None)):
    return float(-log_probs(temperature)[subset][np.arange(len(gold)), gold].mean())


def fit_temperature(log_probs, gold, low=0.05, high=20.0, steps=60, subset=slice(None)):
    """The T minimising the NLL of ``log_probs(T)`` over the tokens ``subset`` (whose gold tags are
    ``gold``): golden-section search on log T (NLL is unimodal in T)."""
    a, b = np.log(low), np.log(high)
    ratio = (np.sqrt(5) - 1) / 2
    c, d = b - ratio * (b - a), a + ratio * (b - a)
    for _ in range(steps):
        if nll(log_probs, gold, np.exp(c), subset) < nll(log_probs, gold, np.exp(d), subset):
            b = d
        else:
            a = c
        c, d = b - ratio * (b - a), a + ratio * (b - a)
    return float(np.exp((a + b) / 2))


def reliability(confidence, correct, bins=15):
    """Per equal-width confidence bin: (mean confidence, accuracy, count), and the ECE they give."""
    edges = np.linspace(0.0, 1.0, bins + 1)
    which = np.clip(np.digitize(confidence, edges[1:-1]), 0, bins - 1)
    count = np.bincount(which, minlength=bins)
    conf = np.bincount(which, weights=confidence, minlength=bins) / np.maximum(count, 1)
    acc = np.bincount(which, weights=correct.astype(float), minlength=bins) / np.maximum(count, 1)
    ece = float(np.sum(count / max(len(confidence), 1) * np.abs(conf - acc)))
    return {"confidence": conf.tolist(), "accuracy": acc.tolist(), "count": count.tolist(), "ece": ece}


def calibration_summary(log_probs, gold, temperature, labels, bins=15):
    """ECE (15 bins) of the top tag over all tokens and over entity tokens (gold not O), plus the
    class-wise ECE averaged over tags: the probability of every tag, not only the top one."""
    probs = np.exp(log_probs(temperature))
    top = probs.argmax(axis=1)
    conf = probs.max(axis=1)
    correct = top == gold
    entity = np.array([labels[g] != "O" for g in gold])
    classwise = [reliability(probs[:, k], gold == k, bins)["ece"] for k in range(len(labels))]
    return {
        "temperature": temperature,
        "all_tokens": reliability(conf, correct, bins),
        "entity_tokens": reliability(conf[entity], correct[entity], bins),
        "classwise_ece": float(np.mean(classwise)),
        "nll": nll(log_probs, gold, temperature),
    }


def held_out_summary(log_probs, gold, token_sentence, labels, bins=15):
    """Calibration measured on data the temperature never saw: fit T on the even-numbered
    sentences and measure the odd ones, then the other way round; the two halves' tokens pooled."""
    halves = [token_sentence % 2 == 0, token_sentence % 2 == 1]
    probs, golds = [], []
    for fit, test in (halves, halves[::-1]):
        t = fit_temperature(log_probs, gold[fit], subset=fit)
        probs.append(np.exp(log_probs(t)[test]))
        golds.append(gold[test])
    probs, gold = np.concatenate(probs), np.concatenate(golds)
    conf, correct = probs.max(axis=1), probs.argmax(axis=1) == gold
    entity = np.array([labels[g] != "O" for g in gold])
    return {"all_tokens": reliability(conf, correct, bins),
            "entity_tokens": reliability(conf[entity], correct[entity], bins)}
