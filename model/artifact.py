"""The model on disk: a manifest ``model.json`` naming a weights file ``model-<sha>.npz``.

The npz holds only plain arrays (loaded with ``allow_pickle=False``): the params, and each
vocabulary as UTF-8 bytes joined by newlines. The manifest holds the config, labels, sizes,
the weights' sha256, and whatever training recorded. Writes are atomic: the weights go to a new
file first, then the manifest replaces the old one by rename, which is the commit point; a
writer killed at any moment leaves the previous artifact whole.
"""
import hashlib
import io
import json
import math
import os
import re
import tempfile
import zipfile
from datetime import UTC, datetime

import numpy as np

from model.decode import split_tag
from model.features import AFFIX_SPECIALS, CHAR_SPECIALS, Featurizer
from model.gazetteer import Gazetteer, category_of
from model.network import Config, table_key, table_names
from model.vocab import SPECIALS, Vocab

FORMAT = "nerve-window-ner"
FORMAT_VERSION = 1
MANIFEST = "model.json"
_WEIGHTS_NAME = re.compile(r"^[A-Za-z0-9_.-]+\.npz$")


class ArtifactError(ValueError):
    """The artifact cannot be used; the message says what is wrong with it."""


def _fsync_dir(path):
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def atomic_write(path, data, mode=0o644):
    """Write bytes to ``path`` so that readers see the old file or the whole new one, never a part."""
    directory = os.path.dirname(os.path.abspath(path))
    fd, tmp = tempfile.mkstemp(prefix=".tmp-", dir=directory)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, mode)  # mkstemp makes 0600; a service running as another user must read it
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    _fsync_dir(directory)


def _blob(words):
    if any("\n" in w for w in words):
        raise ValueError("a vocabulary entry contains a newline")
    return np.frombuffer("\n".join(words).encode("utf-8"), dtype=np.uint8)


def _sha256(data):
    return hashlib.sha256(data).hexdigest()


def save(directory, params, config, vocabs, labels, info=None, gazetteer=None):
    """Write the artifact into ``directory``; returns the manifest written.

    vocabs: {table name: Vocab} for ``word`` and each affix feature; info: extra manifest fields
    (name, version, training, metrics, calibration, ``gazetteer`` sources, ...); gazetteer: the
    phrase lists of a model with gazetteer features (``model.gazetteer``), stored with the weights.
    """
    os.makedirs(directory, exist_ok=True)
    arrays = {k: np.ascontiguousarray(v, dtype=np.float32) for k, v in params.items()}
    for name, vocab in vocabs.items():
        arrays[f"vocab_{name}"] = _blob(vocab.words)
    info = dict(info or {})
    if gazetteer is not None:
        arrays.update(gazetteer.to_arrays())
        info["gazetteer"] = {**info.get("gazetteer", {}), "categories": gazetteer.categories,
                             "entries": {c: len(gazetteer.phrases[c]) + len(gazetteer.exact[c])
                                         for c in gazetteer.categories}}
    buffer = io.BytesIO()
    np.savez_compressed(buffer, **arrays)
    data = buffer.getvalue()
    sha = _sha256(data)
    weights = f"model-{sha[:12]}.npz"
    manifest = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "name": "nerve",
        "version": sha[:12],
        "created": datetime.now(UTC).isoformat(timespec="seconds"),
        **info,
        "weights": weights,
        "sha256": sha,
        "config": config.to_dict(),
        "labels": list(labels),
        "vocab_sizes": {name: len(v) for name, v in vocabs.items()},
        "params": {k: list(v.shape) for k, v in arrays.items() if not k.startswith(("vocab_", "gazetteer_"))},
    }
    atomic_write(os.path.join(directory, weights), data)
    atomic_write(os.path.join(directory, MANIFEST), json.dumps(manifest, indent=2).encode("utf-8"))
    for stale in os.listdir(directory):
        if stale != weights and _WEIGHTS_NAME.match(stale) and stale.startswith("model-"):
            os.unlink(os.path.join(directory, stale))
    return manifest


def read_manifest(directory):
    """The parsed and checked manifest of the artifact in ``directory``."""
    path = os.path.join(directory, MANIFEST)
    try:
        with open(path, "rb") as f:
            manifest = json.loads(f.read().decode("utf-8"))
    except FileNotFoundError:
        raise ArtifactError(f"no {MANIFEST} in {directory}: not a model directory") from None
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise ArtifactError(f"{path} is not valid JSON ({e}): the file is corrupt or truncated") from None
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
        raise ArtifactError(f"{path} is not a {FORMAT} manifest")
    if manifest.get("format_version") != FORMAT_VERSION:
        raise ArtifactError(
            f"{path} has format_version {manifest.get('format_version')!r}; this build reads {FORMAT_VERSION}"
        )
    for key, kind in (("weights", str), ("sha256", str), ("config", dict), ("labels", list), ("vocab_sizes", dict)):
        if not isinstance(manifest.get(key), kind):
            raise ArtifactError(f"{path}: field {key!r} is missing or not a {kind.__name__}")
    if not _WEIGHTS_NAME.match(manifest["weights"]):
        raise ArtifactError(f"{path}: weights {manifest['weights']!r} must be a plain .npz file name")
    return manifest


def _check_labels(labels):
    if not labels or not all(isinstance(t, str) for t in labels) or len(set(labels)) != len(labels):
        raise ArtifactError("labels must be distinct strings")
    for tag in labels:
        prefix, typ = split_tag(tag)
        if not (tag == "O" or (prefix in ("B", "I", "E", "S") and typ)):
            raise ArtifactError(f"label {tag!r} is not O or a B-/I-/E-/S- tag")


def _read_arrays(path, expected):
    """{key: array} for exactly the ``expected`` keys, refusing anything that is not a plain array."""
    try:
        archive = np.load(path, allow_pickle=False)
    except (OSError, ValueError, zipfile.BadZipFile, EOFError) as e:
        raise ArtifactError(f"{path} is not a readable npz archive ({e})") from None
    with archive:
        keys = set(archive.files)
        if keys != set(expected):
            missing, extra = sorted(set(expected) - keys), sorted(keys - set(expected))
            raise ArtifactError(f"{path}: arrays missing {missing}, unexpected {extra}")
        arrays = {}
        for key in expected:
            try:
                arrays[key] = archive[key]
            except ValueError as e:
                raise ArtifactError(f"{path}: array {key!r} holds pickled objects, refused ({e})") from None
            except (OSError, zipfile.BadZipFile, EOFError) as e:
                raise ArtifactError(f"{path}: array {key!r} is unreadable ({e})") from None
    return arrays


def _vocab(blob, name, specials):
    if blob.dtype != np.uint8 or blob.ndim != 1:
        raise ArtifactError(f"vocabulary {name!r} must be a 1-d uint8 array")
    try:
        words = bytes(blob).decode("utf-8").split("\n")
    except UnicodeDecodeError:
        raise ArtifactError(f"vocabulary {name!r} is not UTF-8") from None
    if tuple(words[: len(specials)]) != tuple(specials):
        raise ArtifactError(f"vocabulary {name!r} does not start with {list(specials)}")
    try:
        return Vocab(words[len(specials):], specials=specials, unk=specials[0])
    except ValueError as e:
        raise ArtifactError(f"vocabulary {name!r}: {e}") from None


def load(directory):
    """(params, config, featurizer, labels, manifest) of a checked artifact; ArtifactError if unusable."""
    manifest = read_manifest(directory)
    try:
        config = Config.from_dict(manifest["config"])
    except (TypeError, ValueError) as e:
        raise ArtifactError(f"config in {MANIFEST} is invalid: {e}") from None
    labels = manifest["labels"]
    _check_labels(labels)

    path = os.path.join(directory, manifest["weights"])
    try:
        with open(path, "rb") as f:
            data = f.read()
    except OSError as e:
        raise ArtifactError(f"weights file {path} cannot be read ({e.strerror})") from None
    if _sha256(data) != manifest["sha256"]:
        raise ArtifactError(
            f"{path}: sha256 {_sha256(data)[:12]}... does not match the manifest's {manifest['sha256'][:12]}...:"
            " the file is corrupt, truncated or from another model"
        )

    vocab_tables = [n for n in table_names(config) if n != "case" and category_of(n) is None] + \
        (["chars"] if config.chars else [])
    categories = [category_of(n) for n in table_names(config) if category_of(n) is not None]
    if categories and manifest.get("gazetteer", {}).get("categories") != categories:
        raise ArtifactError(f"the config's gazetteer features {categories} do not match the manifest's "
                            f"gazetteer categories {manifest.get('gazetteer', {}).get('categories')}")
    gazetteer_keys = [f"gazetteer_{kind}_{i}" for kind in ("phrases", "exact") for i in range(len(categories))]
    char_keys = ["C", "Wc", "bc"] if config.chars else []
    pool_keys = [key for key, _ in config.pools]
    param_keys = [table_key(n) for n in table_names(config)] + char_keys + ["W", "b", "U", "c"] + pool_keys
    arrays = _read_arrays(path, param_keys + [f"vocab_{n}" for n in vocab_tables] + gazetteer_keys)
    specials = {"word": SPECIALS, "chars": CHAR_SPECIALS}
    vocabs = {n: _vocab(arrays.pop(f"vocab_{n}"), n, specials.get(n, AFFIX_SPECIALS)) for n in vocab_tables}
    gazetteer = None
    if categories:
        try:
            gazetteer = Gazetteer.from_arrays(categories, {k: arrays.pop(k) for k in gazetteer_keys})
        except (TypeError, ValueError) as e:
            raise ArtifactError(f"the gazetteer's lists are unreadable ({e})") from None
    featurizer = Featurizer(config, vocabs, gazetteer)

    expected = {table_key(n): (featurizer.table_size(n), d) for n, d in
                zip(table_names(config), [config.word_dim, *config.features.values()])}
    expected.update(W=(config.hidden, config.input_dim), b=(config.hidden,),
                    U=(len(labels), config.hidden), c=(len(labels),))
    expected.update({key: (len(labels), config.hidden) for key, _ in config.pools})
    if config.chars:
        if not 1 <= config.char_width <= config.char_length:
            raise ArtifactError(f"character window {config.char_width} or length {config.char_length} is invalid")
        expected.update(C=(len(vocabs["chars"]), config.char_dim),
                        Wc=(config.char_filters, config.char_width * config.char_dim), bc=(config.char_filters,))
    for key, shape in expected.items():
        a = arrays[key]
        if a.dtype != np.float32:
            raise ArtifactError(f"param {key!r} has dtype {a.dtype}; expected float32")
        if a.shape != shape:
            raise ArtifactError(f"param {key!r} has shape {a.shape}; expected {shape}")
        if not np.isfinite(a).all():
            raise ArtifactError(f"param {key!r} holds NaN or infinite values")
    weight = manifest.get("document", {}).get("weight", 0.0)
    if not isinstance(weight, (int, float)) or not 0 <= weight <= 1:
        raise ArtifactError(f"document cue weight {weight!r} must be a number from 0 to 1")
    temperature = manifest.get("calibration", {}).get("temperature", 1.0)
    if not isinstance(temperature, (int, float)) or not math.isfinite(temperature) or temperature <= 0:
        raise ArtifactError(f"calibration temperature {temperature!r} must be a positive number")
    return arrays, config, featurizer, labels, manifest


def named_folders(models_dir):
    """{model name: folder} of the model folders in ``models_dir`` (hidden and unreadable ones left
    out); ArtifactError if two hold the same name."""
    names = {}
    for entry in sorted(os.scandir(models_dir), key=lambda e: e.name):
        if not entry.is_dir() or entry.name.startswith("."):
            continue
        try:
            name = read_manifest(entry.path).get("name")
        except ArtifactError:
            continue
        if name in names:
            raise ArtifactError(f"the folders {names[name]} and {entry.path} both hold model {name!r} "
                                "(each model folder needs a name of its own)")
        if name is not None:
            names[name] = entry.path
    return names
