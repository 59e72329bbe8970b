"""Tokenizer that keeps character offsets, splitting roughly as CoNLL-2003 / Penn Treebank do.

Offsets are Python string indices (code points), end exclusive: ``text[start:end] == token``.
Every alternative of the pattern is linear in the length of the text it scans, and a match always
starts where the last one ended (the space before a token is part of the match), so long or
hostile input cannot make it backtrack without bound.
"""
import re

_APOS = "'\u2019"
_CLITIC = rf"[{_APOS}](?:s|re|ve|ll|d|m)\b"
_TOKEN = re.compile(
    rf"""
      (\s*)                                     # the space before a token, so no match starts on it
      (   [^\W\d_]+(?![\w.{_APOS}-])            # the common cases first: a plain word,
        | [^\w\s{_APOS}]                        # or a single mark
        | (?:[^\W\d_]\.){{2,}}                  # abbreviations with inner dots: U.S. e.g.
        | (?:Mr|Mrs|Ms|Dr|St|Jr|Sr|Mt|Inc|Corp|Ltd|Co|Gen|Gov|Sen|Rep|Lt|Col|Capt|Prof|No|vs)\.(?=\s)
        | \w+(?=n[{_APOS}]t\b)                  # "do" of "don't"
        | n[{_APOS}]t\b
        | {_CLITIC}                             # possessive and other clitics
        | \d+(?:[.,:/]\d+)+                     # 1,000.5  12:30  3/4
        | \w+(?:-\w+|[{_APOS}](?!(?:s|re|ve|ll|d|m|t)\b)\w+)*   # words, hyphenated words, O'Neill
        | \S                                    # any other single character
        | \Z                                    # the space at the end of the text
      )
    """,
    re.VERBOSE | re.IGNORECASE,
)
_SENTENCE_END = {".", "!", "?"}


def tokenize(text):
    """Split ``text`` into sentences of tokens.

    Returns a list of sentences, each a list of ``(token, start, end)``. A sentence ends after
    ``.``, ``!`` or ``?`` and at every line break, because the window stops at sentence edges.
    """
    sentences, current, end = [], [], 0
    for space, token in _TOKEN.findall(text):
        if not token:
            break
        if current and "\n" in space:
            sentences.append(current)
            current = []
        start = end + len(space)
        end = start + len(token)
        current.append((token, start, end))
        if token in _SENTENCE_END:
            sentences.append(current)
            current = []
    if current:
        sentences.append(current)
    return sentences
