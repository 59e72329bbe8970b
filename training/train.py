"""Train the window classifier on CoNLL files and write an artifact the service can load.

    python -m training.train --train train.txt --dev valid.txt --out models/mine [--epochs 20 ...]

Every hyper-parameter lives in TrainConfig below; each one is also a command-line option.
"""
import argparse
import copy
import hashlib
import json
import os
import sys
import time
from collections import Counter
from dataclasses import MISSING, asdict, dataclass, field, fields

import numpy as np
from threadpoolctl import threadpool_limits
from tqdm import tqdm

from model import artifact
from model.features import Featurizer, build_affix_vocab, build_char_vocab
from model.network import Config, init_params, loss, table_names
from model.predict import Model
from model.vocab import Vocab, normalize
from training import calibration, embeddings, report
from training.conll import ConllError, to_bioes
from training.evaluate import evaluate, robustness
from training.optim import OPTIMISERS
from training.recase import CASINGS, recase
from training.spans import FORMATS, read_data


@dataclass
class TrainConfig:
    """Training defaults; every field can be overridden as --field value."""

    # network (saved with the weights)
    radius: int = 2
    hidden: int = 300
    activation: str = "relu"
    features: dict = field(default_factory=lambda: {"case": 8})
    case_regimes: bool = True      # casing read against the sentence's regime (lower, upper, title, cased)
    char_dim: int = 16             # character embeddings (0: no character features)
    char_filters: int = 32         # size of a word's character vector (convolution filters)
    char_width: int = 3            # characters each filter sees
    char_length: int = 20          # characters of a word read, begin and end marks included
    char_min_count: int = 2        # characters seen fewer times are <unk>
    affix_length: int = 3
    dropout: float = 0.2
    l2: float = 0.0
    # data
    scheme: str = "BIOES"          # tags the network predicts: BIO or BIOES
    extra_vectors: int = 60000     # most frequent pretrained words kept besides the training words
    affix_min_count: int = 2
    word_dropout: float = 0.5      # chance a once-seen word is shown as <unk>, so <unk> gets trained
    # share of sentences shown re-cased in each epoch, drawn afresh every epoch; the rest as written
    recase: dict = field(default_factory=lambda: {"lower": 0.25, "upper": 0.1, "title": 0.1})
    # optimisation
    optimiser: str = "adam"
    lr: float = 1e-3
    lr_decay: float = 0.9          # learning rate multiplied by this after every epoch
    batch_size: int = 64
    epochs: int = 25
    patience: int = 4              # stop after this many epochs without a better dev F1
    seed: int = 1
    max_seconds: float = 0.0       # if > 0, start no epoch after this long: a different, shorter run, said so
    blas_threads: int = 1          # more only slows the small products of a step, and breaks under load

    def model_config(self, word_dim):
        return Config(radius=self.radius, word_dim=word_dim, hidden=self.hidden, activation=self.activation,
                      features=dict(self.features), affix_length=self.affix_length, dropout=self.dropout, l2=self.l2,
                      case_regimes=self.case_regimes and "case" in self.features, char_dim=self.char_dim,
                      char_filters=self.char_filters, char_width=self.char_width, char_length=self.char_length)

    def recase_shares(self):
        """(casings, probabilities) a sentence is shown in, "as-is" first with what the others leave."""
        unknown = set(self.recase) - set(CASINGS[1:])
        if unknown:
            raise ValueError(f"--recase: unknown casings {sorted(unknown)}; expected {', '.join(CASINGS[1:])}")
        shares = [float(self.recase.get(c, 0.0)) for c in CASINGS[1:]]
        if min(shares, default=0.0) < 0 or sum(shares) > 1:
            raise ValueError("--recase: shares must be >= 0 and sum to at most 1")
        return list(CASINGS), [1.0 - sum(shares), *shares]


def tag_labels(tag_lists):
    """'O' then each type's tags in scheme order, types sorted."""
    types = sorted({t[2:] for tags in tag_lists for t in tags if t != "O"})
    prefixes = "BIES" if any(t[:1] in "ES" for tags in tag_lists for t in tags) else "BI"
    return ["O"] + [f"{p}-{typ}" for typ in types for p in prefixes]


def file_sha256(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def build_vocabs(cfg, sentences, kv, rng):
    counts = Counter(normalize(w) for s in sentences for w in s.words)
    words, vectors, found = embeddings.vocabulary_rows(counts, kv, cfg.extra_vectors, rng)
    vocabs = {"word": Vocab(words)}
    all_words = [w for s in sentences for w in s.words]
    for name in cfg.features:
        if name in ("suffix", "prefix"):
            vocabs[name] = build_affix_vocab(all_words, name, cfg.affix_length, cfg.affix_min_count)
    if cfg.char_dim > 0 and cfg.char_filters > 0:
        vocabs["chars"] = build_char_vocab(all_words, cfg.char_min_count)
    # Rows 0..2 are <unk>, <s>, </s>: small random starts, trained like any other word.
    specials = rng.normal(0.0, 0.1, (3, vectors.shape[1])).astype(np.float32)
    rare = [w for w, n in counts.items() if n == 1]  # counts are keyed by normalised words already
    rare_ids = np.zeros(len(vocabs["word"]), dtype=bool)
    rare_ids[vocabs["word"].ids(rare)] = True
    rare_ids[vocabs["word"].unk_id] = False
    return vocabs, np.vstack([specials, vectors]), rare_ids, int(found.sum())


def casing_windows(featurizer, sentences, casings):
    """(casings, N, 2r+1) casing-table windows of the sentences shown in each casing; None without a casing table."""
    if "case" not in featurizer.names:
        return None
    return np.stack([featurizer.windows([recase(s.words, c) for s in sentences])["case"] for c in casings])


def epoch_casings(rng, shares, lengths):
    """(N,) index of the casing each token is shown in this epoch: one draw per sentence."""
    return rng.choice(len(shares), size=len(lengths), p=shares).repeat(lengths)


def run_epoch(params, cfg, model_cfg, windows, y, optimiser, rng, rare, featurizer, bar, recased=None):
    """One pass over the tokens in random order; ``recased``: (casing windows, (N,) casing per token)."""
    unk_id = featurizer.vocabs["word"].unk_id
    order = rng.permutation(len(y))
    total, seen = 0.0, 0
    for start in range(0, len(order), cfg.batch_size):
        idx = order[start: start + cfg.batch_size]
        batch = {k: v[idx] for k, v in windows.items()}
        if recased is not None:
            # Word, affix and vector ids are of lower-cased words: only the casing ids change.
            batch["case"] = recased[0][recased[1][idx], idx]
        if model_cfg.chars:  # a word shown as <unk> keeps its characters, as an unknown word does in use
            batch["chars"], batch["char_rows"] = featurizer.char_windows(batch["word"])
        if cfg.word_dropout > 0:
            w = batch["word"]
            drop = rare[w] & (rng.random(w.shape) < cfg.word_dropout)
            batch["word"] = np.where(drop, unk_id, w)
        J, grads = loss(params, model_cfg, batch, y[idx], rng)
        optimiser.step(params, grads)
        total += float(J) * len(idx)
        seen += len(idx)
        bar.update(len(idx))
    return total / seen


def default_name(train_path):
    """What the model is trained on: the training file's name, or its folder's for a generic name."""
    path = os.path.abspath(str(train_path))
    stem = os.path.splitext(os.path.basename(path))[0]
    if stem.lower() in ("train", "training", "data", "all", "annotations"):
        stem = os.path.basename(os.path.dirname(path)) or stem
    return "nerve-" + "".join(ch if ch.isalnum() or ch in "-_." else "-" for ch in stem)


def train(cfg, train_path, dev_path, out_dir, vectors=None, quiet=False, info=None, data_format="auto",
          skip_invalid=False):
    """Fit, calibrate, write the artifact and report. Returns the manifest written."""
    with threadpool_limits(limits=cfg.blas_threads, user_api="blas"):
        return _train(cfg, train_path, dev_path, out_dir, vectors, quiet, info, data_format, skip_invalid)


def _train(cfg, train_path, dev_path, out_dir, vectors, quiet, info, data_format, skip_invalid):
    started = time.perf_counter()
    casings, shares = cfg.recase_shares()
    rng = np.random.default_rng(cfg.seed)
    say = print if not quiet else (lambda *a, **k: None)
    train_sents, train_scheme = read_data(train_path, data_format, skip_invalid, say)
    dev_sents, dev_scheme = read_data(dev_path, data_format, skip_invalid, say)
    convert = to_bioes if cfg.scheme.upper() == "BIOES" else (lambda tags: list(tags))
    labels = tag_labels([convert(s.tags) for s in train_sents])
    label_index = {t: i for i, t in enumerate(labels)}

    kv = vectors if vectors is not None else embeddings.glove_6b_50d()
    vocabs, word_vectors, rare, pretrained = build_vocabs(cfg, train_sents, kv, rng)
    model_cfg = cfg.model_config(word_vectors.shape[1])
    featurizer = Featurizer(model_cfg, vocabs)
    windows = featurizer.windows([s.words for s in train_sents])
    lengths = [len(s.words) for s in train_sents]
    case_windows = casing_windows(featurizer, train_sents, casings) if shares[0] < 1 else None
    y = np.array([label_index[t] for s in train_sents for t in convert(s.tags)], dtype=np.int64)
    sizes = {n: featurizer.table_size(n) for n in table_names(model_cfg) + (["chars"] if model_cfg.chars else [])}
    params = init_params(model_cfg, sizes, len(labels), rng, word_vectors=word_vectors)
    optimiser = OPTIMISERS[cfg.optimiser](params, lr=cfg.lr)
    log = print if not quiet else (lambda *a, **k: None)
    log(f"train {len(train_sents)} sentences ({train_scheme}), {len(y)} tokens; dev {len(dev_sents)} "
        f"({dev_scheme}); vocab {len(vocabs['word'])} ({pretrained} pretrained); labels {len(labels)}")

    history, best, best_f1, stale, cut_short = [], None, -1.0, 0, False
    for epoch in range(1, cfg.epochs + 1):
        t0 = time.perf_counter()
        recased = None if case_windows is None else (case_windows, epoch_casings(rng, shares, lengths))
        with tqdm(total=len(y), desc=f"epoch {epoch}", unit="tok", leave=False, disable=quiet) as bar:
            mean_loss = run_epoch(params, cfg, model_cfg, windows, y, optimiser, rng, rare, featurizer, bar, recased)
        seconds = time.perf_counter() - t0
        scores = evaluate(Model(params, model_cfg, featurizer, labels, {}), dev_sents)
        o = scores["overall"]
        history.append({"epoch": epoch, "loss": mean_loss, "dev": o, "tokens_per_s": len(y) / seconds,
                        "lr": optimiser.lr})
        log(f"epoch {epoch:2d}  loss {mean_loss:.4f}  dev P {o['precision']:.4f} R {o['recall']:.4f} "
            f"F1 {o['f1']:.4f}  {len(y) / seconds:,.0f} tok/s")
        if o["f1"] > best_f1:
            best_f1, best, best_scores, stale = o["f1"], copy.deepcopy(params), scores, 0
        else:
            stale += 1
        optimiser.lr *= cfg.lr_decay
        if stale >= cfg.patience:
            break
        if cfg.max_seconds > 0 and time.perf_counter() - started > cfg.max_seconds and epoch < cfg.epochs:
            cut_short = True
            print(f"WARNING: --max-seconds {cfg.max_seconds:g} reached after epoch {epoch}: training stopped "
                  "early; this model differs from a full run's", file=sys.stderr)
            break

    model = Model(best, model_cfg, featurizer, labels, {})
    dev_scores = model.scores(model.batch([s.words for s in dev_sents])).astype(np.float64)
    dev_gold = np.array([label_index[t] for s in dev_sents for t in convert(s.tags)], dtype=np.int64)
    temperature = calibration.fit_temperature(dev_scores, dev_gold)
    token_sentence = np.repeat(np.arange(len(dev_sents)), [len(s.words) for s in dev_sents])
    calib = {"before": calibration.calibration_summary(dev_scores, dev_gold, 1.0, labels),
             "after": calibration.calibration_summary(dev_scores, dev_gold, temperature, labels),
             "held_out": calibration.held_out_summary(dev_scores, dev_gold, token_sentence, labels)}
    calibrated = Model(best, model_cfg, featurizer, labels, {"calibration": {"temperature": temperature}})
    robust = robustness(calibrated, dev_sents, CASINGS, raw=True)
    elapsed = time.perf_counter() - started
    manifest_info = {
        "name": default_name(train_path),
        **(info or {}),
        "training": {"train": {"path": str(train_path), "sha256": file_sha256(train_path), "scheme": train_scheme},
                     "dev": {"path": str(dev_path), "sha256": file_sha256(dev_path), "scheme": dev_scheme},
                     "config": asdict(cfg), "epochs": len(history), "seconds": round(elapsed, 1),
                     "cut_short_by_max_seconds": cut_short},
        "metrics": {"dev": {"overall": best_scores["overall"], "per_type": best_scores["per_type"]},
                    "dev_by_casing": {c: r["overall"] for c, r in robust["casing"].items()},
                    "dev_raw_text_by_casing": {c: r["overall"] for c, r in robust["raw"].items()}},
        "calibration": {"temperature": temperature, "method": "temperature scaling on the dev split",
                        "ece_before": calib["before"]["all_tokens"]["ece"],
                        "ece_after": calib["after"]["all_tokens"]["ece"],
                        "entity_ece_before": calib["before"]["entity_tokens"]["ece"],
                        "entity_ece_after": calib["after"]["entity_tokens"]["ece"],
                        "ece_held_out": calib["held_out"]["all_tokens"]["ece"],
                        "entity_ece_held_out": calib["held_out"]["entity_tokens"]["ece"]},
    }
    manifest = artifact.save(out_dir, best, model_cfg, vocabs, labels, manifest_info)
    served = Model.load(out_dir)
    report.write(out_dir, served, dev_sents, history, calib, manifest, robust)
    log(f"best dev F1 {best_f1:.4f}; temperature {temperature:.3f}; ECE {calib['before']['all_tokens']['ece']:.4f}"
        f" -> {calib['after']['all_tokens']['ece']:.4f}; {elapsed:.0f} s; wrote {out_dir}")
    return manifest


def _flag(text):
    if text.lower() in ("1", "true", "yes", "on"):
        return True
    if text.lower() in ("0", "false", "no", "off"):
        return False
    raise argparse.ArgumentTypeError(f"expected true or false, got {text!r}")


def parse_args(argv):
    parser = argparse.ArgumentParser(description="Train the window NER model on CoNLL files.")
    parser.add_argument("--train", required=True, help="training CoNLL file")
    parser.add_argument("--dev", required=True, help="dev CoNLL file (early stopping, calibration)")
    parser.add_argument("--out", required=True, help="directory to write the model into")
    source = parser.add_mutually_exclusive_group()
    source.add_argument("--embeddings", help="word2vec/GloVe vectors (.bin binary, else text)")
    source.add_argument("--train-word2vec", metavar="CORPUS", help="fit Word2Vec on this text first")
    parser.add_argument("--name", help="model name in the manifest (default: nerve-<training file or folder>)")
    parser.add_argument("--version", help="version string recorded in the manifest (default: the weights' sha256)")
    parser.add_argument("--format", choices=["auto", "conll", *FORMATS], default="auto",
                        help="data format (auto: CoNLL columns, or a span file by its content)")
    parser.add_argument("--skip-invalid", action="store_true",
                        help="skip spans that do not fit the tokens (and say how many) instead of stopping")
    parser.add_argument("--quiet", action="store_true")
    for f in fields(TrainConfig):
        default = f.default if f.default_factory is MISSING else f.default_factory()
        kind = json.loads if isinstance(default, dict) else _flag if isinstance(default, bool) else type(default)
        parser.add_argument(f"--{f.name.replace('_', '-')}", dest=f.name, type=kind, default=default,
                            help=f"default {json.dumps(default)}")
    args = parser.parse_args(argv)
    cfg = TrainConfig(**{f.name: getattr(args, f.name) for f in fields(TrainConfig)})
    if cfg.optimiser not in OPTIMISERS:
        parser.error(f"--optimiser must be one of {sorted(OPTIMISERS)}")
    if cfg.scheme.upper() not in ("BIO", "BIOES"):
        parser.error("--scheme must be BIO or BIOES")
    try:
        cfg.recase_shares()
    except ValueError as e:
        parser.error(str(e))
    return args, cfg


def main(argv=None):
    args, cfg = parse_args(argv)
    try:
        vectors = None
        if args.embeddings:
            vectors = embeddings.load_vectors(args.embeddings)
        elif args.train_word2vec:
            vectors = embeddings.train_word2vec(args.train_word2vec)
        info = {k: v for k, v in (("name", args.name), ("version", args.version)) if v}
        train(cfg, args.train, args.dev, args.out, vectors=vectors, quiet=args.quiet, info=info,
              data_format=args.format, skip_invalid=args.skip_invalid)
    except (ConllError, ValueError, OSError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
