"""Fine-tuning the shipped model on a small set with one new type: what the old types keep.

    python benchmarks/finetune.py [--model models/default] [--seed 1]

The new data: tests/fixtures/drugs (doccano JSONL, 223 training and 81 dev sentences of news and
chat with drug names annotated as DRUG, and nothing else annotated). Four runs from the same
model and seed: without and with ``--replay`` of the CoNLL-2003 training split (its default
share), each without and with the old types filled in from the starting model's predictions
(``--fill-unannotated``). Old types are scored on the CoNLL-2003 validation split (LOC, MISC, ORG,
PER only), the new one on the drug dev file.
"""
import argparse
import json
import os
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

from model.predict import Model  # noqa: E402
from training import embeddings  # noqa: E402
from training.conll import read_conll  # noqa: E402
from training.evaluate import evaluate  # noqa: E402
from training.train import TrainConfig, train  # noqa: E402

CONLL = os.path.join(ROOT, "..", "shared", "data", "conll2003")
DRUGS = os.path.join(ROOT, "tests", "fixtures", "drugs")
OLD = {"LOC", "MISC", "ORG", "PER"}


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default=os.path.join(ROOT, "models", "default"))
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args(argv)
    valid, _ = read_conll(os.path.join(CONLL, "valid.txt"))
    kv = embeddings.glove_6b_50d()
    base = evaluate(Model.load(args.model), valid, OLD)
    rows = [("starting model", base, None, None)]
    with tempfile.TemporaryDirectory() as tmp:
        for replay in (False, True):
            for fill in (False, True):
                out = os.path.join(tmp, f"r{replay:d}f{fill:d}")
                started = time.perf_counter()
                manifest = train(TrainConfig(seed=args.seed, fill_unannotated=fill), os.path.join(DRUGS, "train.jsonl"),
                                 os.path.join(DRUGS, "dev.jsonl"), out, vectors=kv, quiet=True, init_from=args.model,
                                 replay=os.path.join(CONLL, "train.txt") if replay else None)
                seconds = time.perf_counter() - started
                old = evaluate(Model.load(out), valid, OLD)
                label = f"{'replay' if replay else 'no replay'}, {'old types filled in' if fill else 'not filled'}"
                rows.append((label, old, manifest["metrics"]["dev"]["per_type"]["DRUG"], seconds))
    print(f"{'':40s} {'old types dev F1':>16s} {'LOC':>6s} {'MISC':>6s} {'ORG':>6s} {'PER':>6s} {'DRUG F1':>8s} "
          f"{'P':>6s} {'R':>6s} {'seconds':>8s}")
    for label, old, new, seconds in rows:
        per = old["per_type"]
        line = (f"{label:40s} {old['overall']['f1']:16.4f} " + " ".join(f"{per[t]['f1']:6.4f}" for t in sorted(OLD)))
        if new:
            line += f" {new['f1']:8.4f} {new['precision']:6.4f} {new['recall']:6.4f} {seconds:8.0f}"
        print(line)
    print(json.dumps({label: {"old": old["overall"], "new": new} for label, old, new, _ in rows}))


if __name__ == "__main__":
    main()
