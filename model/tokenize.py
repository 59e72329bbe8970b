"""Tokenizer that keeps character offsets, splitting roughly as CoNLL-2003 / Penn Treebank do.

Offsets are Python string indices (code points), end exclusive: ``text[start:end] == token``.
Every alternative of the pattern is linear in the length of the text it scans, so long or
hostile input cannot make it backtrack without bound.
"""
import re

_APOS = "'\u2019"
_CLITIC = rf"[{_APOS}](?:s|re|ve|ll|d|m)\b"
_TOKEN = re.compile(
    rf"""
      (?:[^\W\d_]\.){{2,}}                     # abbreviations with inner dots: U.S. e.g.
    | (?:Mr|Mrs|Ms|Dr|St|Jr|Sr|Mt|Inc|Corp|Ltd|Co|Gen|Gov|Sen|Rep|Lt|Col|Capt|Prof|No|vs)\.(?=\s)
    | \w+(?=n[{_APOS}]t\b)                      # "do" of "don't"
    | n[{_APOS}]t\b
    | {_CLITIC}                                 # possessive and other clitics
    | \d+(?:[.,:/]\d+)+                         # 1,000.5  12:30  3/4
    | \w+(?:-\w+|[{_APOS}](?!(?:s|re|ve|ll|d|m|t)\b)\w+)*   # words, hyphenated words, O'Neill
    | \S                                        # any other single character
    """,
    re.VERBOSE | re.IGNORECASE,
)
_SENTENCE_END = {".", "!", "?"}


def tokenize(text):
    """Split ``text`` into sentences of tokens.

    Returns a list of sentences, each a list of ``(token, start, end)``. A sentence ends after
    ``.``, ``!`` or ``?`` and at every line break, because the window stops at sentence edges.
    """
    sentences, current, last_end = [], [], 0
    find = text.find
    for match in _TOKEN.finditer(text):
        start, end = match.span()
        if current and find("\n", last_end, start) >= 0:
            sentences.append(current)
            current = []
        token = match.group()
        current.append((token, start, end))
        last_end = end
        if token in _SENTENCE_END:
            sentences.append(current)
            current = []
    if current:
        sentences.append(current)
    return sentences
