"""`infimmr tiny-model`: a tiny Qwen2.5-VL built offline; with `--warm-up`, taught the demo's toy task for a minute.

Random weights earn no reward, so GRPO has nothing to climb from: the demo warms its model up with supervised steps
on `data.demo_tasks` (answer format, captions, a half-learnt sum skill) in two stages, short prompts first and the
full prompts after (why: `demo_tasks.warmup_examples`). Tests build the random model without warm-up.
"""

from __future__ import annotations

import json
from pathlib import Path

from rich.console import Console

# The two warm-up stages, tuned on 2 CPU cores (about a minute in all): short prompts with right answers teach the
# format, the captions and the sums; the full prompts then come with answers right only P_RIGHT of the time and
# otherwise one too high, so the model starts RL knowing the sums but often slipping (demo_tasks.reply).
SHORT_STEPS, SHORT_BATCH = 500, 32
FULL_STEPS, FULL_BATCH = 100, 16
P_RIGHT = 0.4
WARMUP_LR = 2e-3


def run(out: str | Path, seed: int = 0, warm_up: bool = False) -> Path:
    from infimmr_cli.modeling import TinySizes, build_tiny
    from infimmr_cli.provenance import write_provenance

    console = Console()
    # The warm-up trains from transformers' own init; the x8 init (for parity tests of the random model) trains badly.
    sizes = TinySizes(init_scale=1.0) if warm_up else TinySizes()
    path = build_tiny(out, seed=seed, sizes=sizes)
    settings: dict = {"seed": seed, "warm_up": warm_up}
    results: dict = {}
    if warm_up:
        settings.update(short_steps=SHORT_STEPS, full_steps=FULL_STEPS, lr=WARMUP_LR, p_right=P_RIGHT)
        results = _warm_up(path, seed, console)
    write_provenance(path, "tiny-model", settings, {}, results=results)
    n = sum(1 for _ in Path(path).iterdir())
    what = "warmed-up" if warm_up else "random"
    console.print(f"tiny Qwen2.5-VL ({what}) written to [bold]{path}[/] ({n} files)")
    return path


def _warm_up(path: Path, seed: int, console: Console) -> dict:
    from infimmr_cli.data.demo_tasks import warmup_examples
    from infimmr_cli.modeling import load_model
    from infimmr_cli.progress import StageProgress
    from infimmr_cli.training.warmup import warm_up

    model, processor = load_model(path, dtype="fp32")
    losses = {}
    stages = (("short prompts", SHORT_STEPS, SHORT_BATCH, True, 1.0),
              ("full prompts", FULL_STEPS, FULL_BATCH, False, P_RIGHT))
    for stage, steps, batch, short, p_right in stages:
        examples = warmup_examples(800, seed=seed + len(losses), short=short, p_right=p_right)
        with StageProgress(console, f"warm-up, {stage}", steps, unit="steps") as bar:
            # every 25 steps: a log file gets a dozen lines, not hundreds
            losses[stage] = warm_up(model, processor, examples, steps=steps, batch_size=batch, lr=WARMUP_LR, seed=seed,
                                    on_step=lambda step, loss: (step + 1) % 25 == 0
                                    and bar.advance(25, f"loss {loss:.3f}"))
        last = losses[stage][-10:]
        console.print(f"warm-up, {stage}: loss {losses[stage][0]:.3f} -> {sum(last) / len(last):.3f} "
                      f"(mean of the last 10 of {steps} steps)", highlight=False)
    model.save_pretrained(path, safe_serialization=True)
    info = json.loads((path / "infimmr_tiny.json").read_text())
    info["warm_up"] = {stage: {"steps": len(v), "first_loss": v[0], "last_loss": v[-1]} for stage, v in losses.items()}
    (path / "infimmr_tiny.json").write_text(json.dumps(info, indent=2) + "\n")
    return info["warm_up"]
