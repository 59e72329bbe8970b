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

from model import artifact, document
from model.decode import split_tag
from model.dictionary import Dictionary
from model.features import Featurizer, build_affix_vocab, build_char_vocab
from model.gazetteer import Gazetteer, feature_name
from model.network import Config, init_params, loss, table_names
from model.predict import Model
from model.vocab import Vocab, normalize
from training import calibration, embeddings, report
from training.batching import batches, casing_windows, epoch_casings, token_groups
from training.conll import ConllError, to_bioes
from training.evaluate import evaluate, robustness
from training.finetune import fill_unannotated, replay_sampler, start_from
from training.gazetteer import CATEGORIES as GAZETTEER_CATEGORIES
from training.gazetteer import compile_gazetteer
from training.optim import OPTIMISERS
from training.recase import CASINGS
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
    pool_mentions: bool = False    # tag scores also read the mean hidden layer of the word's mentions in the document
    pool_document: bool = False    # tag scores also read the mean hidden layer of the document
    # data
    scheme: str = "BIOES"          # tags the network predicts: BIO or BIOES
    extra_vectors: int = 60000     # most frequent pretrained words kept besides the training words
    affix_min_count: int = 2
    word_dropout: float = 0.5      # chance a once-seen word is shown as <unk>, so <unk> gets trained
    # share of documents (or sentences) shown re-cased in each epoch, drawn afresh every epoch; the rest as written
    recase: dict = field(default_factory=lambda: {"lower": 0.25, "upper": 0.1, "title": 0.1})
    block_tokens: int = 4096       # documents are trained on in blocks of whole sentences of at most this many tokens
    recase_documents: bool = False  # true: one casing per document block, as users' texts come; false: per sentence
    # optimisation
    optimiser: str = "adam"
    lr: float = 1e-3
    lr_decay: float = 0.9          # learning rate multiplied by this after every epoch
    batch_size: int = 64
    epochs: int = 25
    patience: int = 4              # stop after this many epochs without a better dev F1
    seed: int = 1
    fill_unannotated: bool = True  # with --init-from: see fill_unannotated()
    replay_share: float = 0.5     # with --replay: share of each epoch's sentences drawn from the replay data
    max_seconds: float = 0.0       # if > 0, start no epoch after this long: a different, shorter run, said so
    blas_threads: int = 1          # more only slows the small products of a step, and breaks under load
    average: float = 0.0           # > 0: evaluate and keep a running average of the weights, this decay per update
    average_every: int = 8         # steps between updates of the average
    doc_weight: float = 0.25       # the document cue (model.document) the model is served with; 0: none
    gazetteer_dim: int = 4         # > 0: an embedding this size per gazetteer category (training/gazetteer.py)
    dictionary: str = ""           # a user's dictionary (model.dictionary): its own types get a category each

    def model_config(self, word_dim, categories=()):
        """The network's settings; ``categories``: the gazetteer's, each read through a table of its own."""
        features = dict(self.features)
        features.update({feature_name(c): self.gazetteer_dim for c in categories})
        return Config(radius=self.radius, word_dim=word_dim, hidden=self.hidden, activation=self.activation,
                      features=features, affix_length=self.affix_length, dropout=self.dropout, l2=self.l2,
                      case_regimes=self.case_regimes and "case" in self.features, char_dim=self.char_dim,
                      char_filters=self.char_filters, char_width=self.char_width, char_length=self.char_length,
                      pool_mentions=self.pool_mentions, pool_document=self.pool_document)

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


class WeightAverage:
    """An exponential moving average of the weights (Polyak averaging), updated every few steps: the
    trained weights wander around a minimum, their average sits closer to it."""

    def __init__(self, params, decay, every):
        self.decay, self.every, self.steps = decay, every, 0
        self.params = {k: v.copy() for k, v in params.items()}

    def update(self, params):
        self.steps += 1
        if self.steps % self.every:
            return
        for key, value in params.items():
            avg = self.params[key]
            avg *= self.decay
            avg += (1.0 - self.decay) * value


@dataclass
class Data:
    """The training set as the network reads it: every sentence's windows and gold tag ids, and what an
    epoch draws from (casings, replay, the document blocks of a pooling model)."""

    windows: dict          # {table name: (N, 2r+1) ids}
    y: np.ndarray          # (N,) gold tag ids
    starts: np.ndarray     # (S + 1,) first token of each sentence
    lengths: list          # (S,) tokens per sentence
    rare: np.ndarray       # (V,) words seen once, shown as <unk> now and then
    featurizer: Featurizer
    case_windows: np.ndarray | None  # (casings, N, 2r+1) casing windows of every re-casing, or None
    sentence_blocks: np.ndarray      # (S,) document block of each sentence
    groups: dict                     # {"mention_groups", "doc_groups"}: (N,), for a pooling model
    replayed: object                 # rng -> the sentences of one epoch (``replay_sampler``)


def run_epoch(params, cfg, model_cfg, data, optimiser, rng, bar, recased=None, average=None):
    """One pass over the sentences ``data.replayed`` draws (see ``batching.batches``); ``recased``: the
    casing each token is shown in this epoch. Returns the mean loss."""
    unk_id = data.featurizer.vocabs["word"].unk_id
    total, seen = 0.0, 0
    sentences = data.replayed(rng)
    blocks = data.sentence_blocks if model_cfg.pools else None
    for idx in batches(rng, sentences, data.starts, cfg.batch_size, blocks):
        batch = {k: v[idx] for k, v in data.windows.items()}
        if model_cfg.pools:
            batch.update({k: v[idx] for k, v in data.groups.items()})
        if recased is not None:
            # Word, affix and vector ids are of lower-cased words: only the casing ids change.
            batch["case"] = data.case_windows[recased[idx], idx]
        if model_cfg.chars:  # a word shown as <unk> keeps its characters, as an unknown word does in use
            batch["chars"], batch["char_rows"] = data.featurizer.char_windows(batch["word"])
        if cfg.word_dropout > 0:
            w = batch["word"]
            drop = data.rare[w] & (rng.random(w.shape) < cfg.word_dropout)
            batch["word"] = np.where(drop, unk_id, w)
        J, grads = loss(params, model_cfg, batch, data.y[idx], rng)
        optimiser.step(params, grads)
        if average is not None:
            average.update(params)
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
          skip_invalid=False, init_from=None, replay=None):
    """Fit, calibrate, write the artifact and report. Returns the manifest written.

    init_from: a model directory to fine-tune instead of starting afresh (its network settings are
    kept; of those of ``cfg`` only pooling is added); replay: a file of the data it was trained on, of
    which a share (``cfg.replay_share``) of each epoch's sentences is drawn, so that its types are not
    forgotten.
    """
    with threadpool_limits(limits=cfg.blas_threads, user_api="blas"):
        started = time.perf_counter()
        say = print if not quiet else (lambda *a, **k: None)
        run = prepare(cfg, train_path, dev_path, vectors, say, data_format, skip_invalid, init_from, replay)
        best, best_scores, history, cut_short = fit(cfg, run, say, started)
        return finish(cfg, run, best, best_scores, history, cut_short, out_dir, info, started, say)


@dataclass
class Run:
    """What a training run works on: the data and the network it starts from."""

    paths: dict            # train, dev, init_from, replay: as given
    schemes: dict          # train, dev: the tag scheme each file held
    model_cfg: Config
    labels: list
    vocabs: dict
    params: dict
    data: Data
    dev_sents: list
    dev_types: set | None  # a fine-tuned model is stopped on the types its dev data annotates
    convert: object        # IOB2 tags -> the tags the network predicts
    rng: np.random.Generator
    base: dict | None      # the manifest of the model fine-tuned from


def prepare(cfg, train_path, dev_path, vectors, say, data_format, skip_invalid, init_from, replay):
    """The data read, the vocabularies and the starting weights (fresh, or the model fine-tuned)."""
    rng = np.random.default_rng(cfg.seed)
    train_sents, train_scheme = read_data(train_path, data_format, skip_invalid, say)
    dev_sents, dev_scheme = read_data(dev_path, data_format, skip_invalid, say)
    replay_sents = read_data(replay, "auto", skip_invalid, say)[0] if replay else []
    kv = vectors if vectors is not None else embeddings.glove_6b_50d()
    all_sents = train_sents + replay_sents
    if init_from:
        if cfg.fill_unannotated:
            fill_unannotated(Model.load(init_from), train_sents, say)
        pooling = {"pool_mentions": cfg.pool_mentions, "pool_document": cfg.pool_document}
        params, model_cfg, featurizer, labels, rare, base = start_from(
            init_from, all_sents, kv, rng, say, pooling, fine_tuned_gazetteer(cfg, train_sents, say), cfg.gazetteer_dim)
        vocabs, pretrained = featurizer.vocabs, "kept"
        scheme = "BIOES" if any(t[:1] in "ES" for t in labels) else "BIO"
    else:
        scheme, base = cfg.scheme.upper(), None
        labels = tag_labels([(to_bioes if scheme == "BIOES" else list)(s.tags) for s in all_sents])
        vocabs, word_vectors, rare, pretrained = build_vocabs(cfg, train_sents, kv, rng)
        gazetteer = training_gazetteer(cfg, train_sents, sorted({split_tag(t)[1] for t in labels if t != "O"}), say)
        model_cfg = cfg.model_config(word_vectors.shape[1], gazetteer.categories if gazetteer else ())
        featurizer = Featurizer(model_cfg, vocabs, gazetteer)
    convert = to_bioes if scheme == "BIOES" else (lambda tags: list(tags))
    data = training_data(cfg, model_cfg, featurizer, all_sents, labels, convert, rare, len(train_sents))
    if not init_from:
        sizes = {n: featurizer.table_size(n) for n in table_names(model_cfg) + (["chars"] if model_cfg.chars else [])}
        params = init_params(model_cfg, sizes, len(labels), rng, word_vectors=word_vectors)
    say(f"train {len(train_sents)} sentences ({train_scheme}), {sum(data.lengths[:len(train_sents)])} tokens"
        + (f" + replay {len(replay_sents)} sentences ({cfg.replay_share:.0%} of each epoch)" if replay_sents else "")
        + f"; dev {len(dev_sents)} ({dev_scheme}); vocab {len(vocabs['word'])} ({pretrained} pretrained); "
        f"labels {len(labels)}" + (f"; starting from {init_from}" if init_from else ""))
    dev_types = {t[2:] for s in dev_sents for t in s.tags if t != "O"} if init_from else None
    return Run({"train": train_path, "dev": dev_path, "init_from": init_from, "replay": replay},
               {"train": train_scheme, "dev": dev_scheme}, model_cfg, labels, vocabs, params, data, dev_sents,
               dev_types, convert, rng, base)


def training_gazetteer(cfg, train_sents, types, say, start=None):
    """The public lists (or ``start``: the gazetteer of the model fine-tuned), and a user's dictionary
    (``cfg.dictionary``) with a category for each of its types that they lack; None without
    gazetteer features."""
    dictionary = Dictionary.read(cfg.dictionary) if cfg.dictionary else None
    if start is None and cfg.gazetteer_dim <= 0:
        if dictionary:
            raise ValueError("--dictionary feeds gazetteer features: set --gazetteer-dim too")
        return None
    known = start.categories if start is not None else GAZETTEER_CATEGORIES
    own = sorted({e[1] for e in dictionary.entries} - set(known) - {"PER"}) if dictionary else []
    if start is None:
        gazetteer = compile_gazetteer(train_sents, own)
    else:
        gazetteer = Gazetteer(start.categories + own, start.phrases, start.exact)
        gazetteer.record = {}
    if dictionary:
        phrases, exact, _ = dictionary.split(types, gazetteer.categories)
        record = gazetteer.record
        gazetteer = gazetteer.with_entries(phrases, exact)
        gazetteer.record = {**record, "dictionary": {"path": os.path.abspath(cfg.dictionary),
                                                     "version": dictionary.version, "entries": len(dictionary)}}
    say(f"gazetteer: {len(gazetteer)} phrases of {', '.join(gazetteer.categories)}")
    return gazetteer


def fine_tuned_gazetteer(cfg, train_sents, say):
    """``start_from``'s ``knowledge`` with ``--dictionary``: the gazetteer a fine-tuned model trains with,
    its own (or, for a model without gazetteer features, the public lists) and the dictionary's types
    as categories; None without a dictionary: the model is fine-tuned as it is."""
    if not cfg.dictionary:
        return None

    def knowledge(gazetteer, types):
        if gazetteer is None and cfg.gazetteer_dim <= 0:
            raise ValueError("the model has no gazetteer features: set --gazetteer-dim to add them")
        return training_gazetteer(cfg, train_sents, types, say, start=gazetteer)
    return knowledge


def training_data(cfg, model_cfg, featurizer, sentences, labels, convert, rare, n_train):
    casings, shares = cfg.recase_shares()
    label_index = {t: i for i, t in enumerate(labels)}
    padded, positions = featurizer.token_batch([s.words for s in sentences])
    windows = {name: padded[name][positions] for name in featurizer.names}
    lengths = [len(s.words) for s in sentences]
    y = np.array([label_index[t] for s in sentences for t in convert(s.tags)], dtype=np.int64)
    blocks, groups = token_groups(featurizer, sentences, windows, model_cfg.radius, cfg.block_tokens)
    return Data(windows, y, np.concatenate([[0], np.cumsum(lengths)]), lengths, rare, featurizer,
                casing_windows(featurizer, sentences, casings) if shares[0] < 1 else None, blocks, groups,
                replay_sampler(n_train, len(sentences), cfg.replay_share))


def fit(cfg, run, say, started):
    """The epochs, stopped early on dev F1: (best weights, their dev scores, history, cut short)."""
    params, model_cfg, data, rng = run.params, run.model_cfg, run.data, run.rng
    _, shares = cfg.recase_shares()
    optimiser = OPTIMISERS[cfg.optimiser](params, lr=cfg.lr)
    history, best, best_scores, best_f1, stale, cut_short = [], None, None, -1.0, 0, False
    average = WeightAverage(params, cfg.average, cfg.average_every) if cfg.average > 0 else None
    for epoch in range(1, cfg.epochs + 1):
        t0 = time.perf_counter()
        by_block = data.sentence_blocks if cfg.recase_documents else None
        recased = None if data.case_windows is None else epoch_casings(rng, shares, data.lengths, by_block)
        with tqdm(desc=f"epoch {epoch}", unit="tok", leave=False, disable=say is not print) as bar:
            mean_loss = run_epoch(params, cfg, model_cfg, data, optimiser, rng, bar, recased, average)
            n_tokens = bar.n
        seconds = time.perf_counter() - t0
        weights = params if average is None else average.params
        scores = evaluate(Model(weights, model_cfg, data.featurizer, run.labels, {}), run.dev_sents, run.dev_types)
        o = scores["overall"]
        history.append({"epoch": epoch, "loss": mean_loss, "dev": o, "tokens_per_s": n_tokens / seconds,
                        "lr": optimiser.lr})
        say(f"epoch {epoch:2d}  loss {mean_loss:.4f}  dev P {o['precision']:.4f} R {o['recall']:.4f} "
            f"F1 {o['f1']:.4f}  {n_tokens / seconds:,.0f} tok/s")
        if o["f1"] > best_f1:
            best_f1, best, best_scores, stale = o["f1"], copy.deepcopy(weights), scores, 0
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
    return best, best_scores, history, cut_short


def calibrate(cfg, run, best):
    """(temperature, calibration summaries, the document cue's manifest entry): the temperature is
    fitted on the dev split to the probabilities as served, through the document cue."""
    model = Model(best, run.model_cfg, run.data.featurizer, run.labels, {})
    dev_words = [s.words for s in run.dev_sents]
    dev_lengths = [len(s.words) for s in run.dev_sents]
    dev_batch = model.batch(dev_words)
    dev_groups = model.groups(dev_words, dev_batch, document.blocks(dev_lengths, [s.doc for s in run.dev_sents]))
    log_probs = calibration.softmax_log_probs(model.scores(dev_batch, dev_groups).astype(np.float64))
    cue = {"document": {"weight": cfg.doc_weight}} if cfg.doc_weight > 0 else {}
    if cue:
        log_probs = calibration.with_document_cue(log_probs, dev_groups["mention_groups"], cfg.doc_weight, model)
    label_index = {t: i for i, t in enumerate(run.labels)}
    gold = np.array([label_index[t] for s in run.dev_sents for t in run.convert(s.tags)], dtype=np.int64)
    temperature = calibration.fit_temperature(log_probs, gold)
    token_sentence = np.repeat(np.arange(len(run.dev_sents)), dev_lengths)
    calib = {"before": calibration.calibration_summary(log_probs, gold, 1.0, run.labels),
             "after": calibration.calibration_summary(log_probs, gold, temperature, run.labels),
             "held_out": calibration.held_out_summary(log_probs, gold, token_sentence, run.labels)}
    return temperature, calib, cue


def finish(cfg, run, best, best_scores, history, cut_short, out_dir, info, started, say):
    """Calibrate, score the model as served, write the artifact and its report; returns the manifest."""
    temperature, calib, cue = calibrate(cfg, run, best)
    calibrated = Model(best, run.model_cfg, run.data.featurizer, run.labels,
                       {"calibration": {"temperature": temperature}, **cue})
    scores = {"dev": evaluate(calibrated, run.dev_sents, run.dev_types),  # what `make evaluate` reports
              "alone": evaluate(calibrated, run.dev_sents, run.dev_types, alone=True)}  # requests of one sentence
    robust = robustness(calibrated, run.dev_sents, CASINGS, raw=True)
    elapsed = time.perf_counter() - started
    manifest_info = {
        "name": default_name(run.paths["train"]),
        **(info or {}),
        "training": training_record(cfg, run, history, elapsed, cut_short),
        **cue,
        "metrics": metrics_record(scores, best_scores, robust),
        "calibration": calibration_record(temperature, calib),
    }
    gazetteer = run.data.featurizer.gazetteer
    if gazetteer is not None:
        record = getattr(gazetteer, "record", None) or {}
        manifest_info["gazetteer"] = {**(run.base or {}).get("gazetteer", {}), **record}
    manifest = artifact.save(out_dir, best, run.model_cfg, run.vocabs, run.labels, manifest_info, gazetteer)
    report.write(out_dir, Model.load(out_dir), run.dev_sents, history, calib, manifest, robust)
    say(f"best dev F1 {best_scores['overall']['f1']:.4f}, as served {scores['dev']['overall']['f1']:.4f}; "
        f"temperature {temperature:.3f}; ECE {calib['before']['all_tokens']['ece']:.4f}"
        f" -> {calib['after']['all_tokens']['ece']:.4f}; {elapsed:.0f} s; wrote {out_dir}")
    return manifest


def training_record(cfg, run, history, elapsed, cut_short):
    paths = run.paths
    return {"train": {"path": str(paths["train"]), "sha256": file_sha256(paths["train"]),
                      "scheme": run.schemes["train"]},
            "dev": {"path": str(paths["dev"]), "sha256": file_sha256(paths["dev"]), "scheme": run.schemes["dev"]},
            **({"init_from": {"path": str(paths["init_from"]), "name": run.base.get("name"),
                              "sha256": run.base["sha256"]}} if paths["init_from"] else {}),
            **({"replay": {"path": str(paths["replay"]), "sha256": file_sha256(paths["replay"])}}
               if paths["replay"] else {}),
            "config": asdict(cfg), "epochs": len(history), "seconds": round(elapsed, 1),
            "cut_short_by_max_seconds": cut_short}


def metrics_record(scores, best_scores, robust):
    def both(s):
        return {"overall": s["overall"], "per_type": s["per_type"]}

    return {"dev": both(scores["dev"]), "dev_best_epoch": both(best_scores),
            "dev_sentences_alone": both(scores["alone"]),
            "dev_by_casing": {c: r["overall"] for c, r in robust["casing"].items()},
            "dev_raw_text_by_casing": {c: r["overall"] for c, r in robust["raw"].items()}}


def calibration_record(temperature, calib):
    return {"temperature": temperature, "method": "temperature scaling on the dev split",
            "ece_before": calib["before"]["all_tokens"]["ece"], "ece_after": calib["after"]["all_tokens"]["ece"],
            "entity_ece_before": calib["before"]["entity_tokens"]["ece"],
            "entity_ece_after": calib["after"]["entity_tokens"]["ece"],
            "ece_held_out": calib["held_out"]["all_tokens"]["ece"],
            "entity_ece_held_out": calib["held_out"]["entity_tokens"]["ece"]}


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
    parser.add_argument("--init-from", metavar="DIR", help="fine-tune this model (its vocabulary, features and weights;"
                        " new types get new output rows; with --pool-mentions, --pool-document true those are added)"
                        " instead of starting afresh")
    parser.add_argument("--replay", metavar="FILE", help="data the --init-from model was trained on: each epoch mixes"
                        " in a share (--replay-share) of it, so that its types are not forgotten")
    parser.add_argument("--quiet", action="store_true")
    for f in fields(TrainConfig):
        default = f.default if f.default_factory is MISSING else f.default_factory()
        kind = json.loads if isinstance(default, dict) else _flag if isinstance(default, bool) else type(default)
        parser.add_argument(f"--{f.name.replace('_', '-')}", dest=f.name, type=kind, default=default,
                            help=f"default {json.dumps(default)}")
    args = parser.parse_args(argv)
    if args.replay and not args.init_from:
        parser.error("--replay mixes in the data of the model given by --init-from")
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
              data_format=args.format, skip_invalid=args.skip_invalid, init_from=args.init_from, replay=args.replay)
    except (ConllError, ValueError, OSError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
