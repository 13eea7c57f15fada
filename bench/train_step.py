"""GRPO step time: infimmr train-phase against TRL's GRPOTrainer, same model, same settings, same process.

Usage: python bench/train_step.py [--steps 4] [--prompts 4] [--group 4] [--tokens 32] [--hidden 256] [--layers 4]

A random Qwen2.5-VL sized so compute, not overhead, dominates (the 0.2M-parameter test model only measures overhead),
text prompts, beta 1e-3, loss_type grpo, one optimizer step per rollout batch on both sides. Prints the mean step time
of each (first step excluded: warm-up) and the ratio ours / TRL's. Needs trl (the `bench` extra).
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "src"))
sys.path.insert(0, str(REPO / "tests"))


def reward_share(completion, record):
    value = completion.count("1") / max(1, len(completion))
    return {"overall": value, "format": 0.0, "accuracy": value}


def ours(model_dir: Path, data: Path, out: Path, a) -> tuple[float, float]:
    from infimmr_cli.commands.train_phase import run

    reward_file = out.parent / "bench_reward.py"
    reward_file.write_text("def share(completion, record):\n    v = completion.count('1') / max(1, len(completion))\n"
                           "    return {'overall': v, 'format': 0.0, 'accuracy': v}\n")
    run(sets=[f"prompts_per_step={a.prompts}", f"group_size={a.group}", f"update_batch={a.prompts}",
              f"micro_batch={a.prompts * a.group}", f"max_response_len={a.tokens}", "beta=1e-3", "lr=1e-6",
              "save_every=1000", "deepspeed=", "loss_type=grpo"],
        phase="fra", data=data, init=model_dir, out=out, steps=a.steps, reward=f"{reward_file}:share")
    rows = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()][1:]
    print(f"infimmr rollout share of the step: {sum(r['rollout_time'] for r in rows) / sum(r['step_time'] for r in rows):.2f}")
    return sum(r["step_time"] for r in rows) / len(rows), sum(r["response_len_mean"] for r in rows) / len(rows)


def trl(model_dir: Path, data: Path, out: Path, a) -> tuple[float, float]:
    from datasets import Dataset
    from transformers import TrainerCallback
    from trl import GRPOConfig, GRPOTrainer

    from infimmr_cli.modeling import load_model
    from infimmr_cli.data.prompt import build_messages
    from infimmr_cli.data.records import read_records

    recs = [r for r in read_records(data) if not r.images]
    ds = Dataset.from_list([{"prompt": build_messages(r, with_images=False)} for r in recs])

    def reward(completions, **kw):
        texts = [c[-1]["content"] if isinstance(c, list) else c for c in completions]
        return [t.count("1") / max(1, len(t)) for t in texts]

    times, lengths = [], []

    class Timer(TrainerCallback):
        def on_step_begin(self, args, state, control, **kw):
            self.t0 = time.perf_counter()

        def on_step_end(self, args, state, control, **kw):
            times.append(time.perf_counter() - self.t0)

        def on_log(self, args, state, control, logs=None, **kw):
            if logs and "completions/mean_length" in logs:
                lengths.append(logs["completions/mean_length"])

    model, processor = load_model(model_dir)
    cfg = GRPOConfig(output_dir=str(out), per_device_train_batch_size=a.prompts * a.group, num_generations=a.group,
                     gradient_accumulation_steps=1, max_completion_length=a.tokens, beta=1e-3, loss_type="grpo",
                     learning_rate=1e-6, max_steps=a.steps, logging_steps=1, report_to=[], use_cpu=True,
                     save_strategy="no", temperature=1.0, epsilon=0.2, num_iterations=1, scale_rewards="group",
                     bf16=False, seed=0)
    trainer = GRPOTrainer(model=model, reward_funcs=reward, args=cfg, train_dataset=ds, processing_class=processor,
                          callbacks=[Timer()])
    trainer.train()
    steps = times[1:] or times
    return sum(steps) / len(steps), (sum(lengths) / len(lengths) if lengths else float("nan"))


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--steps", type=int, default=4)
    p.add_argument("--prompts", type=int, default=4)
    p.add_argument("--group", type=int, default=4)
    p.add_argument("--tokens", type=int, default=32)
    p.add_argument("--hidden", type=int, default=256)
    p.add_argument("--layers", type=int, default=4)
    p.add_argument("--ours-only", action="store_true")
    a = p.parse_args()
    from conftest import write_train_data
    from infimmr_cli.modeling import TinySizes, build_tiny

    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        sizes = TinySizes(hidden=a.hidden, layers=a.layers, heads=4, kv_heads=2, intermediate=a.hidden * 3,
                          vision_hidden=64)
        model_dir = build_tiny(tmp / "model", sizes=sizes)
        data = write_train_data(tmp / "data", n_text=max(8, a.prompts * 2), n_image=0)
        from infimmr_cli.modeling import load_model

        n_params = sum(p.numel() for p in load_model(model_dir)[0].parameters())
        t_ours, len_ours = ours(model_dir, data, tmp / "ours", a)
        t_trl, len_trl = trl(model_dir, data, tmp / "trl", a) if not a.ours_only else (float("nan"), float("nan"))
    print(f"model {n_params / 1e6:.1f}M params; {a.prompts} prompts x {a.group} generations x <= {a.tokens} tokens; "
          f"{a.steps} steps (first excluded)")
    print(f"infimmr: {t_ours:.3f} s/step (mean completion {len_ours:.1f} tokens)")
    print(f"TRL:     {t_trl:.3f} s/step (mean completion {len_trl:.1f} tokens)")
    print(f"ratio infimmr / TRL: {t_ours / t_trl:.2f}")


if __name__ == "__main__":
    main()
