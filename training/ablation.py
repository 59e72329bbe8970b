"""What each modelling choice gives: train variants of the default config and tabulate dev F1.

    python -m training.ablation --train train.txt --dev valid.txt [--set casing] [--epochs 12] [--out ablation.md]

Every variant changes one thing from the defaults, with the same seed and epoch budget. Each row
gives dev F1 as written and with every word lower-cased, upper-cased and title-cased.
"""
import argparse
import json
import tempfile
import time

from model.predict import Model
from training.conll import read_conll
from training.embeddings import glove_6b_50d
from training.evaluate import robustness
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
NO_RECASING = {"lower": 0.0, "upper": 0.0, "title": 0.0}
CASING_VARIANTS = [
    ("re-cased 25% lower, 10% upper, 10% title; casing read per sentence regime", {"char_dim": 0}),
    ("neither re-casing nor regimes (the earlier default)", {"recase": NO_RECASING, "case_regimes": False,
                                                             "char_dim": 0}),
    ("sentence regimes, no re-casing", {"recase": NO_RECASING, "char_dim": 0}),
    ("re-casing, no sentence regimes", {"case_regimes": False, "char_dim": 0}),
    ("re-casing, no casing feature at all", {"features": {}, "char_dim": 0}),
    ("re-cased less: 15% lower, 5% upper, 5% title", {"recase": {"lower": 0.15, "upper": 0.05, "title": 0.05},
                                                      "char_dim": 0}),
    ("re-cased more: 35% lower, 15% upper, 15% title", {"recase": {"lower": 0.35, "upper": 0.15, "title": 0.15},
                                                        "char_dim": 0}),
    ("lower-casing only: 40% lower", {"recase": {"lower": 0.4, "upper": 0.0, "title": 0.0}, "char_dim": 0}),
]
CHAR_VARIANTS = [
    ("default: character features, 16-dim characters, 32 filters of width 3", {}),
    ("no character features", {"char_dim": 0}),
    ("64 filters", {"char_filters": 64}),
    ("character features, no re-casing nor regimes", {"recase": NO_RECASING, "case_regimes": False}),
]
NO_POOLING = {"pool_mentions": False, "pool_document": False}
POOLING_VARIANTS = [
    ("default: mentions and document pooled, documents re-cased whole", {}),
    ("mentions only", {"pool_document": False}),
    ("document only", {"pool_mentions": False}),
    ("no pooling", NO_POOLING),
    ("each sentence re-cased on its own", {"recase_documents": False}),
    ("blocks of at most 1,024 tokens", {"block_tokens": 1024}),
    ("default, seed 2", {"seed": 2}),
]
SETS = {"base": VARIANTS, "casing": CASING_VARIANTS, "chars": CHAR_VARIANTS, "pooling": POOLING_VARIANTS}


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--train", required=True)
    parser.add_argument("--dev", required=True)
    parser.add_argument("--epochs", type=int, default=12)
    parser.add_argument("--out", default="ablation.md")
    parser.add_argument("--set", choices=sorted(SETS), default="base", help="which variants")
    parser.add_argument("--only", type=int, nargs="*", help="indices of variants to run")
    args = parser.parse_args(argv)
    vectors = glove_6b_50d()
    dev, _ = read_conll(args.dev)
    rows = []
    for i, (label, change) in enumerate(SETS[args.set]):
        if args.only and i not in args.only:
            continue
        cfg = TrainConfig(**{"epochs": args.epochs, "patience": 3, **change})
        with tempfile.TemporaryDirectory() as out:
            t0 = time.perf_counter()
            manifest = train(cfg, args.train, args.dev, out, vectors=vectors, quiet=True)
            seconds = time.perf_counter() - t0
            cased = robustness(Model.load(out), dev, ("lower", "upper", "title"))["casing"]
        o = manifest["metrics"]["dev"]["overall"]
        recased = [cased[c]["overall"]["f1"] for c in ("lower", "upper", "title")]
        rows.append((label, json.dumps(change), o["precision"], o["recall"], o["f1"], *recased,
                     manifest["training"]["epochs"], seconds))
        print(f"{label:60s} F1 {o['f1']:.4f} lower {recased[0]:.4f} upper {recased[1]:.4f} title {recased[2]:.4f}"
              f"  ({manifest['training']['epochs']} epochs, {seconds:.0f} s)", flush=True)
    lines = ["| variant | change | dev P | dev R | dev F1 | lower F1 | UPPER F1 | Title F1 | epochs | seconds |",
             "|---|---|---|---|---|---|---|---|---|---|"]
    lines += [f"| {r[0]} | `{r[1]}` | {r[2]:.4f} | {r[3]:.4f} | {r[4]:.4f} | {r[5]:.4f} | {r[6]:.4f} | {r[7]:.4f} "
              f"| {r[8]} | {r[9]:.0f} |" for r in rows]
    with open(args.out, "w") as f:
        f.write("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
