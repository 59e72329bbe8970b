"""Tokenizer that keeps character offsets, splitting roughly as CoNLL-2003 / Penn Treebank do.

Offsets are Python string indices (code points), end exclusive: ``text[start:end] == token``.
Every alternative of the pattern is linear in the length of the text it scans (those that look
ahead for an ``@`` look at most 64 characters), and a match always starts where the last one ended
(the space before a token is part of the match), so long or hostile input cannot make it backtrack
without bound. URLs, e-mail addresses, @mentions and #hashtags are single tokens.
"""
import re

_APOS = "'\u2019"
_CLITIC = rf"[{_APOS}](?:s|re|ve|ll|d|m)\b"
_TOKEN = re.compile(
    rf"""
      (\s*)                                     # the space before a token, so no match starts on it
      (   [^\W\d_]+(?![\w.{_APOS}@$-]|://)      # the common cases first: a plain word,
        | [@\#]\w+                              # an @mention or a #hashtag,
        | [^\w\s{_APOS}]                        # or a single mark
        | (?:https?://|www\.)[^\s<>"]*[^\s<>"{_APOS}.,;:!?)\]}}]     # URLs, without the mark after them
        | [\w.+-]{{1,64}}@\w[\w-]{{0,62}}(?:\.\w[\w-]{{0,62}}){{1,8}}  # e-mail addresses
        | (?:[^\W\d_]\.){{2,}}                  # abbreviations with inner dots: U.S. e.g.
        | (?:Mr|Mrs|Ms|Dr|St|Mt|Gen|Gov|Sen|Rep|Lt|Col|Capt|Prof|No|vs)\.(?=\s)
        # a company's or a name's abbreviation keeps its dot inside a sentence; at its end the dot ends it
        | (?:Inc|Corp|Ltd|Co|Jr|Sr|Bros)\.(?=\s*[,;:)]|\s+(?-i:[a-z0-9]))
        | (?-i:[A-Z][a-z]{{1,4}})\.(?=,|-\w)    # Fla., Mo.-based
        | [^\W\d_]\.(?=\s+[^\W\d_])             # an initial: M. Gatting
        | (?<![^\n])\d{{1,3}}\.(?=[ \t])        # the number of an item of a list, at the start of a line
        | [^\W\d_]{{1,3}}\$                     # currencies: C$ US$
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
_CLOSING = {'"', "'", "\u2019", "\u201d", ")", "]", "}"}


def tokenize(text):
    """Split ``text`` into sentences of tokens.

    Returns a list of sentences, each a list of ``(token, start, end)``. A sentence ends after
    ``.``, ``!`` or ``?`` (with any more of them, and a closing quote or bracket right after) and
    at every line break, because the window stops at sentence edges.
    """
    sentences, current, end, ended = [], [], 0, False
    for space, token in _TOKEN.findall(text):
        if not token:
            break
        if current and ("\n" in space or (ended and not (token in _SENTENCE_END or (token in _CLOSING and not space)))):
            sentences.append(current)
            current = []
        start = end + len(space)
        end = start + len(token)
        current.append((token, start, end))
        ended = token in _SENTENCE_END or (ended and token in _CLOSING and not space)
    if current:
        sentences.append(current)
    return sentences
