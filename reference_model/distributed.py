"""Process-group setup for ``python -m`` and ``torchrun`` launches (nanochat style).

Under torchrun (RANK/LOCAL_RANK/WORLD_SIZE set) a process group is created: NCCL when
CUDA is available, gloo otherwise. A plain launch is a single process with no group.
"""

from __future__ import annotations

import os

import torch
import torch.distributed as dist


def is_ddp_launch() -> bool:
    return all(k in os.environ for k in ("RANK", "LOCAL_RANK", "WORLD_SIZE"))


def autodetect_device() -> torch.device:
    return torch.device("cuda") if torch.cuda.is_available() else torch.device("cpu")


def compute_init(device: str | None = None) -> tuple[bool, int, int, int, torch.device]:
    """(ddp, rank, local_rank, world_size, device); initializes the process group if launched by torchrun.

    ``device`` ("cuda"/"cpu") overrides autodetection, e.g. to test gloo on a GPU machine.
    """
    dev = torch.device(device) if device else autodetect_device()
    if not is_ddp_launch():
        return False, 0, 0, 1, dev
    rank, local_rank, world_size = int(os.environ["RANK"]), int(os.environ["LOCAL_RANK"]), int(os.environ["WORLD_SIZE"])
    if dev.type == "cuda":
        dev = torch.device("cuda", local_rank)
        torch.cuda.set_device(dev)
        backend = "nccl"
    else:
        backend = "gloo"
    if not dist.is_initialized():
        dist.init_process_group(backend=backend, device_id=dev if backend == "nccl" else None)
    dist.barrier()
    return True, rank, local_rank, world_size, dev


def get_rank() -> int:
    return dist.get_rank() if dist.is_available() and dist.is_initialized() else 0


def print0(*args, **kwargs) -> None:
    """print() on rank 0 only."""
    if get_rank() == 0:
        print(*args, **kwargs)


def compute_cleanup() -> None:
    if dist.is_available() and dist.is_initialized():
        dist.barrier()  # every rank finishes before teardown; a rank leaving early can abort its peers under gloo
        dist.destroy_process_group()
