"""Sentences shown in another casing: how users send text that edited news never is."""

CASINGS = ("as-is", "lower", "upper", "title")


def recase_word(word, casing):
    """``word`` lower-cased, upper-cased or title-cased; as it is where that would change its length
    (a few letters, such as German sharp s, become two when upper-cased)."""
    if casing == "lower":
        out = word.lower()
    elif casing == "upper":
        out = word.upper()
    elif casing == "title":
        out = word[:1].upper() + word[1:].lower()
    elif casing == "as-is":
        return word
    else:
        raise ValueError(f"unknown casing {casing!r}: one of {', '.join(CASINGS)}")
    return out if len(out) == len(word) else word


def recase(words, casing):
    """A sentence's words, each re-cased."""
    return [recase_word(w, casing) for w in words]
