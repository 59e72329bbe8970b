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
    tokens = [(m.group(), *m.span()) for m in _TOKEN.finditer(text)]
    # Cut after sentence-final punctuation, and before a token that follows a line break.
    cuts = {i + 1 for i, (tok, _, _) in enumerate(tokens) if tok in _SENTENCE_END}
    if "\n" in text:
        cuts.update(i for i in range(1, len(tokens)) if text.find("\n", tokens[i - 1][2], tokens[i][1]) >= 0)
    sentences, start = [], 0
    for cut in sorted(cuts):
        if start < cut:
            sentences.append(tokens[start:cut])
        start = cut
    if start < len(tokens):
        sentences.append(tokens[start:])
    return sentences
