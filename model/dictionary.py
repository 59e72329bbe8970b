"""A user's dictionary: phrases with their entity types, in spaCy's EntityRuler pattern format.

One JSON object a line: ``{"label": "ORG", "pattern": "Zentrix Dynamics"}``. ``pattern`` is a phrase
(or a list of token objects, each ``{"LOWER": ...}``, ``{"ORTH": ...}`` or ``{"TEXT": ...}``, as
spaCy writes phrase-like token patterns); matched whatever the case unless the line says
``"case": true`` (or the tokens say ORTH/TEXT). ``id`` is accepted and ignored; blank lines and lines
starting with ``//`` are skipped.

An entry feeds the gazetteer feature of the category its label is trained with (``LOC``, ``ORG``,
``MISC``, a custom type; ``PER``: its first word the first-name category, the rest the surname
one), so the model weighs it in context. ``"force": true`` makes it a hard rule: its matches are
always that entity, whatever the model reads.
"""
import hashlib
import json

from model.gazetteer import MAX_WORDS, Gazetteer
from model.tokenize import tokenize
from model.vocab import normalize

TOKEN_KEYS = {"LOWER": False, "ORTH": True, "TEXT": True}
KEYS = {"label", "pattern", "case", "force", "id"}


class DictionaryError(ValueError):
    """The file cannot be used; the message names the line."""


class Dictionary:
    """Parsed entries: (line, label, words, case, force) each, and the file's sha256 as its version."""

    def __init__(self, entries, version, path=None):
        self.entries, self.version, self.path = entries, version, path

    def __len__(self):
        return len(self.entries)

    @classmethod
    def parse(cls, data, path="dictionary"):
        """A Dictionary of the bytes of a JSONL file; DictionaryError naming the first bad line."""
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError as e:
            raise DictionaryError(f"{path}: not UTF-8 (byte {e.start})") from None
        entries = []
        for number, line in enumerate(text.splitlines(), start=1):
            if line.strip() and not line.lstrip().startswith("//"):
                entries.append(_entry(line, f"{path}:{number}"))
        return cls(entries, hashlib.sha256(data).hexdigest()[:12], path)

    @classmethod
    def read(cls, path):
        return cls.parse(read_bytes(path), path)

    def split(self, model_types, categories):
        """(phrases, exact, forced) for a model: gazetteer entries (category, words) matched
        normalised or exactly, and the hard rules (label, words, case); DictionaryError for a label
        the model can neither weigh nor produce."""
        phrases, exact, forced = [], [], []
        for where, label, words, case, force in self.entries:
            fed = _categories(label, words, categories)
            if force:
                if label not in model_types:
                    raise DictionaryError(f"{where}: \"force\" needs a type the model tags; {label!r} is not one "
                                          f"of {model_types}")
                forced.append((label, words, case))
            elif not fed:
                known = sorted(set(model_types) & ({"PER"} | set(categories))) if categories else []
                raise DictionaryError(f"{where}: the model has no gazetteer category for {label!r} (labels it "
                                      f"weighs: {known or 'none, it has no gazetteer features'}); say "
                                      "\"force\": true to make it a hard rule")
            for category, part in fed:
                target = exact if case else phrases
                target.append((category, part if case else tuple(normalize(w) for w in part)))
        return phrases, exact, forced


def _entry(line, where):
    try:
        item = json.loads(line)
    except json.JSONDecodeError as e:
        raise DictionaryError(f"{where}: invalid JSON ({e.msg} at column {e.colno})") from None
    if not isinstance(item, dict):
        raise DictionaryError(f"{where}: expected a JSON object like {{\"label\": \"ORG\", \"pattern\": \"...\"}}")
    unknown = set(item) - KEYS
    if unknown:
        raise DictionaryError(f"{where}: unknown keys {sorted(unknown)}; expected {sorted(KEYS)}")
    label = item.get("label")
    if not isinstance(label, str) or not label.strip() or label != label.strip():
        raise DictionaryError(f"{where}: \"label\" must be a non-empty string without surrounding spaces")
    for flag in ("case", "force"):
        if not isinstance(item.get(flag, False), bool):
            raise DictionaryError(f"{where}: \"{flag}\" must be true or false")
    words, case = _pattern(item.get("pattern"), where, item.get("case", False))
    if not 1 <= len(words) <= MAX_WORDS:
        raise DictionaryError(f"{where}: the pattern has {len(words)} words; 1 to {MAX_WORDS} are matched")
    return where, label, words, case, item.get("force", False)


def _pattern(pattern, where, case):
    """(words as the tokenizer splits them, whether they match case-sensitively)."""
    if isinstance(pattern, str):
        return tuple(t for sentence in tokenize(pattern) for t, _, _ in sentence), case
    if isinstance(pattern, list) and pattern and all(isinstance(t, dict) and len(t) == 1 for t in pattern):
        keys = {next(iter(t)) for t in pattern}
        values = [next(iter(t.values())) for t in pattern]
        if keys <= set(TOKEN_KEYS) and all(isinstance(v, str) and v and " " not in v for v in values):
            exact = any(TOKEN_KEYS[k] for k in keys)
            if exact and not keys <= {"ORTH", "TEXT"}:
                raise DictionaryError(f"{where}: a token pattern matches LOWER or ORTH/TEXT, not both")
            return tuple(values), case or exact
    raise DictionaryError(f"{where}: \"pattern\" must be a phrase or a list of {{\"LOWER\"|\"ORTH\"|\"TEXT\": "
                          "\"word\"} token objects")


def _categories(label, words, categories):
    """[(category, words)] an entry feeds in a model with gazetteer ``categories``."""
    if label in categories:
        return [(label, words)]
    if label == "PER" and {"first", "last"} <= set(categories):
        return [("first", words[:1])] + ([("last", words[1:])] if len(words) > 1 else [])
    return []


def forced_matcher(forced):
    """A Gazetteer whose categories are the forced labels, or None."""
    if not forced:
        return None
    labels = sorted({label for label, _, _ in forced})
    phrases = {label: [tuple(normalize(w) for w in words) for lab, words, case in forced if lab == label and not case]
               for label in labels}
    exact = {label: [words for lab, words, case in forced if lab == label and case] for label in labels}
    return Gazetteer(labels, phrases, exact)


def read_bytes(path):
    """The bytes of a dictionary file; DictionaryError if it cannot be read."""
    try:
        with open(path, "rb") as f:
            return f.read()
    except OSError as e:
        raise DictionaryError(f"{path}: cannot be read ({e.strerror})") from None
