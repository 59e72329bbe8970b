"""The answers of a model, written out and digested, so two versions of the code can be compared byte for byte.

    python benchmarks/answers.py [--model models/default] [--data ../shared/data/conll2003/valid.txt]
                                 [--random 3000] [--out answers.jsonl]

Texts: every sentence of the split alone, every document of it (its sentences one per line), and
``--random`` seeded texts of words from the split mixed with hostile characters, spacing and casing.
Each answer is predict()'s JSON with tokens and probabilities, with explanations, and of the
entities alone; the sha256 of each part, and of all, is printed.
"""
import argparse
import hashlib
import os
import random
import sys

import orjson

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from model.predict import Model, predict  # noqa: E402
from training.conll import read_conll  # noqa: E402

HOSTILE = ["\u0301", "\u200d", "\u202e", "\x00", "\ufeff", "\u3000", "🙂", "👩‍👩‍👧", "\n", "\t", "  ", "'s", "n't",
           "U.S.", "--", "...", "(", ")", "\"", "e-mail", "3.14", "1,000", "@user", "#tag", "http://x.org/a?b=c"]


def texts_of(data, n_random, seed=0):
    sentences, _ = read_conll(data)
    alone = [" ".join(s.words) for s in sentences]
    docs = {}
    for s in sentences:
        docs.setdefault(s.doc, []).append(" ".join(s.words))
    documents = ["\n".join(d) for d in docs.values()]
    rng = random.Random(seed)
    vocab = [w for s in sentences for w in s.words]
    casings = [str, str.lower, str.upper, str.title]
    hostile = []
    for _ in range(n_random):
        pieces = [rng.choice(vocab) if rng.random() < 0.7 else rng.choice(HOSTILE) for _ in range(rng.randint(0, 60))]
        joins = [rng.choice([" ", "", "  ", "\n", " \n\n "]) for _ in pieces]
        hostile.append(rng.choice(casings)("".join(p + j for p, j in zip(pieces, joins))))
    return {"sentences": alone, "documents": documents, "random": hostile}


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="models/default")
    parser.add_argument("--data", default=os.path.join("..", "shared", "data", "conll2003", "valid.txt"))
    parser.add_argument("--random", type=int, default=3000)
    parser.add_argument("--out")
    args = parser.parse_args(argv)
    model = Model.load(args.model)
    total = hashlib.sha256()
    out = open(args.out, "wb") if args.out else None
    for part, texts in texts_of(args.data, args.random).items():
        digest = hashlib.sha256()
        for mode, kwargs in (("tokens", {}), ("explain", {"explain": True}), ("entities", {"tokens": False})):
            for text, answer in zip(texts, predict(texts, model, **kwargs)):
                line = orjson.dumps({"part": part, "mode": mode, "text": text, "answer": answer}) + b"\n"
                digest.update(line)
                total.update(line)
                if out:
                    out.write(line)
        print(f"{part:10s} {len(texts):6d} texts  sha256 {digest.hexdigest()}")
    print(f"all                     sha256 {total.hexdigest()}")
    if out:
        out.close()


if __name__ == "__main__":
    main()
