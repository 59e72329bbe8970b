"""Tokenized sentences turned back into ordinary text, and entities scored by exact character spans.

This measures what users get: raw text goes through the service's own tokenizer and sentence
splitter (``model.predict``), so every tokenization or sentence-boundary mistake costs what it
costs in use.
"""
from collections import Counter

from model.decode import spans
from model.predict import predict

_NO_SPACE_BEFORE = {",", ".", ";", ":", "!", "?", ")", "]", "}", "%", "'s", "n't", "'re", "'ve", "'ll", "'d", "'m"}
_NO_SPACE_AFTER = {"(", "[", "{", "$"}


def detokenize(words):
    """(text, [(start, end)] of every word): no space before closing marks and clitics, none after opening ones."""
    text, offsets = "", []
    for i, word in enumerate(words):
        if i and word.lower() not in _NO_SPACE_BEFORE and words[i - 1] not in _NO_SPACE_AFTER:
            text += " "
        offsets.append((len(text), len(text) + len(word)))
        text += word
    return text, offsets


def documents(sentences):
    """Each document's sentences as one text, with its gold entities as (start, end, type).

    Sentences of a document follow each other after a space, as in running text; a sentence
    that does not end with a full stop (a headline, a dateline, a row of a table) ends its line.
    """
    docs, current = [], None
    for s in sentences:
        if current is None or s.doc != current[2]:
            current = ["", set(), s.doc]
            docs.append(current)
        text, offsets = detokenize(s.words)
        if current[0]:
            current[0] += " " if current[0].rstrip("\"' ").endswith((".", "!", "?")) else "\n"
        base = len(current[0])
        for typ, first, last in spans(s.tags):
            current[1].add((base + offsets[first][0], base + offsets[last - 1][1], typ))
        current[0] += text
    return [(text, gold) for text, gold, _ in docs]


def _prf(tp, n_pred, n_gold):
    p = tp / n_pred if n_pred else 0.0
    r = tp / n_gold if n_gold else 0.0
    return {"precision": p, "recall": r, "f1": 2 * p * r / (p + r) if p + r else 0.0}


def raw_scores(model, sentences):
    """Entity P/R/F1 of ``model`` on the sentences as raw text, by exact character span and type."""
    docs = documents(sentences)
    results = predict([text for text, _ in docs], model, tokens=False)
    tp, n_pred, n_gold = Counter(), Counter(), Counter()
    for (_, gold), result in zip(docs, results):
        found = {(e["start"], e["end"], e["label"]) for e in result["entities"]}
        for span in gold:
            n_gold[span[2]] += 1
        for span in found:
            n_pred[span[2]] += 1
            tp[span[2]] += span in gold
    per_type = {t: {**_prf(tp[t], n_pred[t], n_gold[t]), "support": n_gold[t]} for t in sorted(n_gold | n_pred)}
    return {"overall": _prf(sum(tp.values()), sum(n_pred.values()), sum(n_gold.values())), "per_type": per_type,
            "documents": len(docs)}
