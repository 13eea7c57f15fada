"""`infimmr compare`: several eval folders in one table, Markdown + PNG + JSON (and compare.provenance.json)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from rich.console import Console

from infimmr_cli.errors import UsageError


@dataclass
class CompareOutput:
    markdown: Path
    png: Path
    json: Path
    text: str


def run(runs: list[str], out: str | Path, with_paper: bool = False, quiet: bool = False,
        table: str | None = None) -> CompareOutput:
    """runs: `DIR` or `label=DIR`, each an `infimmr eval --out` folder. Writes OUT/compare.{md,png,json} and its record.

    `table`: "1" or "2" gives the shape of that table of the paper (its columns; its rows under `with_paper`).
    """
    from infimmr_cli.evaluation import compare
    from infimmr_cli.evaluation.paper import TABLES
    from infimmr_cli.evaluation.report import RESULTS
    from infimmr_cli.files import atomic_write_text
    from infimmr_cli.provenance import write_provenance

    if table is not None and table not in TABLES:
        raise UsageError(f"--table: {table!r} is not one of {', '.join(TABLES)}")
    if not runs:
        raise UsageError("compare: give at least one eval folder (DIR or label=DIR)")
    parsed = [compare.parse_run_arg(r) for r in runs]
    rows = [compare.load_row(label, folder) for label, folder in parsed]
    labels = [r.label for r in rows]
    dupes = sorted({x for x in labels if labels.count(x) > 1})
    if dupes:
        raise UsageError(f"--compare: label {dupes[0]!r} used twice; name the runs with label=DIR")
    if with_paper:
        rows = rows + compare.paper_rows(table)
    if table is not None:
        rows = compare.restrict(rows, table)
    out = Path(out)
    text = compare.to_markdown(rows)
    md, png, js = out / "compare.md", out / "compare.png", out / "compare.json"
    atomic_write_text(md, text)
    atomic_write_text(js, json.dumps(compare.compare_payload(rows), indent=2) + "\n")
    compare.draw_png(rows, png)
    write_provenance(out / "compare", "compare", {"runs": list(runs), "with_paper": with_paper, "table": table},
                     {f"results[{label}]": Path(folder) / RESULTS for label, folder in parsed},
                     path=out / "compare.provenance.json")
    console = Console(quiet=quiet)
    console.print(compare.rich_table(rows))
    console.print(f"wrote {md}, {png}", highlight=False)
    return CompareOutput(md, png, js, text)
