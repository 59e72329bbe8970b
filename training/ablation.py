"""What each modelling choice gives: train variants of the default config and tabulate dev F1.

    python -m training.ablation --train train.txt --dev valid.txt [--epochs 12] [--out ablation.md]

Every variant changes one thing from the defaults, with the same seed and epoch budget.
"""
import argparse
import json
import tempfile
import time

from training.embeddings import glove_6b_50d
from training.train import TrainConfig, train

VARIANTS = [
    ("default (BIOES, casing feature, r=2, H=300, relu, dropout 0.2)", {}),
    ("casing, suffix and prefix features", {"features": {"case": 8, "suffix": 20, "prefix": 10}}),
    ("tanh", {"activation": "tanh"}),
    ("BIO tags instead of BIOES", {"scheme": "BIO"}),
    ("no feature embeddings (words only)", {"features": {}}),
    ("window radius 1", {"radius": 1}),
    ("window radius 3", {"radius": 3}),
    ("hidden 100", {"hidden": 100}),
    ("no dropout", {"dropout": 0.0}),
    ("no word dropout for rare words", {"word_dropout": 0.0}),
    ("SGD lr 0.1 (the lecture's optimiser)", {"optimiser": "sgd", "lr": 0.1}),
]


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--train", required=True)
    parser.add_argument("--dev", required=True)
    parser.add_argument("--epochs", type=int, default=12)
    parser.add_argument("--out", default="ablation.md")
    parser.add_argument("--only", type=int, nargs="*", help="indices of variants to run")
    args = parser.parse_args(argv)
    vectors = glove_6b_50d()
    rows = []
    for i, (label, change) in enumerate(VARIANTS):
        if args.only and i not in args.only:
            continue
        cfg = TrainConfig(**{"epochs": args.epochs, "patience": 3, **change})
        with tempfile.TemporaryDirectory() as out:
            t0 = time.perf_counter()
            manifest = train(cfg, args.train, args.dev, out, vectors=vectors, quiet=True)
            seconds = time.perf_counter() - t0
        o = manifest["metrics"]["dev"]["overall"]
        rows.append((label, json.dumps(change), o["precision"], o["recall"], o["f1"],
                     manifest["training"]["epochs"], seconds))
        print(f"{label:60s} F1 {o['f1']:.4f}  ({manifest['training']['epochs']} epochs, {seconds:.0f} s)", flush=True)
    lines = ["| variant | change | dev P | dev R | dev F1 | epochs | seconds |", "|---|---|---|---|---|---|---|"]
    lines += [f"| {r[0]} | `{r[1]}` | {r[2]:.4f} | {r[3]:.4f} | {r[4]:.4f} | {r[5]} | {r[6]:.0f} |" for r in rows]
    with open(args.out, "w") as f:
        f.write("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
