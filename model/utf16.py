"""Offsets in UTF-16 code units (JavaScript string indices, as Label Studio counts) and code points
(as nerve counts): a character outside the Basic Multilingual Plane (most emoji) is one code point
and two code units. Text wholly inside the BMP, nearly all text, needs no table."""
from bisect import bisect_right


class Offsets:
    """Conversions both ways for one text."""

    def __init__(self, text):
        # the code-point positions of the characters that take two code units
        self.astral = [i for i, ch in enumerate(text) if ord(ch) > 0xFFFF] if not text.isascii() else []
        self.unit_ends = [a + k + 2 for k, a in enumerate(self.astral)]  # where each one's pair ends

    def to_units(self, point):
        """The UTF-16 offset of code-point offset ``point``."""
        return point + bisect_right(self.astral, point - 1) if self.astral else point

    def to_points(self, unit):
        """The code-point offset of UTF-16 offset ``unit``; an offset inside a surrogate pair (no
        character boundary) goes to the start of its character."""
        if not self.astral:
            return unit
        lo = bisect_right(self.unit_ends, unit)  # astral characters wholly before ``unit``
        point = unit - lo
        if lo < len(self.astral) and self.astral[lo] < point:
            point = self.astral[lo]   # inside the pair of astral character ``lo``
        return point


def units_length(text):
    """The length of ``text`` in UTF-16 code units."""
    return Offsets(text).to_units(len(text))
