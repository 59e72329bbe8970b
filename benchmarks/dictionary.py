"""A user's list for a type of their own: DRUG F1 on the dev mentions never seen in training, with and without it.

    python benchmarks/dictionary.py [--seeds 1 2 3] [--epochs 25]

Trains on tests/fixtures/drugs/train.jsonl (GloVe vectors, gazetteer features of 4) and scores
tests/fixtures/drugs/dev.jsonl, once without a dictionary and once with
tests/fixtures/drugs/dictionary.jsonl (drug names written independently of the fixture: it holds
some of the dev split's drugs, as a user's list would, and no other text of it) in training and at
serving. A mention is unseen when its words, lower-cased, are no DRUG mention of the training file;
precision counts the predicted spans whose words are unseen, recall the unseen gold mentions.
"""
import argparse
import os
import statistics
import sys
import tempfile

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

from model.decode import spans  # noqa: E402
from model.dictionary import Dictionary  # noqa: E402
from model.predict import Model  # noqa: E402
from training.spans import read_data  # noqa: E402
from training.train import TrainConfig, train  # noqa: E402

DRUGS = os.path.join(ROOT, "tests", "fixtures", "drugs")


def mentions(sentence, tags):
    return {(a, b, " ".join(sentence.words[a:b]).lower()) for t, a, b in spans(tags) if t == "DRUG"}


def unseen_f1(model, dev, seen):
    tp = fp = fn = 0
    tags, _ = model.tag_sentences([s.words for s in dev])
    for s, ids in zip(dev, tags):
        gold = {m for m in mentions(s, s.tags) if m[2] not in seen}
        pred = {m for m in mentions(s, [model.labels[i] for i in ids]) if m[2] not in seen}
        tp, fp, fn = tp + len(gold & pred), fp + len(pred - gold), fn + len(gold - pred)
    p, r = tp / max(tp + fp, 1), tp / max(tp + fn, 1)
    return 2 * p * r / max(p + r, 1e-12), tp + fn


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[1, 2, 3])
    parser.add_argument("--epochs", type=int, default=25)
    args = parser.parse_args(argv)
    train_file, dev_file = os.path.join(DRUGS, "train.jsonl"), os.path.join(DRUGS, "dev.jsonl")
    listed = os.path.join(DRUGS, "dictionary.jsonl")
    seen = {m[2] for s in read_data(train_file)[0] for m in mentions(s, s.tags)}
    dev = read_data(dev_file)[0]
    results = {"without": [], "with": []}
    with tempfile.TemporaryDirectory() as tmp:
        for seed in args.seeds:
            for name, dictionary in (("without", ""), ("with", listed)):
                cfg = TrainConfig(seed=seed, epochs=args.epochs, gazetteer_dim=4, dictionary=dictionary)
                out = os.path.join(tmp, f"{name}-{seed}")
                train(cfg, train_file, dev_file, out, quiet=True)
                model = Model.load(out)
                if dictionary:
                    model.use_dictionary(Dictionary.read(dictionary))
                f1, n = unseen_f1(model, dev, seen)
                results[name].append(f1)
                print(f"seed {seed} {name:7s} dictionary: DRUG F1 on {n} unseen dev mentions {f1:.4f}", flush=True)
    for name, f1s in results.items():
        spread = statistics.stdev(f1s) if len(f1s) > 1 else 0.0
        print(f"{name:7s} dictionary: mean {statistics.mean(f1s):.4f} (sd {spread:.4f}) over seeds {args.seeds}")


if __name__ == "__main__":
    main()
