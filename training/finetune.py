"""Fine-tuning: a trained model as the start, new words and types added to it, and what keeps its old types.

``start_from`` takes a model's vocabulary, features and weights and grows them for new data;
``fill_unannotated`` fills in, from the model's own predictions, the old types that data annotated
for new ones never marks; ``replay_sampler`` mixes a share of the model's own training data into
every epoch.
"""
from collections import Counter
from dataclasses import replace

import numpy as np

from model import artifact
from model.decode import spans, split_tag
from model.features import Featurizer
from model.gazetteer import POSITIONS, category_of, feature_name
from model.network import table_key
from model.vocab import SPECIALS, Vocab, normalize
from training import embeddings
from training.evaluate import predict_tags


def start_from(directory, train_sents, kv, rng, log, pooling=None, knowledge=None, gazetteer_dim=0):
    """(params, config, featurizer, labels, rare ids, its manifest) to fine-tune the model in ``directory``
    on ``train_sents``.

    The model keeps its vocabularies, weights and features; words of the new data it lacks are added
    (with their pretrained vectors where the vectors know them); labels of new types are appended to
    the output layer with fresh rows, the existing rows kept as they are. ``pooling``: {flag: True}
    for the pooled readouts to add, which start at 0 so that the model answers as before.
    ``knowledge(model's gazetteer or None, types) -> gazetteer``: the one to train with (a user's
    dictionary added); each category the model lacks gets a table the size of its others (of
    ``gazetteer_dim`` when it has none) and columns of W that start at 0, so that the model answers
    as before until it learns to read them.
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
    gazetteer = featurizer.gazetteer
    types = sorted({split_tag(t)[1] for t in labels if t != "O"} | {t[2:] for s in train_sents for t in s.tags
                                                                    if t != "O"})
    if knowledge is not None:
        gazetteer = knowledge(gazetteer, types)
        old = gazetteer_categories(model_cfg)
        dim = next((d for n, d in model_cfg.features.items() if category_of(n) is not None), gazetteer_dim)
        new = [c for c in gazetteer.categories if c not in old]
        if gazetteer.categories[: len(old)] != old:
            raise ValueError(f"--init-from {directory}: its gazetteer categories {old} must come first")
        if new:
            params, model_cfg = add_gazetteer_tables(params, model_cfg, {feature_name(c): dim for c in new}, rng)
            log(f"{directory}: gazetteer categories {', '.join(new)} added (tables of {dim})")
    featurizer = Featurizer(model_cfg, vocabs, gazetteer)
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


def gazetteer_categories(config):
    """The gazetteer categories a config's features read, in order."""
    return [category_of(n) for n in config.features if category_of(n) is not None]


def add_gazetteer_tables(params, config, tables, rng):
    """(params, config) with feature ``tables`` {name: dim} added to every window slot, after the
    features it has (before the characters): each a fresh embedding of POSITIONS rows, its columns
    of W zeros, so that the hidden layer is what it was."""
    known = [n for n in tables if n in config.features]
    if known:
        raise ValueError(f"the model has the features {known} already")
    window, slot, added = config.window, config.slot_dim, sum(tables.values())
    at = config.word_dim + sum(config.features.values())
    W = params["W"].reshape(config.hidden, window, slot)
    zeros = np.zeros((config.hidden, window, added), dtype=W.dtype)
    params = dict(params, W=np.concatenate([W[:, :, :at], zeros, W[:, :, at:]], axis=2).reshape(config.hidden, -1))
    for name, dim in tables.items():
        params[table_key(name)] = rng.normal(0.0, 0.1, (POSITIONS, dim)).astype(np.float32)
    return params, replace(config, features={**config.features, **tables})


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
