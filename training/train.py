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
from dataclasses import MISSING, asdict, dataclass, field, fields, replace

import numpy as np
from threadpoolctl import threadpool_limits
from tqdm import tqdm

from model import artifact, document
from model.decode import spans, split_tag
from model.features import Featurizer, build_affix_vocab, build_char_vocab
from model.network import Config, init_params, loss, table_names
from model.predict import Model
from model.vocab import SPECIALS, Vocab, normalize
from training import calibration, embeddings, report
from training.conll import ConllError, to_bioes
from training.evaluate import evaluate, predict_tags, robustness
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

    def model_config(self, word_dim):
        return Config(radius=self.radius, word_dim=word_dim, hidden=self.hidden, activation=self.activation,
                      features=dict(self.features), affix_length=self.affix_length, dropout=self.dropout, l2=self.l2,
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


def start_from(directory, train_sents, kv, rng, log, pooling=None):
    """(params, config, featurizer, labels, rare ids, its manifest) to fine-tune the model in ``directory``
    on ``train_sents``.

    The model keeps its vocabularies, weights and features; words of the new data it lacks are added
    (with their pretrained vectors where the vectors know them); labels of new types are appended to
    the output layer with fresh rows, the existing rows kept as they are. ``pooling``: {flag: True}
    for the pooled readouts to add, which start at 0 so that the model answers as before.
    """
    params, model_cfg, featurizer, labels, manifest = artifact.load(directory)
    params = {k: np.array(v, dtype=np.float32) for k, v in params.items()}
    vocabs = dict(featurizer.vocabs)
    counts = Counter(normalize(w) for s in train_sents for w in s.words)
    new_words = sorted((w for w in counts if w not in vocabs["word"].index), key=lambda w: (-counts[w], w))
    if new_words and kv.vector_size != model_cfg.word_dim:
        raise ValueError(f"--init-from {directory}: its word vectors have {model_cfg.word_dim} dimensions, the vectors "
                         f"given {kv.vector_size}: fine-tune with the vectors it was trained with")
    if new_words:
        words, vectors, found = embeddings.vocabulary_rows({w: counts[w] for w in new_words}, kv, 0, rng)
        vocabs["word"] = Vocab(vocabs["word"].words[len(SPECIALS):] + words)
        params["E"] = np.vstack([params["E"], vectors])
        log(f"{directory}: {len(new_words)} words added to its vocabulary ({int(found.sum())} with pretrained "
            "vectors)")
    featurizer = Featurizer(model_cfg, vocabs)
    bioes = any(split_tag(t)[0] in ("E", "S") for t in labels)
    prefixes = "BIES" if bioes else "BI"
    old_types = {split_tag(t)[1] for t in labels if t != "O"}
    new_types = sorted({t[2:] for s in train_sents for t in s.tags if t != "O"} - old_types)
    added = [f"{p}-{typ}" for typ in new_types for p in prefixes]
    if added:
        bound = np.sqrt(6.0 / (model_cfg.hidden + len(labels) + len(added)))
        params["U"] = np.vstack([params["U"], rng.uniform(-bound, bound, (len(added), model_cfg.hidden))
                                 .astype(np.float32)])
        params["c"] = np.concatenate([params["c"], np.zeros(len(added), dtype=np.float32)])
        for key, _ in model_cfg.pools:
            params[key] = np.vstack([params[key], rng.uniform(-bound, bound, (len(added), model_cfg.hidden))
                                     .astype(np.float32)])
        log(f"{directory}: new types {', '.join(new_types)} added to its {len(old_types)}")
    for flag, key in (("pool_mentions", "Um"), ("pool_document", "Ud")):
        if (pooling or {}).get(flag) and not getattr(model_cfg, flag):
            model_cfg = replace(model_cfg, **{flag: True})
            params[key] = np.zeros_like(params["U"])
            log(f"{directory}: {flag.replace('_', ' ')} added")
    rare_words = [w for w, n in counts.items() if n == 1]
    rare = np.zeros(len(vocabs["word"]), dtype=bool)
    rare[vocabs["word"].ids(rare_words)] = True
    rare[vocabs["word"].unk_id] = False
    return params, model_cfg, featurizer, list(labels) + added, rare, manifest


def casing_windows(featurizer, sentences, casings):
    """(casings, N, 2r+1) casing-table windows of the sentences shown in each casing; None without a casing table."""
    if "case" not in featurizer.names:
        return None
    return np.stack([featurizer.windows([recase(s.words, c) for s in sentences])["case"] for c in casings])


def epoch_casings(rng, shares, lengths, sentence_blocks=None):
    """(N,) index of the casing each token is shown in this epoch: one draw per sentence, or with
    ``sentence_blocks`` (the block of each sentence) one per document block, as users' documents come."""
    if sentence_blocks is None:
        return rng.choice(len(shares), size=len(lengths), p=shares).repeat(lengths)
    return rng.choice(len(shares), size=int(sentence_blocks.max()) + 1, p=shares)[sentence_blocks].repeat(lengths)


def fill_unannotated(model, sentences, log):
    """Entities of the starting model's types that the new data never annotates, filled in from its
    predictions where the annotation says O: data annotated for a new type only says nothing about the
    old ones, and taught as O they would be forgotten. Returns how many entities were filled in."""
    annotated = {t[2:] for s in sentences for t in s.tags if t != "O"}
    missing = set(model.types) - annotated
    if not missing or not sentences:
        return 0
    filled = 0
    for s, pred in zip(sentences, predict_tags(model, sentences)):
        for typ, first, last in spans(pred):
            if typ in missing and all(t == "O" for t in s.tags[first:last]):
                s.tags[first:last] = [f"B-{typ}"] + [f"I-{typ}"] * (last - first - 1)
                filled += 1
    log(f"{filled} entities of {', '.join(sorted(missing))} (not annotated in the new data) filled in from the "
        "starting model's predictions")
    return filled


def replay_sampler(n_train, n_sentences, share):
    """A function rng -> the sentences of one epoch: every training sentence (the first ``n_train``),
    and a fresh draw of replay sentences (the rest) making up ``share`` of the epoch's sentences."""
    n_replay = n_sentences - n_train
    if not n_replay:
        return lambda rng: np.arange(n_train)
    if not 0 < share < 1:
        raise ValueError("--replay-share must be between 0 and 1")
    k = min(n_replay, max(1, round(share / (1 - share) * n_train)))
    return lambda rng: np.concatenate([np.arange(n_train),
                                       n_train + np.sort(rng.choice(n_replay, size=k, replace=False))])


def batches(rng, sentences, starts, batch_size, sentence_blocks=None):
    """Token indices of each step of an epoch over ``sentences`` (indices; ``starts``: (n + 1,) token
    offsets): tokens in random order, ``batch_size`` at a time; or, with ``sentence_blocks`` (the
    document block of every sentence, for pooling), whole blocks in random order, as many as make
    ``batch_size`` tokens (at least one), so that a batch holds every mention of its words in their
    documents."""
    if sentence_blocks is not None:
        ordered = np.sort(sentences)
        units = np.split(ordered, (np.diff(sentence_blocks[ordered]) != 0).nonzero()[0] + 1)
    else:
        tokens = np.concatenate([np.arange(starts[i], starts[i + 1]) for i in sentences])
        order = rng.permutation(tokens)
        for lo in range(0, len(order), batch_size):
            yield order[lo: lo + batch_size]
        return
    # Whole units (sentences, or blocks of them) in random order, as many as make batch_size tokens.
    sizes = np.array([int((starts[np.asarray(u) + 1] - starts[np.asarray(u)]).sum()) for u in units])
    order = rng.permutation(len(units))
    ends = np.cumsum(sizes[order])
    lo = 0
    while lo < len(order):
        hi = int(np.searchsorted(ends, (ends[lo - 1] if lo else 0) + batch_size)) + 1
        chosen = np.concatenate([units[i] for i in order[lo:hi]]).astype(np.intp)
        yield np.concatenate([np.arange(starts[i], starts[i + 1]) for i in chosen])
        lo = hi


def token_groups(featurizer, sentences, windows, radius, block_tokens):
    """(sentence blocks (S,), {"mention_groups", "doc_groups"}: (N,)) of ``sentences`` and their
    ``windows``, as ``Model.groups`` finds them at serving, but for blocks of at most ``block_tokens``
    (a batch holds whole blocks: data with few document marks still makes many steps an epoch)."""
    lengths = [len(s.words) for s in sentences]
    blocks = document.blocks(lengths, [s.doc for s in sentences], block_tokens)
    words = [w for s in sentences for w in s.words]
    centre, unk_id = windows["word"][:, radius], featurizer.vocabs["word"].unk_id
    token_blocks = np.repeat(blocks, lengths)
    return blocks, {"mention_groups": document.mention_groups(words, token_blocks, centre, unk_id),
                    "doc_groups": token_blocks}


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


def run_epoch(params, cfg, model_cfg, windows, y, optimiser, rng, rare, featurizer, bar, sentences, starts,
              recased=None, average=None, pooling=None):
    """One pass over the tokens of ``sentences`` (see ``batches``); ``recased``: (casing windows, (N,) casing
    per token); ``pooling``: ``token_groups`` of the data, for a pooling model."""
    unk_id = featurizer.vocabs["word"].unk_id
    total, seen = 0.0, 0
    blocks = pooling[0] if pooling else None
    for idx in batches(rng, sentences, starts, cfg.batch_size, blocks):
        batch = {k: v[idx] for k, v in windows.items()}
        if pooling:
            batch.update({k: v[idx] for k, v in pooling[1].items()})
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
    kept; of those of ``cfg`` only pooling is added);
    replay: a file of the data it was trained on, of which a share (``cfg.replay_share``) of each
    epoch's sentences is drawn, so that its types are not forgotten.
    """
    with threadpool_limits(limits=cfg.blas_threads, user_api="blas"):
        return _train(cfg, train_path, dev_path, out_dir, vectors, quiet, info, data_format, skip_invalid,
                      init_from, replay)


def _train(cfg, train_path, dev_path, out_dir, vectors, quiet, info, data_format, skip_invalid, init_from, replay):
    started = time.perf_counter()
    casings, shares = cfg.recase_shares()
    rng = np.random.default_rng(cfg.seed)
    say = print if not quiet else (lambda *a, **k: None)
    train_sents, train_scheme = read_data(train_path, data_format, skip_invalid, say)
    dev_sents, dev_scheme = read_data(dev_path, data_format, skip_invalid, say)
    replay_sents = read_data(replay, "auto", skip_invalid, say)[0] if replay else []
    kv = vectors if vectors is not None else embeddings.glove_6b_50d()
    if init_from:
        if cfg.fill_unannotated:
            fill_unannotated(Model.load(init_from), train_sents, say)
        params, model_cfg, featurizer, labels, rare, base = start_from(
            init_from, train_sents + replay_sents, kv, rng, say,
            {"pool_mentions": cfg.pool_mentions, "pool_document": cfg.pool_document})
        vocabs, pretrained = featurizer.vocabs, "kept"
        scheme = "BIOES" if any(t[:1] in "ES" for t in labels) else "BIO"
    else:
        scheme, base = cfg.scheme.upper(), None
        labels = tag_labels([(to_bioes if scheme == "BIOES" else list)(s.tags) for s in train_sents + replay_sents])
        vocabs, word_vectors, rare, pretrained = build_vocabs(cfg, train_sents, kv, rng)
        model_cfg = cfg.model_config(word_vectors.shape[1])
        featurizer = Featurizer(model_cfg, vocabs)
    convert = to_bioes if scheme == "BIOES" else (lambda tags: list(tags))
    label_index = {t: i for i, t in enumerate(labels)}
    all_sents = train_sents + replay_sents
    windows = featurizer.windows([s.words for s in all_sents])
    lengths = [len(s.words) for s in all_sents]
    case_windows = casing_windows(featurizer, all_sents, casings) if shares[0] < 1 else None
    y = np.array([label_index[t] for s in all_sents for t in convert(s.tags)], dtype=np.int64)
    sentence_blocks, groups = token_groups(featurizer, all_sents, windows, model_cfg.radius, cfg.block_tokens)
    if not init_from:
        sizes = {n: featurizer.table_size(n) for n in table_names(model_cfg) + (["chars"] if model_cfg.chars else [])}
        params = init_params(model_cfg, sizes, len(labels), rng, word_vectors=word_vectors)
    # A fine-tuned model is stopped on the types its dev data annotates (they may be the new ones only).
    dev_types = {t[2:] for s in dev_sents for t in s.tags if t != "O"} if init_from else None
    replayed = replay_sampler(len(train_sents), len(all_sents), cfg.replay_share)
    starts = np.concatenate([[0], np.cumsum(lengths)])
    optimiser = OPTIMISERS[cfg.optimiser](params, lr=cfg.lr)
    log = say
    log(f"train {len(train_sents)} sentences ({train_scheme}), {sum(lengths[:len(train_sents)])} tokens"
        + (f" + replay {len(replay_sents)} sentences ({cfg.replay_share:.0%} of each epoch)" if replay_sents else "")
        + f"; dev {len(dev_sents)} ({dev_scheme}); vocab {len(vocabs['word'])} ({pretrained} pretrained); "
        f"labels {len(labels)}" + (f"; starting from {init_from}" if init_from else ""))

    history, best, best_f1, stale, cut_short = [], None, -1.0, 0, False
    average = WeightAverage(params, cfg.average, cfg.average_every) if cfg.average > 0 else None
    for epoch in range(1, cfg.epochs + 1):
        t0 = time.perf_counter()
        by_block = sentence_blocks if cfg.recase_documents else None
        recased = None if case_windows is None else (case_windows, epoch_casings(rng, shares, lengths, by_block))
        sentences = replayed(rng)
        pooling = (sentence_blocks, groups) if model_cfg.pools else None
        n_tokens = int((starts[sentences + 1] - starts[sentences]).sum())
        with tqdm(total=n_tokens, desc=f"epoch {epoch}", unit="tok", leave=False, disable=quiet) as bar:
            mean_loss = run_epoch(params, cfg, model_cfg, windows, y, optimiser, rng, rare, featurizer, bar, sentences,
                                  starts, recased, average, pooling)
        seconds = time.perf_counter() - t0
        weights = params if average is None else average.params
        scores = evaluate(Model(weights, model_cfg, featurizer, labels, {}), dev_sents, dev_types)
        o = scores["overall"]
        history.append({"epoch": epoch, "loss": mean_loss, "dev": o, "tokens_per_s": n_tokens / seconds,
                        "lr": optimiser.lr})
        log(f"epoch {epoch:2d}  loss {mean_loss:.4f}  dev P {o['precision']:.4f} R {o['recall']:.4f} "
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

    model = Model(best, model_cfg, featurizer, labels, {})
    dev_words = [s.words for s in dev_sents]
    dev_lengths = [len(s.words) for s in dev_sents]
    dev_batch = model.batch(dev_words)
    dev_groups = model.groups(dev_words, dev_batch, document.blocks(dev_lengths, [s.doc for s in dev_sents]))
    dev_scores = model.scores(dev_batch, dev_groups).astype(np.float64)
    # The document cue: the probabilities served are those the temperature is fitted to.
    cue = {"document": {"weight": cfg.doc_weight}} if cfg.doc_weight > 0 else {}
    log_probs = calibration.softmax_log_probs(dev_scores)
    if cue:
        log_probs = calibration.with_document_cue(log_probs, dev_groups["mention_groups"], cfg.doc_weight, model)
    dev_gold = np.array([label_index[t] for s in dev_sents for t in convert(s.tags)], dtype=np.int64)
    temperature = calibration.fit_temperature(log_probs, dev_gold)
    token_sentence = np.repeat(np.arange(len(dev_sents)), dev_lengths)
    calib = {"before": calibration.calibration_summary(log_probs, dev_gold, 1.0, labels),
             "after": calibration.calibration_summary(log_probs, dev_gold, temperature, labels),
             "held_out": calibration.held_out_summary(log_probs, dev_gold, token_sentence, labels)}
    calibrated = Model(best, model_cfg, featurizer, labels, {"calibration": {"temperature": temperature}, **cue})
    served_scores = evaluate(calibrated, dev_sents, dev_types)  # what `make evaluate` reports
    alone_scores = evaluate(calibrated, dev_sents, dev_types, alone=True)  # requests of one sentence
    robust = robustness(calibrated, dev_sents, CASINGS, raw=True)
    elapsed = time.perf_counter() - started
    manifest_info = {
        "name": default_name(train_path),
        **(info or {}),
        "training": {"train": {"path": str(train_path), "sha256": file_sha256(train_path), "scheme": train_scheme},
                     "dev": {"path": str(dev_path), "sha256": file_sha256(dev_path), "scheme": dev_scheme},
                     **({"init_from": {"path": str(init_from), "name": base.get("name"), "sha256": base["sha256"]}}
                        if init_from else {}),
                     **({"replay": {"path": str(replay), "sha256": file_sha256(replay)}} if replay else {}),
                     "config": asdict(cfg), "epochs": len(history), "seconds": round(elapsed, 1),
                     "cut_short_by_max_seconds": cut_short},
        **cue,
        "metrics": {"dev": {"overall": served_scores["overall"], "per_type": served_scores["per_type"]},
                    "dev_best_epoch": {"overall": best_scores["overall"], "per_type": best_scores["per_type"]},
                    "dev_sentences_alone": {"overall": alone_scores["overall"], "per_type": alone_scores["per_type"]},
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
    log(f"best dev F1 {best_f1:.4f}, as served {served_scores['overall']['f1']:.4f}; temperature {temperature:.3f}; "
        f"ECE {calib['before']['all_tokens']['ece']:.4f}"
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
