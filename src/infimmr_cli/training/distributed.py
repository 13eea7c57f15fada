"""Process-group facts and the few collectives the loop needs; every function is a no-op in a single process."""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

import torch


@dataclass(frozen=True)
class Dist:
    rank: int = 0
    world_size: int = 1
    local_rank: int = 0

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def enabled(self) -> bool:
        return self.world_size > 1

    @property
    def device(self) -> torch.device:
        if torch.cuda.is_available():
            return torch.device("cuda", self.local_rank)
        return torch.device("cpu")


def from_env() -> Dist:
    """Read torchrun's RANK / WORLD_SIZE / LOCAL_RANK (absent: one process)."""
    return Dist(rank=int(os.environ.get("RANK", 0)), world_size=int(os.environ.get("WORLD_SIZE", 1)),
                local_rank=int(os.environ.get("LOCAL_RANK", 0)))


def single_process_env(environ: dict[str, str], port: int) -> dict[str, str]:
    """The launcher variables a plain `python`/`infimmr` run lacks, for a process group of one (empty under torchrun).

    Without RANK, DeepSpeed's init looks for an MPI launcher and fails on `import mpi4py`; a one-process group on
    localhost is what `torchrun --nproc_per_node 1` would have set up.
    """
    if "RANK" in environ:
        return {}
    return {"RANK": "0", "LOCAL_RANK": "0", "WORLD_SIZE": "1", "MASTER_ADDR": environ.get("MASTER_ADDR", "127.0.0.1"),
            "MASTER_PORT": environ.get("MASTER_PORT", str(port))}


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def init(dist_info: Dist, use_deepspeed: bool) -> None:
    """Join the process group (NCCL on GPU, gloo on CPU); DeepSpeed's own init when it will run the updates."""
    if torch.cuda.is_available():
        torch.cuda.set_device(dist_info.local_rank)
    if use_deepspeed:
        import deepspeed

        if "RANK" not in os.environ:
            os.environ.update(single_process_env(dict(os.environ), _free_port()))
        deepspeed.init_distributed(dist_backend="nccl" if torch.cuda.is_available() else "gloo",
                                   auto_mpi_discovery=False)
    elif dist_info.enabled and not torch.distributed.is_initialized():
        torch.distributed.init_process_group("nccl" if torch.cuda.is_available() else "gloo")


def barrier() -> None:
    if torch.distributed.is_available() and torch.distributed.is_initialized():
        torch.distributed.barrier()


def gather_object(obj: Any) -> list[Any]:
    """Every rank's `obj`, in rank order (the same list on every rank): one collective."""
    if not (torch.distributed.is_available() and torch.distributed.is_initialized()):
        return [obj]
    out: list[Any] = [None] * torch.distributed.get_world_size()
    torch.distributed.all_gather_object(out, obj)
    return out
