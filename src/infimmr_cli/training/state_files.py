"""Training state on disk in formats that carry no code: tensors in safetensors, everything else in JSON.

`torch.save` writes a pickle, and unpickling runs whatever the file says: a run directory from someone else (or one a
colleague can write to) must never be able to do that on `--resume`. `save_state(obj, folder, name)` splits a nested
state (dicts with any scalar keys, lists, tuples, tensors, numpy arrays, numbers, strings) into `name.json` and
`name.safetensors`; `load_state` rebuilds it and refuses anything it does not recognise.
"""

from __future__ import annotations

import json
import pickle
from pathlib import Path
from typing import Any

import numpy as np
import torch

from infimmr_cli.errors import UsageError

_T, _A, _TUP, _D = "__tensor__", "__ndarray__", "__tuple__", "__dict__"


def _encode(obj: Any, tensors: dict[str, torch.Tensor], where: str) -> Any:
    if isinstance(obj, torch.Tensor):
        key = f"t{len(tensors)}"
        tensors[key] = obj.detach().cpu().contiguous().clone()  # safetensors refuses shared or strided storage
        return {_T: key}
    if isinstance(obj, np.ndarray):
        return {_A: obj.dtype.str, "shape": list(obj.shape), "data": obj.ravel().tolist()}
    if isinstance(obj, dict):
        if all(isinstance(k, str) and not k.startswith("__") for k in obj):
            return {k: _encode(v, tensors, f"{where}.{k}") for k, v in obj.items()}
        return {_D: [[_encode(k, tensors, where), _encode(v, tensors, f"{where}[{k!r}]")] for k, v in obj.items()]}
    if isinstance(obj, tuple):
        return {_TUP: [_encode(v, tensors, where) for v in obj]}
    if isinstance(obj, list):
        return [_encode(v, tensors, where) for v in obj]
    if obj is None or isinstance(obj, (bool, int, float, str)):
        return obj
    if isinstance(obj, (np.integer, np.floating)):
        return obj.item()
    raise TypeError(f"{where}: {type(obj).__name__} cannot be stored as JSON or a tensor")


def _decode(obj: Any, tensors: dict[str, torch.Tensor], where: str) -> Any:
    if isinstance(obj, list):
        return [_decode(v, tensors, where) for v in obj]
    if not isinstance(obj, dict):
        return obj
    if _T in obj:
        if obj[_T] not in tensors:
            raise UsageError(f"{where}: tensor {obj[_T]!r} is not in the .safetensors file")
        return tensors[obj[_T]]
    if _A in obj:
        return np.asarray(obj["data"], dtype=np.dtype(obj[_A])).reshape(obj["shape"])
    if _TUP in obj:
        return tuple(_decode(v, tensors, where) for v in obj[_TUP])
    if _D in obj:
        return {_decode(k, tensors, where): _decode(v, tensors, where) for k, v in obj[_D]}
    return {k: _decode(v, tensors, where) for k, v in obj.items()}


def save_state(obj: Any, folder: Path, name: str) -> None:
    """Write `folder/name.json` (and `folder/name.safetensors` when `obj` holds tensors)."""
    from safetensors.torch import save_file

    tensors: dict[str, torch.Tensor] = {}
    data = _encode(obj, tensors, name)
    if tensors:
        save_file(tensors, str(folder / f"{name}.safetensors"))
    (folder / f"{name}.json").write_text(json.dumps({"format": "infimmr-state-1", "state": data}) + "\n")


def load_state(folder: Path, name: str) -> Any:
    """Read what `save_state` wrote; a file in any other form (a pickle above all) is refused with one line."""
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    js, st = folder / f"{name}.json", folder / f"{name}.safetensors"
    if not js.is_file():
        legacy = folder / f"{name}.pt"
        if legacy.is_file():
            return load_legacy_pt(legacy)
        raise FileNotFoundError(f"{js}: not found")
    try:
        doc = json.loads(js.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise UsageError(f"{js}: not a state file written by infimmr ({type(exc).__name__}); refusing to resume "
                         f"from it") from None
    if not isinstance(doc, dict) or doc.get("format") != "infimmr-state-1":
        raise UsageError(f"{js}: format: not a state file written by infimmr; refusing to resume from it")
    try:
        tensors = load_file(str(st)) if st.is_file() else {}
    except (SafetensorError, OSError, ValueError) as exc:
        raise UsageError(f"{st}: not a readable safetensors file ({exc})") from None
    try:
        return _decode(doc["state"], tensors, str(js))
    except (KeyError, TypeError, ValueError) as exc:
        raise UsageError(f"{js}: state: malformed ({type(exc).__name__}: {exc})") from None


def load_legacy_pt(path: Path) -> Any:
    """A `.pt` file of an older checkpoint: loaded with `weights_only=True` (tensors and plain containers, no code);
    anything that needs more than that is refused, never unpickled."""
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except (pickle.UnpicklingError, RuntimeError, EOFError, AttributeError, ValueError) as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise UsageError(f"{path}: refused: it does not load as plain tensors (weights_only=True: {first[:160]}); "
                         f"a checkpoint file must not run code on load") from None


def _deepspeed_globals() -> list:
    """The only non-tensor types DeepSpeed's own ZeRO-2/3 shards hold (checked on every recipe in recipes/ with
    `torch.serialization.get_unsafe_globals_in_checkpoint`): plain data classes whose construction runs no code of the
    file's choosing. Allowing them lets `weights_only=True` read DeepSpeed checkpoints."""
    from deepspeed.runtime.fp16.loss_scaler import DynamicLossScaler, LossScaler
    from deepspeed.runtime.zero.config import ZeroStageEnum
    from deepspeed.utils.tensor_fragment import fragment_address

    return [LossScaler, DynamicLossScaler, ZeroStageEnum, fragment_address]


class SafeDeepSpeedLoader:
    """Stands in for a DeepSpeed engine's `checkpoint_engine` while it loads: every shard is read with
    `weights_only=True` (plus `_deepspeed_globals`), never unpickled; everything else goes to the real one."""

    def __init__(self, inner):
        self._inner = inner

    def __getattr__(self, name: str):
        return getattr(self._inner, name)

    def load(self, path: str, map_location=None):
        with torch.serialization.safe_globals(_deepspeed_globals()):
            try:
                return torch.load(path, map_location=map_location, weights_only=True)
            except (pickle.UnpicklingError, RuntimeError, EOFError, AttributeError, ValueError) as exc:
                lines = [ln for ln in str(exc).splitlines() if "GLOBAL" in ln or "Unsupported" in ln]
                why = (lines[0].strip() if lines else str(exc).strip().splitlines()[0] if str(exc).strip()
                       else type(exc).__name__)
                raise UsageError(f"{path}: refused: a DeepSpeed shard that does not load as plain tensors and "
                                 f"DeepSpeed's own data types ({why[:200]})") from None
