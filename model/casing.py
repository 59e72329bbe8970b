"""What capitalisation can say in a sentence: the form of each word, and the casing regime of its sentence.

Capitals mark names in edited text, but not in a sentence typed all in lower case, shouted in
capitals or set as a Title Case headline. The regime of a sentence tells the network which of these
it is reading, so that the casing of a word is read against it (the casing table holds one row per
casing and regime).
"""
import re

import numpy as np

# Word forms: what a word contributes to its sentence's regime.
NONE, LOWER, SHORT_LOWER, TITLE, UPPER, MIXED, ADDRESS = range(7)
N_FORMS = 7
REGIMES = ("cased", "lower", "upper", "title")
CASED, LOWER_REGIME, UPPER_REGIME, TITLE_REGIME = range(4)

_ADDRESS = re.compile(r"(?:https?://|www\.)\S|[^@\s]+@[^@\s]+\.\w", re.IGNORECASE)


def is_address(word):
    """A URL or an e-mail address: never an entity."""
    return _ADDRESS.match(word) is not None


def word_form(word):
    """One of the forms above. A lone capital (I, A) says nothing about the regime: it is NONE."""
    if is_address(word):
        return ADDRESS
    letters = [ch for ch in word if ch.isalpha()]
    if not letters or (len(letters) == 1 and letters[0].isupper()):
        return NONE
    if all(ch.islower() for ch in letters):
        return SHORT_LOWER if len(letters) <= 3 else LOWER
    if all(ch.isupper() for ch in letters):
        return UPPER
    if letters[0].isupper() and not any(ch.isupper() for ch in letters[1:]):
        return TITLE
    return MIXED


def sentence_regimes(forms, lengths):
    """(S,) regime ids of sentences laid end to end.

    forms: (N,) word forms; lengths: (S,) tokens per sentence, all > 0.
    - lower: no capitals but on the first word (phones and transcripts capitalise it);
    - upper: capitals only;
    - title: at least two title-case words and no lower-case word longer than three letters
      (Title Case leaves "of", "the", "in" small);
    - cased: everything else, the edited text most training data is.
    """
    if len(lengths) == 1:  # one sentence, as most requests are: a few Python steps beat a dozen numpy calls
        return np.array([sentence_regime(forms.tolist())], dtype=np.int32)
    lengths = np.asarray(lengths, dtype=np.int64)
    s = len(lengths)
    sentence = np.repeat(np.arange(s), lengths)
    counts = np.bincount(sentence * N_FORMS + forms, minlength=s * N_FORMS).reshape(s, N_FORMS)
    first = forms[np.cumsum(lengths) - lengths]
    capitals = counts[:, TITLE] + counts[:, UPPER] + counts[:, MIXED]
    lower = counts[:, LOWER] + counts[:, SHORT_LOWER]
    capitals_after_first = capitals - ((first == TITLE) | (first == UPPER) | (first == MIXED))
    regime = np.full(s, CASED, dtype=np.int32)
    regime[(counts[:, TITLE] >= 2) & (counts[:, LOWER] == 0) & (counts[:, TITLE] >= counts[:, UPPER])] = TITLE_REGIME
    regime[(lower == 0) & (counts[:, TITLE] == 0) & (counts[:, UPPER] > 0)] = UPPER_REGIME
    regime[(capitals_after_first == 0) & (lower > 0)] = LOWER_REGIME
    return regime


def sentence_regime(forms):
    """The regime of one sentence given as a list of word forms: ``sentence_regimes``' rule, for one."""
    counts = [0] * N_FORMS
    for form in forms:
        counts[form] += 1
    capitals = counts[TITLE] + counts[UPPER] + counts[MIXED]
    lower = counts[LOWER] + counts[SHORT_LOWER]
    if lower and capitals - (forms[0] in (TITLE, UPPER, MIXED)) == 0:
        return LOWER_REGIME
    if not lower and not counts[TITLE] and counts[UPPER]:
        return UPPER_REGIME
    if counts[TITLE] >= 2 and not counts[LOWER] and counts[TITLE] >= counts[UPPER]:
        return TITLE_REGIME
    return CASED
