"""Caption-stage throughput on the tiny model: batched against one-at-a-time, in the same run.

    OMP_NUM_THREADS=1 python bench/caption.py [--records 32] [--batch-size 8] [--max-new-tokens 16]

Both sides run the real stage (`commands.caption.run`: image loading, prompts, generation, resumable writes) with the
model loaded once beforehand, so the figure is items/s of the stage, not of model loading. The tiny model's numbers
measure overhead and batching, not a 7B captioner's speed.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

from PIL import Image
from rich.console import Console

from infimmr_cli.commands import caption
from infimmr_cli.modeling import build_tiny, load_model
from infimmr_cli.rollout.hf import HFEngine


def make_records(folder: Path, n: int) -> Path:
    (folder / "img").mkdir(parents=True)
    lines = []
    for k in range(n):
        Image.new("RGB", (56 + 14 * (k % 4), 84), (k * 7 % 255, 80, 200)).save(folder / "img" / f"{k}.png")
        lines.append(json.dumps({"id": f"r{k}", "source": "bench", "question": "What is shown?", "answer": "1",
                                 "answer_type": "math", "images": [f"img/{k}.png"], "image_type": "chart"}))
    path = folder / "records.jsonl"
    path.write_text("\n".join(lines) + "\n")
    return path


def timed_run(src: Path, out: Path, model, processor, batch_size: int, max_new_tokens: int) -> float:
    engine = HFEngine(model, processor, batch_size=batch_size)
    quiet = Console(quiet=True)
    start = time.perf_counter()
    caption.run(src, out, batch_size=batch_size, max_new_tokens=max_new_tokens, console=quiet,
                engine_factory=lambda: (engine, processor))
    return time.perf_counter() - start


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--records", type=int, default=32)
    ap.add_argument("--batch-size", type=int, default=8)
    ap.add_argument("--max-new-tokens", type=int, default=16)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        model, processor = load_model(build_tiny(tmp / "model"))
        src = make_records(tmp / "data", args.records)
        timed_run(src, tmp / "data" / "warm.jsonl", model, processor, args.batch_size, 2)  # warm-up, not counted
        one = timed_run(src, tmp / "data" / "one.jsonl", model, processor, 1, args.max_new_tokens)
        batched = timed_run(src, tmp / "data" / "batched.jsonl", model, processor, args.batch_size,
                            args.max_new_tokens)
    n = args.records
    print(f"records={n} max_new_tokens={args.max_new_tokens}")
    print(f"one-at-a-time : {one:7.2f} s  {n / one:7.2f} items/s")
    print(f"batch size {args.batch_size:<3}: {batched:7.2f} s  {n / batched:7.2f} items/s")
    print(f"speed-up      : {one / batched:.2f}x")


if __name__ == "__main__":
    main()
