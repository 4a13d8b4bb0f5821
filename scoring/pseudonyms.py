"""Pseudonyms numbered in order of first sight, for the array code that works on numbers.

Lookups of a whole batch go through a pandas hash index (C speed); names first seen since
it was last rebuilt wait in a small dict, and the index is rebuilt when that dict grows.

A reader that holds many batches of one file (replay) codes each name once in a `Roster`
and passes persons on as `Coded` arrays: a `Numbering` then maps a batch's codes to its
own numbers with one array lookup, where hashing every name of every batch again cost a
tenth of a replay.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd


class Roster:
    """Pseudonyms given codes in order of first sight (a reader's, not any index's numbers)."""

    def __init__(self) -> None:
        self.names: list[str] = []
        self._codes: dict[str, int] = {}

    def __len__(self) -> int:
        return len(self.names)

    def code(self, name: str) -> int:
        """The code of `name`, coding it if new."""
        code = self._codes.get(name)
        if code is None:
            code = self._codes[name] = len(self.names)
            self.names.append(name)
        return code

    def codes(self, names: Iterable[str]) -> np.ndarray:
        """The codes of `names` (int64), coding those not seen before."""
        return np.array([self.code(name) for name in names], dtype=np.int64)


@dataclass(frozen=True, slots=True)
class Coded:
    """Persons as codes into a roster: an array of pseudonyms that is cheap to slice, join and number."""

    codes: np.ndarray
    roster: Roster

    def __len__(self) -> int:
        return len(self.codes)

    def __getitem__(self, index: slice | np.ndarray) -> "Coded":
        return Coded(self.codes[index], self.roster)

    def names(self) -> np.ndarray:
        """The pseudonyms themselves (object array)."""
        names = self.roster.names
        return np.array([names[code] for code in self.codes.tolist()], dtype=object)


Persons = Sequence[str] | np.ndarray | Coded
"""Pseudonyms of a batch: names (a list, numpy or Arrow array) or codes (`Coded`)."""


def joined(parts: Sequence[Persons]) -> Persons:
    """The persons of several batches, in order: still coded when every part is coded alike."""
    if parts and all(isinstance(part, Coded) and part.roster is parts[0].roster for part in parts):  # type: ignore[union-attr]
        return Coded(np.concatenate([part.codes for part in parts]), parts[0].roster)  # type: ignore[union-attr]
    return np.concatenate([part.names() if isinstance(part, Coded) else np.asarray(part, dtype=object)
                           for part in parts])


class Numbering:
    """Each pseudonym's number (its position in `names`), given once and kept."""

    def __init__(self) -> None:
        self.names: list[str] = []
        self._lookup = pd.Index([], dtype=object)
        self._recent: dict[str, int] = {}
        self._roster: Roster | None = None
        self._by_code = np.empty(0, dtype=np.int64)
        """The number of each code of `_roster` (-1: not looked up yet)."""

    def __len__(self) -> int:
        return len(self.names)

    def numbers(self, persons: Persons) -> np.ndarray:
        """The numbers of `persons` (int64), numbering those not seen before (in order of first sight)."""
        if isinstance(persons, Coded):
            return self._coded(persons)
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

    def _coded(self, persons: Coded) -> np.ndarray:
        if persons.roster is not self._roster:
            self._roster, self._by_code = persons.roster, np.empty(0, dtype=np.int64)
        if len(self._by_code) < len(persons.roster):
            grown = np.full(max(len(persons.roster), 2 * len(self._by_code)), -1, dtype=np.int64)
            grown[:len(self._by_code)] = self._by_code
            self._by_code = grown
        numbers = self._by_code[persons.codes]
        missing = numbers < 0
        if missing.any():
            # Codes never looked up go through the names, in order of first sight, as names would.
            which, codes = pd.factorize(persons.codes[missing])
            names = persons.roster.names
            found = self.numbers(np.array([names[code] for code in codes.tolist()], dtype=object))
            self._by_code[codes] = found
            numbers[missing] = found[which]
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
