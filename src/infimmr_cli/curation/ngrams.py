"""Stage 1 of decontamination, as pure text functions: word n-grams and the digit-blind exact key (Light-R1's rules).

Rules (../shared/REFERENCE-NOTES.md):
- Words: lower-case, strip, split on whitespace (runs collapse); punctuation stays attached ("x." and "x" differ).
- N-gram rule: a training question sharing any word 32-gram with a benchmark question leaks it. No ratio threshold.
- Short texts: when either question has fewer than n words, no n-gram exists; the pair is then compared WHOLE, meaning the
  two word sequences are equal. Containment is deliberately not used: short benchmark questions such as "What is the
  value of x?" occur inside thousands of unrelated training questions. (The exact rule below also catches whole copies
  that differ only in punctuation, spacing or numbers.)
- Exact rule: drop every non-word character (`[^\\w]`, spaces included), then every digit, then lower-case; equal keys
  leak. Raw texts that are equal also leak. An empty key (a question of only digits and symbols) matches by raw equality
  only, and an empty question matches nothing: both would otherwise pair unrelated items.

Cost: the benchmark side is indexed once (n-gram hash -> first item holding it; key -> item; whole text -> item); each
training question is then checked in time linear in its length, so a run grows with total words, not with pairs.
N-gram hashes are Python's `hash` of word tuples: fast, and stable within one process (string hashing is randomised per
process, which is harmless since the index is never stored). Every hash hit is verified word by word, so a collision can
never remove an item.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Iterable, Iterator, Sequence

NGRAM = 32

_NON_WORD = re.compile(r"[^\w]")
_DIGIT = re.compile(r"\d")


def words(text: str) -> list[str]:
    """'  What IS  x?\\n' -> ['what', 'is', 'x?']: lower-case, whitespace-split (split() strips and collapses runs)."""
    return text.lower().split()


def word_ngrams(ws: Sequence[str], n: int = NGRAM) -> Iterator[tuple[str, ...]]:
    """All contiguous n-word windows, in order; none when len(ws) < n."""
    t = tuple(ws)
    for i in range(len(t) - n + 1):
        yield t[i:i + n]


def exact_key(text: str) -> str:
    """'Find x, if 2x = 14.' -> 'findxifx': non-word characters, then digits removed, then lower-cased."""
    return _DIGIT.sub("", _NON_WORD.sub("", text)).lower()


@dataclass(frozen=True)
class TextMatch:
    """Why a training question leaks benchmark item `bench` (an index into the index's items)."""

    stage: str  # "exact" or "ngram"
    bench: int
    evidence: str  # the shared n-gram, the whole text, or the exact key


@dataclass
class BenchIndex:
    """The benchmark side of stage 1, built once; `match` checks one training question against all of it."""

    n: int = NGRAM
    ids: list[str] = field(default_factory=list)
    grams: dict[int, tuple[int, int]] = field(default_factory=dict)  # hash(n-gram) -> (item, word position), first wins
    item_words: list[tuple[str, ...]] = field(default_factory=list)
    whole: dict[tuple[str, ...], int] = field(default_factory=dict)  # word sequences shorter than n -> item
    keys: dict[str, int] = field(default_factory=dict)  # non-empty exact keys -> item
    raws: dict[str, int] = field(default_factory=dict)  # stripped raw texts -> item

    def add(self, item_id: str, text: str) -> int:
        """Index one benchmark question; returns its index. Earlier items win ties, so reports are deterministic."""
        i = len(self.ids)
        self.ids.append(item_id)
        ws = tuple(words(text))
        self.item_words.append(ws)
        if not ws:
            return i
        self.raws.setdefault(text.strip(), i)
        key = exact_key(text)
        if key:
            self.keys.setdefault(key, i)
        if len(ws) < self.n:
            self.whole.setdefault(ws, i)
            return i
        n = self.n
        grams = self.grams
        for p in range(len(ws) - n + 1):
            grams.setdefault(hash(ws[p:p + n]), (i, p))
        return i

    def match(self, text: str) -> TextMatch | None:
        """The first leak found for one training question: exact rule first (the stronger statement), then n-grams."""
        ws = tuple(words(text))
        if not ws:
            return None
        raw = text.strip()
        if raw in self.raws:
            return TextMatch("exact", self.raws[raw], "raw text equal")
        key = exact_key(text)
        if key and key in self.keys:
            return TextMatch("exact", self.keys[key], key)
        n = self.n
        if len(ws) < n:
            hit = self.whole.get(ws)
            return TextMatch("ngram", hit, " ".join(ws)) if hit is not None else None
        grams = self.grams
        for p in range(len(ws) - n + 1):
            gram = ws[p:p + n]
            hit = grams.get(hash(gram))
            if hit is not None:
                j, q = hit
                if self.item_words[j][q:q + n] == gram:  # verify: a hash collision never removes an item
                    return TextMatch("ngram", j, " ".join(gram))
        return None


def build_index(items: Iterable[tuple[str, str]], n: int = NGRAM) -> BenchIndex:
    """Index (id, question) pairs of the benchmark side."""
    index = BenchIndex(n=n)
    for item_id, text in items:
        index.add(item_id, text)
    return index


def naive_pair_match(train_text: str, bench_text: str, n: int = NGRAM) -> str | None:
    """The same rule for ONE pair, with nothing precomputed: the per-pair baseline `bench/decontam.py` measures.

    Returns the stage ("exact" or "ngram") or None; tests check it agrees with BenchIndex.match.
    """
    tw, bw = words(train_text), words(bench_text)
    if not tw or not bw:
        return None
    if train_text.strip() == bench_text.strip():
        return "exact"
    tk = exact_key(train_text)
    if tk and tk == exact_key(bench_text):
        return "exact"
    if len(tw) < n or len(bw) < n:
        return "ngram" if tw == bw else None
    return "ngram" if not set(word_ngrams(tw, n)).isdisjoint(word_ngrams(bw, n)) else None
