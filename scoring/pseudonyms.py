"""Pseudonyms numbered in order of first sight, for the array code that works on numbers.

Lookups of a whole batch go through a pandas hash index (C speed); names first seen since
it was last rebuilt wait in a small dict, and the index is rebuilt when that dict grows.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd


class Numbering:
    """Each pseudonym's number (its position in `names`), given once and kept."""

    def __init__(self) -> None:
        self.names: list[str] = []
        self._lookup = pd.Index([], dtype=object)
        self._recent: dict[str, int] = {}

    def __len__(self) -> int:
        return len(self.names)

    def numbers(self, persons: Sequence[str] | np.ndarray) -> np.ndarray:
        """The numbers of `persons` (int64), numbering those not seen before."""
        names = np.asarray(persons, dtype=object)
        # An object index: given a bare array, pandas would first convert it to its string dtype.
        numbers = self._lookup.get_indexer(pd.Index(names, dtype=object)).astype(np.int64)
        missing = numbers < 0
        if missing.any():
            codes, uniques = pd.factorize(names[missing])
            numbers[missing] = np.array([self._first_sight(name) for name in uniques.tolist()], dtype=np.int64)[codes]
            if len(self._recent) > max(1024, len(self._lookup) // 8):
                self._lookup = pd.Index(self.names, dtype=object)
                self._recent = {}
        return numbers

    def find(self, person: str) -> int:
        """`person`'s number, or -1 if never seen (nothing is numbered)."""
        number = self._lookup.get_indexer([person])[0] if len(self._lookup) else -1
        return int(self._recent.get(person, number))

    def _first_sight(self, person: str) -> int:
        number = self._recent.get(person)
        if number is None:
            number = self._recent[person] = len(self.names)
            self.names.append(person)
        return number
