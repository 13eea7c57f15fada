from __future__ import annotations

from pathlib import Path

from rich.console import Console


def run(out: str | Path, seed: int = 0) -> Path:
    from infimmr_cli.modeling import build_tiny

    path = build_tiny(out, seed=seed)
    from infimmr_cli.provenance import write_provenance

    write_provenance(path, "tiny-model", {"seed": seed}, {})
    n = sum(1 for _ in Path(path).iterdir())
    Console().print(f"tiny Qwen2.5-VL written to [bold]{path}[/] ({n} files)")
    return path
