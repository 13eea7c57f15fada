"""The benchmark registry: name -> where its export sits under the data folder, which `prepare` reader reads it, and
which record fields split it into subsets.

Layout under `--data-dir` (or `INFIMMR_DATA`): one folder per bench, holding the files as the Hugging Face dataset
repository names them, so `huggingface-cli download REPO --repo-type dataset --local-dir DATA/<bench>` fills it; the
files the benchmarks' GitHub repositories publish (e.g. `mathvista/data/testmini.json`) are found when no parquet is.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from infimmr_cli.errors import UsageError
from infimmr_cli.data.records import Record

MATHVERSE_VERSIONS = ["Text Dominant", "Text Lite", "Vision Intensive", "Vision Dominant", "Vision Only"]


def _meta(key: str) -> Callable[[Record], object]:
    return lambda r: r.meta.get(key)


def _answers(r: Record) -> str:
    return "multiple" if r.meta.get("multiple_answers") else "single"


@dataclass(frozen=True)
class Bench:
    name: str                       # the --bench value and the folder under OUT
    title: str                      # the column heading in the paper's Table 1
    reader: str                     # the `prepare --from` source that reads the export
    hf_dataset: str                 # where to download it
    files: str                      # what to download, as the dataset repository names it
    patterns: tuple[str, ...]       # globs under the data folder; the first that matches one file wins
    items: int                      # the full benchmark's size, for the coverage note
    # (label, record -> subset value); a value of None leaves the record out of that breakdown only.
    subsets: tuple[tuple[str, Callable[[Record], object]], ...] = ()
    # Fixed display order of some subset values (the rest follow, sorted).
    order: dict[str, list] = field(default_factory=dict)

    def find_export(self, data_dir: str | Path) -> Path:
        """The export file for this bench under `data_dir`; a UsageError says which path was expected."""
        data_dir = Path(data_dir)
        for pattern in self.patterns:
            hits = sorted(p for p in data_dir.glob(pattern) if p.is_file())
            if len(hits) == 1:
                return hits[0]
            if len(hits) > 1:
                shown = ", ".join(str(h) for h in hits[:4])
                raise UsageError(f"--data-dir: {self.name}: {len(hits)} files match {pattern} ({shown}); keep one "
                                 f"or pass prepared records with --records")
        raise UsageError(f"--data-dir: {self.name}: no export found under {data_dir} (expected "
                         f"{data_dir / self.patterns[0]}; download {self.files} from {self.hf_dataset})")


BENCHES: dict[str, Bench] = {b.name: b for b in [
    Bench("math500", "MATH500", "math500", "HuggingFaceH4/MATH-500", "test.jsonl",
          ("math500/test.jsonl", "math500/**/test.jsonl"), 500,
          subsets=(("level", _meta("level")), ("subject", _meta("subject")))),
    Bench("mathverse", "MathVerse", "mathverse", "AI4Math/MathVerse", "testmini.parquet",
          ("mathverse/testmini.parquet", "mathverse/**/testmini.parquet", "mathverse/**/testmini-*.parquet",
           "mathverse/data/testmini.json", "mathverse/testmini.json"), 3940,
          subsets=(("problem_version", _meta("problem_version")), ("question_type", _meta("question_type"))),
          order={"problem_version": MATHVERSE_VERSIONS}),
    Bench("mathvision", "MathVision", "mathvision", "MathLLMs/MathVision", "data/test-*.parquet",
          ("mathvision/data/test-*.parquet", "mathvision/**/test-*.parquet", "mathvision/data/test.jsonl",
           "mathvision/test.jsonl"), 3040,
          subsets=(("subject", _meta("subject")), ("level", _meta("level")))),
    Bench("mathvision-testmini", "MathVision-mini", "mathvision", "MathLLMs/MathVision", "data/testmini-*.parquet",
          ("mathvision/data/testmini-*.parquet", "mathvision/**/testmini-*.parquet", "mathvision/data/testmini.jsonl",
           "mathvision/testmini.jsonl"), 304,
          subsets=(("subject", _meta("subject")), ("level", _meta("level")))),
    Bench("olympiadbench", "OlympiadBench", "olympiadbench", "Hothan/OlympiadBench",
          "OE_MM_maths_en_COMP/*.parquet",
          ("olympiadbench/OE_MM_maths_en_COMP/*.parquet", "olympiadbench/**/OE_MM_maths_en_COMP/*.parquet",
           "olympiadbench/**/OE_MM_maths_en_COMP*.parquet", "olympiadbench/**/OE_MM_maths_en_COMP.json"), 150,
          subsets=(("subfield", _meta("subfield")), ("answers", _answers))),
    Bench("mathvista", "MathVista", "mathvista", "AI4Math/MathVista", "data/testmini-*.parquet",
          ("mathvista/data/testmini-*.parquet", "mathvista/**/testmini-*.parquet", "mathvista/data/testmini.json",
           "mathvista/testmini.json"), 1000,
          subsets=(("category", _meta("category")), ("task", _meta("task")),
                   ("question_type", _meta("question_type")))),
]}

# The paper's Table 1 column order.
TABLE1_ORDER = ["math500", "mathverse", "mathvision", "olympiadbench", "mathvista"]


def get_bench(name: str) -> Bench:
    if name not in BENCHES:
        raise UsageError(f"--bench: {name!r} is not one of {', '.join(BENCHES)}")
    return BENCHES[name]
