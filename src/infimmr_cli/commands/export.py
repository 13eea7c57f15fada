"""`infimmr export`: a training checkpoint -> a plain Hugging Face model directory that transformers and vLLM load.

What it writes: safetensors weights (LoRA merged), config, generation config, every processor file, and `lineage.json`
(the export's provenance record, with the phases the weights went through, each its train-phase record, back to the
base model). The directory appears only after the written model has been reloaded and has generated a few tokens with an
image, so a broken export never sits where the next stage would pick it up.
"""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path
from typing import Any

from rich.console import Console

from infimmr_cli.data.records import read_json_file
from infimmr_cli.errors import UsageError, storage_errors
from infimmr_cli.files import follow_umask

STEP_PREFIX = "step-"


def resolve_checkpoint(ckpt: str | Path) -> Path:
    """A run directory -> its `final` (else newest complete `step-N`); a step or model directory -> itself.

    Refuses a half-written checkpoint (a `.tmp` directory, or weights without config, or config without weights).
    """
    ckpt = Path(ckpt)
    if not ckpt.is_dir():
        raise FileNotFoundError(f"{ckpt}: checkpoint directory not found")
    if ckpt.name.endswith(".tmp"):
        raise UsageError(f"{ckpt}: a half-written checkpoint (temp directory of an interrupted save); use a complete "
                         f"step-N or final directory")
    if not (ckpt / "config.json").exists() and not (ckpt / "adapter_config.json").exists():
        if (ckpt / "final").is_dir():
            return resolve_checkpoint(ckpt / "final")
        for parent in (ckpt, ckpt / "checkpoints"):
            steps = sorted(p for p in parent.glob(f"{STEP_PREFIX}*") if p.is_dir()) if parent.is_dir() else []
            if steps:
                return resolve_checkpoint(steps[-1])
        raise UsageError(f"{ckpt}: neither a model directory (config.json), a LoRA adapter (adapter_config.json), "
                         f"nor a run directory with final/ or step-N/")
    has_weights = any(ckpt.glob("*.safetensors"))
    if not has_weights:
        raise UsageError(f"{ckpt}: config without safetensors weights: a half-written or pickle-only checkpoint")
    return ckpt


def _origin(ckpt: Path) -> dict[str, Any] | None:
    """The provenance record of a checkpoint: an export's lineage.json, else its train-phase run's run_config.json."""
    from infimmr_cli.provenance import read_provenance

    for candidate in (ckpt / "lineage.json", ckpt / "run_config.json", ckpt.parent / "run_config.json",
                      ckpt.parent.parent / "run_config.json"):
        rec = read_provenance(candidate)
        if rec is not None:
            return rec
    return None


def lineage(ckpt: Path, depth: int = 0) -> dict[str, Any]:
    """Follow `init` back through the phases: {"base": model dir, "phases": [oldest first, each a train-phase
    provenance record with its "phase" and "checkpoint"]}."""
    ckpt = Path(ckpt)
    rec = _origin(ckpt)
    if rec is not None and rec["command"] == "export":
        return {"base": rec.get("base"), "phases": rec.get("phases", [])}
    if rec is None or rec["command"] != "train-phase" or depth > 16:
        return {"base": str(ckpt.resolve()), "phases": []}
    init = rec["settings"].get("init")
    before = lineage(Path(init), depth + 1) if init and Path(init).is_dir() else {"base": init, "phases": []}
    entry = {"phase": rec["settings"].get("phase"), "checkpoint": str(ckpt.resolve()), **rec}
    return {"base": before["base"], "phases": [*before["phases"], entry]}


def _load_for_export(ckpt: Path, dtype: str, trust_remote_code: bool):
    from infimmr_cli.modeling import load_model, load_processor

    if (ckpt / "adapter_config.json").exists() and not (ckpt / "config.json").exists():
        from peft import PeftModel

        from infimmr_cli.modeling import resolve_model

        adapter = read_json_file(ckpt / "adapter_config.json")
        base_dir = adapter.get("base_model_name_or_path")
        if not base_dir:
            raise UsageError(f"{ckpt}: LoRA adapter without base_model_name_or_path")
        # a local directory, or a hub id from the HF cache (fetched there when online) at the revision PEFT recorded
        # beside it (our own adapters name the local snapshot folder, whose path already pins the commit)
        revision = None if Path(base_dir).expanduser().exists() else adapter.get("revision")
        base_dir = resolve_model(base_dir, revision, flag=f"{ckpt / 'adapter_config.json'}: base_model_name_or_path",
                                 trust_remote_code=trust_remote_code)
        base, processor = load_model(base_dir, dtype=dtype, trust_remote_code=trust_remote_code)
        # merged as it is written, by the same path as training's checkpoints and the rollout push
        return PeftModel.from_pretrained(base, str(ckpt)), processor
    model, processor = load_model(ckpt, dtype=dtype, trust_remote_code=trust_remote_code)
    if processor is None:
        processor = load_processor(ckpt, trust_remote_code=trust_remote_code)
    return model, processor


def verify(model_dir: Path, max_new_tokens: int = 4) -> list[int]:
    """Reload the written directory and generate a few tokens with an image; returns the token ids."""
    from PIL import Image

    from infimmr_cli.data.images import pixel_limits
    from infimmr_cli.modeling import load_model
    from infimmr_cli.rollout import Request, SamplingSettings
    from infimmr_cli.rollout.hf import HFEngine

    model, processor = load_model(model_dir, dtype="fp32")
    lo, hi, factor = pixel_limits(processor)
    side = max(factor, int(lo ** 0.5) // factor * factor + factor)
    image = Image.new("RGB", (side, side), (120, 60, 200))
    messages = [{"role": "user", "content": [{"type": "image"}, {"type": "text", "text": "Describe the image."}]}]
    out = HFEngine(model, processor).generate([Request(messages, [image])],
                                              SamplingSettings(temperature=0, max_new_tokens=max_new_tokens))
    return out[0][0].token_ids


def run(ckpt: str | Path, out: str | Path, dtype: str = "bf16", trust_remote_code: bool = False,
        overwrite: bool = False, console: Console | None = None) -> Path:
    console = console or Console()
    out = Path(out)
    if out.exists() and not overwrite:
        raise UsageError(f"--out {out}: already exists; pass --overwrite to replace it")
    src = resolve_checkpoint(ckpt)
    from infimmr_cli.files import claim_outputs
    from infimmr_cli.modeling import check_model_files

    check_model_files(src)  # a damaged config.json or weights file: one line naming it
    # --overwrite removes --out: it must not be (or hold) the checkpoint read from
    with claim_outputs("export", {"--ckpt": [Path(ckpt), src]}, {}, folders={"--out": out}):
        return _export(src, out, dtype, trust_remote_code, console)


def _export(src: Path, out: Path, dtype: str, trust_remote_code: bool, console: Console) -> Path:
    from infimmr_cli.modeling import resolve_dtype
    from infimmr_cli.provenance import write_provenance
    from infimmr_cli.rollout.weights import save_hf_model

    torch_dtype = resolve_dtype(dtype)
    console.print(f"export: {src} -> {out} ({dtype})")
    model, processor = _load_for_export(src, dtype, trust_remote_code)
    model.to(torch_dtype)

    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.", suffix=".tmp", dir=out.parent))
    try:
        with storage_errors(out):  # a full disk: one line naming --out; nothing appears there
            save_hf_model(model, processor, tmp)  # LoRA merged, tied names left to the config as transformers saves
            chain = lineage(src)
            write_provenance(out, "export", {"dtype": dtype, "trust_remote_code": trust_remote_code},
                             {"checkpoint": src}, path=tmp / "lineage.json", **chain)
        follow_umask(tmp)  # mkdtemp makes 0700, transformers 0600: a colleague or a vLLM server could not read it
        tokens = verify(tmp)
        if out.exists():
            shutil.rmtree(out)
        tmp.rename(out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    phases = [p.get("phase", "?") for p in chain["phases"]]
    console.print(f"export: wrote {out} (phases: {' -> '.join(phases) or 'none'}; reload + generate with an image: "
                  f"{len(tokens)} tokens)")
    return out
