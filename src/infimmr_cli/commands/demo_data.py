from __future__ import annotations

from pathlib import Path

from rich.console import Console
from rich.table import Table


def run(out: str | Path, n_text: int = 24, n_image: int = 24, n_bench: int = 6, seed: int = 0) -> dict[str, Path]:
    from infimmr_cli.data.demo_data import write_demo_exports

    paths = write_demo_exports(out, n_text=n_text, n_image=n_image, n_bench=n_bench, seed=seed)
    from infimmr_cli.provenance import write_provenance

    write_provenance(out, "demo-data", {"n_text": n_text, "n_image": n_image, "n_bench": n_bench, "seed": seed}, {},
                     results={name: str(p) for name, p in paths.items()})
    table = Table(title=f"demo exports in {out}")
    table.add_column("source")
    table.add_column("path (what `infimmr prepare --in` takes)")
    for name, path in paths.items():
        table.add_row(name, str(path))
    Console().print(table)
    return paths
