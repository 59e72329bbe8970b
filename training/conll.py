"""CoNLL-style files: one token per line, tag in the last column, blank lines between sentences.

Reads CoNLL-2003 (IOB1 as released, or IOB2), plain two-column BIO files and BIOES files, and
returns every sentence in one scheme, IOB2, whichever the file held.
"""
from dataclasses import dataclass

from model.decode import spans, split_tag, to_iob2


class ConllError(ValueError):
    """A malformed line; the message names the file and line."""


@dataclass
class Sentence:
    words: list
    tags: list
    doc: int = 0  # index of the document (``-DOCSTART-`` section) the sentence is in


def _check_tag(tag, path, lineno):
    prefix, typ = split_tag(tag)
    if tag != "O" and not (prefix in ("B", "I", "E", "S") and typ):
        raise ConllError(f"{path}:{lineno}: tag {tag!r} is not O or B-/I-/E-/S-TYPE")


def to_bioes(iob2_tags):
    """IOB2 tags as BIOES: single-token entities S-, last tokens E-."""
    out = ["O"] * len(iob2_tags)
    for typ, first, last in spans(iob2_tags):
        if last - first == 1:
            out[first] = f"S-{typ}"
        else:
            out[first] = f"B-{typ}"
            out[first + 1: last - 1] = [f"I-{typ}"] * (last - first - 2)
            out[last - 1] = f"E-{typ}"
    return out


def detect_scheme(sentences_tags):
    """'IOB1' if some entity opens with I- (as the 2003 release does), 'BIOES' if E-/S- occur, else 'IOB2'."""
    for tags in sentences_tags:
        prev = "O"
        for tag in tags:
            prefix, typ = split_tag(tag)
            if prefix in ("E", "S"):
                return "BIOES"
            pprefix, ptyp = split_tag(prev)
            if prefix == "I" and (prev == "O" or ptyp != typ):
                return "IOB1"
            prev = tag
    return "IOB2"


def iter_conll(path):
    """Sentences as the file holds them (tags not converted), one at a time. Raises ConllError on a
    malformed line."""
    words, tags, doc, seen = [], [], 0, False
    try:
        with open(path, encoding="utf-8") as f:
            for lineno, line in enumerate(f, 1):
                fields = line.split()
                if not fields or fields[0] == "-DOCSTART-":
                    if words:
                        yield Sentence(words, tags, doc)
                        words, tags, seen = [], [], True
                    if fields and seen:
                        doc += 1
                    continue
                if len(fields) < 2:
                    raise ConllError(f"{path}:{lineno}: expected a word and a tag, found {line.strip()!r}")
                _check_tag(fields[-1], path, lineno)
                words.append(fields[0])
                tags.append(fields[-1])
    except UnicodeDecodeError as e:
        raise ConllError(f"{path}: not UTF-8 text ({e.reason} at byte {e.start})") from None
    except OSError as e:
        raise ConllError(f"{path}: cannot read ({e.strerror})") from None
    if words:
        yield Sentence(words, tags, doc)


def read_conll(path):
    """(sentences in IOB2, the scheme the file held). Raises ConllError on a malformed line."""
    sentences = list(iter_conll(path))
    if not sentences:
        raise ConllError(f"{path}: no sentences found")
    scheme = detect_scheme(s.tags for s in sentences)
    for s in sentences:
        s.tags = to_iob2(s.tags)
    return sentences, scheme
