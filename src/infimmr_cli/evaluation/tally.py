"""Pure counting (no I/O): per-item scores -> k/N overall and per subset.

A prediction is *correct* when its accuracy reward is full (1.0). The accuracy reward can be partial (0.2 for an answer
of the right type but the wrong value, DESIGN §3); a partial reward is not a right answer, so it does not count.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Iterable, Sequence

from infimmr_cli.data.records import Record

FULL = 1.0 - 1e-9


@dataclass(frozen=True)
class Count:
    k: int
    n: int

    @property
    def pct(self) -> float:
        """Percent correct; 0.0 for an empty subset (shown with its N = 0, so never mistaken for a result)."""
        return 100.0 * self.k / self.n if self.n else 0.0

    def __str__(self) -> str:
        return f"{self.k}/{self.n} ({self.pct:.2f}%)"

    def to_dict(self) -> dict[str, Any]:
        return {"k": self.k, "n": self.n, "pct": round(self.pct, 4)}


def is_correct(score: dict[str, Any]) -> bool:
    return float(score.get("accuracy") or 0.0) >= FULL


def has_format(score: dict[str, Any]) -> bool:
    return float(score.get("format") or 0.0) >= FULL


def _sort_key(value: object) -> tuple:
    # Numbers (MATH levels, MathVision levels) in numeric order, then strings alphabetically.
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return (0, float(value), "")
    return (1, 0.0, str(value))


def ordered(values: Iterable[object], first: Sequence[object] = ()) -> list[object]:
    """`first` in its own order (those present), then the rest sorted: numbers numerically, then text."""
    values = set(values)
    head = [v for v in first if v in values]
    return head + sorted((v for v in values if v not in set(head)), key=_sort_key)


def _group(records: Sequence[Record], verdicts: Sequence[bool | None], subsets, order: dict
           ) -> dict[str, dict[str, Count]]:
    """{label: {value: Count}} over the verdicts that are not None (None: not scored by this rule)."""
    out: dict[str, dict[str, Count]] = {}
    for label, key in subsets:
        groups: dict[object, list[bool]] = {}
        for rec, ok in zip(records, verdicts):
            value = key(rec)
            if value is not None and ok is not None:
                groups.setdefault(value, []).append(ok)
        out[label] = {str(v): Count(sum(groups[v]), len(groups[v])) for v in ordered(groups, order.get(label, ()))}
    return out


def tally(records: Sequence[Record], scores: Sequence[dict[str, Any]], subsets=(), order: dict | None = None,
          official: Sequence[bool | None] | None = None) -> dict[str, Any]:
    """records[i] was scored scores[i] -> {"accuracy": Count, "format": Count, "subsets": {label: {value: Count}}}.

    subsets: (label, record -> value) pairs; a record whose value is None is left out of that breakdown (and only it).
    Subset values are written as strings (JSON keys), in display order.
    official: the benchmark's official verdict per record (True / False / None = needs an LLM judge); when given, adds
    "official" (Count over the items the rule scores), "judge" (how many it cannot score) and "official_subsets".
    """
    if len(records) != len(scores):
        raise ValueError(f"tally: {len(records)} records but {len(scores)} scores")
    order = order or {}
    correct = [is_correct(s) for s in scores]
    out: dict[str, Any] = {
        "accuracy": Count(sum(correct), len(records)),
        "format": Count(sum(has_format(s) for s in scores), len(records)),
        "subsets": _group(records, correct, subsets, order),
    }
    if official is not None:
        if len(official) != len(records):
            raise ValueError(f"tally: {len(records)} records but {len(official)} official verdicts")
        scored = [v for v in official if v is not None]
        out["official"] = Count(sum(bool(v) for v in scored), len(scored))
        out["judge"] = len(official) - len(scored)
        out["official_subsets"] = _group(records, official, subsets, order)
    return out
