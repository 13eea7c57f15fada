"""Validation during training: greedy answers on held-out records with the rollout engine, scored by the same reward.

Before the first step, every `val_every` steps and after the last, the run generates one greedy completion per
validation record with the engine it already holds (HF or vLLM: no second model is loaded), scores it with the
training reward, logs `val_accuracy` (share of fully right answers, as eval counts them), `val_format`, `val_reward`
and `val_n` in that step's metrics row (step 0 gets a row of its own), and writes the completions to
`RUN/val/step-N.jsonl`. The prompt is eval's (`build_messages`: images kept, no caption) whatever the phase, so the
curve tracks what `infimmr eval` would report.

Ranks split the records (every world_size-th one) and pad their share to the same length, so that under ZeRO-3 every
rank runs the same number of generate calls.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from infimmr_cli.data.records import Record


@dataclass
class Validator:
    records: list[Record]
    every: int                    # steps between validations; 0 = only before the first and after the last step
    max_new_tokens: int
    out_dir: Path                 # RUN/val
    max_prompt_len: int = 1 << 30  # longer prompts cost their item, as in eval

    def due(self, step: int, total: int) -> bool:
        """Step 0 is before training; `total` is the run's last step."""
        return step == 0 or step == total or (self.every > 0 and step % self.every == 0)

    def run(self, engine, processor, step: int, dist, reward: str, workers: int | None, timeout: float
            ) -> dict[str, Any]:
        from infimmr_cli.data.images import ImageError
        from infimmr_cli.evaluation.tally import has_format, is_correct
        from infimmr_cli.rewards.scoring import score_batch
        from infimmr_cli.rollout.base import SamplingSettings
        from infimmr_cli.rollout.requests import build_request, text_only_request
        from infimmr_cli.training import distributed

        mine = self.records[dist.rank::dist.world_size]
        share = -(-len(self.records) // dist.world_size)  # ceil: every rank generates the same number of prompts
        padded = mine + [self.records[0]] * (share - len(mine))
        sampling = SamplingSettings(n=1, temperature=0.0, max_new_tokens=self.max_new_tokens)
        requests, errors = [], {}
        for i, r in enumerate(padded):
            try:
                requests.append(build_request(r, processor, self.max_prompt_len))
            except ImageError as exc:  # a bad image or an over-long prompt costs that item (scored 0), never the run
                errors[i] = str(exc)
                requests.append(text_only_request(r))
        engine.wake_up()
        outs = engine.generate(requests, sampling)
        engine.sleep()
        texts = [("" if i in errors else o[0].text) for i, o in enumerate(outs)][:len(mine)]
        scores = score_batch(texts, mine, reward=reward, workers=workers, timeout=timeout)
        lines = [{"step": step, "id": r.id, "completion": t, "gold": r.answer, "extracted": s.get("extracted"),
                  "format": s.get("format"), "accuracy": s.get("accuracy"), "overall": s.get("overall"),
                  "correct": is_correct(s), **({"error": errors[i]} if i in errors else {})}
                 for i, (r, t, s) in enumerate(zip(mine, texts, scores))]
        lines = [line for rank in distributed.gather_object(lines) for line in rank]  # rank order
        if dist.is_main:
            from infimmr_cli.files import atomic_write_text

            atomic_write_text(self.out_dir / f"step-{step:06d}.jsonl",
                              "".join(json.dumps(x, ensure_ascii=False) + "\n" for x in lines))
        n = len(lines)
        return {"val_accuracy": sum(x["correct"] for x in lines) / n,
                "val_format": sum(has_format(x) for x in lines) / n,
                "val_reward": sum(float(x["overall"] or 0.0) for x in lines) / n, "val_n": n}


def load_validator(path: str, limit: int, every: int, max_new_tokens: int, out_dir: Path,
                   max_prompt_len: int = 1 << 30) -> Validator | None:
    """The validation set of `--val-data` (first `limit` records when limit > 0), or None when none is given."""
    if not path:
        return None
    from infimmr_cli.data.records import read_records
    from infimmr_cli.errors import UsageError

    if not Path(path).is_file():
        raise FileNotFoundError(f"{path}: validation data not found")
    records = read_records(path)
    if limit > 0:
        records = records[:limit]
    if not records:
        raise UsageError(f"{path}: val_data: no records")
    return Validator(records=records, every=every, max_new_tokens=max_new_tokens, out_dir=out_dir,
                     max_prompt_len=max_prompt_len)
