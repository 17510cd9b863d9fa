"""Line numbers for positions visited in increasing order, in linear total time."""

from __future__ import annotations


class LineCounter:
    def __init__(self, text: str) -> None:
        self._text = text
        self._position = 0
        self._line = 1

    def line_at(self, position: int) -> int:
        """1-based line of ``position``; counting "\\n" makes "\\r\\n" one line break."""
        if position >= self._position:
            self._line += self._text.count("\n", self._position, position)
        else:
            self._line -= self._text.count("\n", position, self._position)
        self._position = position
        return self._line
