"""Data-parallel training across processes started by ``torchrun``: the ranks, the process group, each
rank's share of every global batch, and the buffers and numbers the ranks have to agree on.

DistributedDataParallel (Li et al. 2020, "PyTorch Distributed: Experiences on Accelerating Data
Parallel Training", arXiv:2006.15704) averages the gradients over the ranks during the backward pass.
Every rank draws the same seeded order of the epoch and takes the contiguous slice
``[rank·b, (rank+1)·b)`` of each global batch of B images (b = B / W on W ranks), so the ranks
together see exactly the global batch of a one-process run and the averaged gradient is the
one-process gradient up to the order of float additions (for a model without batch statistics and a
recipe without per-step randomness).

Batch norm stays per rank: each rank normalises by the statistics of its own b images (as plain DDP
does), and the running statistics are averaged over the ranks after every step (``average_buffers``),
which makes the running mean the one-process running mean up to rounding (the running variance is the
mean of the ranks' variances, without the spread between their means); DDP's own per-forward buffer
broadcast is off, because recipes whose inner attack stops early make a different number of forward
calls on each rank, and a per-forward collective would then deadlock.
"""

from __future__ import annotations

import contextlib
import datetime
import inspect
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from shiftlab.core.errors import UserError
from shiftlab.data import ImageDataset

TIMEOUT = datetime.timedelta(minutes=60)
"""How long a rank waits for the others at a collective (rank 0 evaluates alone at each epoch end)."""


@dataclass(frozen=True)
class Distributed:
    """Where this process sits among the processes of one training run.

    Args:
        rank: 0-based global rank; rank 0 alone evaluates and writes checkpoints.
        world_size: number of processes (1: an ordinary single-process run).
        local_rank: rank on this machine (picks the CUDA device).
        local_world_size: processes on this machine.
    """

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    local_world_size: int = 1

    def __post_init__(self) -> None:
        if self.world_size < 1 or not 0 <= self.rank < self.world_size:
            raise UserError(f"distributed run: rank {self.rank} of world size {self.world_size} is not a valid rank")
        if self.local_world_size < 1 or not 0 <= self.local_rank < self.local_world_size:
            raise UserError(f"distributed run: local rank {self.local_rank} of {self.local_world_size} is not valid")

    @classmethod
    def from_environment(cls, environ: Mapping[str, str]) -> Distributed:
        """The rank torchrun gives this process (``RANK``, ``WORLD_SIZE``, ``LOCAL_RANK``,
        ``LOCAL_WORLD_SIZE``); a single process when they are absent."""
        if "WORLD_SIZE" not in environ or "RANK" not in environ:
            return cls()
        try:
            rank, world = int(environ["RANK"]), int(environ["WORLD_SIZE"])
            local_rank = int(environ.get("LOCAL_RANK", rank))
            local_world = int(environ.get("LOCAL_WORLD_SIZE", world))
        except ValueError:
            raise UserError("RANK, WORLD_SIZE, LOCAL_RANK and LOCAL_WORLD_SIZE must be integers; "
                            "start distributed runs with torchrun") from None
        return cls(rank, world, local_rank, local_world)

    @property
    def active(self) -> bool:
        """More than one process."""
        return self.world_size > 1

    @property
    def is_main(self) -> bool:
        """Rank 0: evaluates, logs and writes checkpoints."""
        return self.rank == 0

    @property
    def key(self) -> tuple[object, ...]:
        """What this rank adds to its per-step random keys: nothing in a single process (so such a run
        keeps its seeds), ``("rank", r)`` otherwise."""
        return ("rank", self.rank) if self.active else ()


SINGLE = Distributed()


def local_batch_size(batch_size: int, world_size: int) -> int:
    """Images per rank of a global batch of ``batch_size``; a UserError unless it divides evenly."""
    if batch_size % world_size:
        raise UserError(f"--batch-size {batch_size} is not divisible by the {world_size} training processes; "
                        f"use a multiple of {world_size} (the global batch is split evenly across them)")
    return batch_size // world_size


def rank_batches(data: ImageDataset, batch_size: int, generator: torch.Generator, device: torch.device | str,
                 dist: Distributed = SINGLE) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
    """This rank's slice of every full global batch of a seeded shuffle of ``data`` (the last, partial
    batch is dropped). With one process: exactly ``iterate_batches(shuffle=True, drop_last=True)``."""
    local = local_batch_size(batch_size, dist.world_size)
    order = torch.randperm(len(data), generator=generator)
    first = dist.rank * local
    for start in range(0, len(order) - len(order) % batch_size, batch_size):
        x, y = data.get_batch(order[start + first : start + first + local])
        yield x.to(device, non_blocking=True), y.to(device, non_blocking=True)


@contextlib.contextmanager
def process_group(dist: Distributed, device: torch.device) -> Iterator[None]:
    """The collective backend for a multi-process run: NCCL on CUDA, gloo on the CPU (a no-op for one
    process, or when the caller has already set a process group up). Rendezvous through torchrun's
    ``MASTER_ADDR`` / ``MASTER_PORT``."""
    import torch.distributed as td

    if not dist.active:
        yield
        return
    if td.is_initialized():
        if td.get_world_size() != dist.world_size or td.get_rank() != dist.rank:
            raise UserError(f"the process group has rank {td.get_rank()} of {td.get_world_size()}, "
                            f"the run expects rank {dist.rank} of {dist.world_size}")
        yield
        return
    if device.type == "cuda":
        torch.cuda.set_device(device)
    elif device.type != "cpu":
        raise UserError(f"distributed training runs on CPU (gloo) or CUDA (NCCL), not on {device.type}")
    try:
        td.init_process_group("nccl" if device.type == "cuda" else "gloo", rank=dist.rank,
                              world_size=dist.world_size, timeout=TIMEOUT)
    except ValueError as exc:  # no MASTER_ADDR / MASTER_PORT: not started by torchrun
        raise UserError(f"cannot join the other training processes ({exc}); start them with torchrun") from None
    try:
        yield
    finally:
        td.destroy_process_group()


def data_parallel(model: nn.Module, dist: Distributed, device: torch.device) -> nn.Module:
    """``model`` wrapped in DistributedDataParallel for a multi-process run (itself otherwise).

    Buffers are not broadcast on every forward (see the module docstring; ``average_buffers`` keeps
    them in agreement) and every parameter must get a gradient at every step (no unused-parameter
    search: each shiftlab recipe uses the whole model in its loss).
    """
    if not dist.active:
        return model
    from torch.nn.parallel import DistributedDataParallel

    ids = [device.index if device.index is not None else torch.cuda.current_device()] if device.type == "cuda" else None
    # torch >= 2.13 names the per-forward buffer sync ``forward_sync_buffers``; older versions ``broadcast_buffers``
    # (which also skips the sync at construction: the ranks' buffers are equal then anyway, same seed, same state)
    sync = ("forward_sync_buffers" if "forward_sync_buffers" in inspect.signature(DistributedDataParallel).parameters
            else "broadcast_buffers")
    options: dict[str, Any] = {sync: False}
    return DistributedDataParallel(model, device_ids=ids, **options)


def unwrap(model: nn.Module) -> nn.Module:
    """The model inside a DistributedDataParallel wrapper (``model`` itself when not wrapped)."""
    from torch.nn.parallel import DistributedDataParallel

    return model.module if isinstance(model, DistributedDataParallel) else model


def average_buffers(model: nn.Module, dist: Distributed) -> None:
    """Replace every floating-point buffer (batch-norm running statistics) by its mean over the ranks."""
    if not dist.active:
        return
    import torch.distributed as td

    buffers = [b for b in model.buffers() if b.is_floating_point()]
    if not buffers:
        return
    flat = torch.cat([b.detach().reshape(-1).to(torch.float64) for b in buffers])
    td.all_reduce(flat)
    flat /= dist.world_size
    offset = 0
    for b in buffers:
        b.copy_(flat[offset : offset + b.numel()].view(b.shape))
        offset += b.numel()


def sum_over_ranks(values: Sequence[float], dist: Distributed, device: torch.device | str) -> list[float]:
    """The sum of each value over the ranks (float64; the values themselves for one process)."""
    if not dist.active:
        return list(values)
    import torch.distributed as td

    t = torch.tensor(list(values), dtype=torch.float64, device=device)
    td.all_reduce(t)
    return [float(v) for v in t.cpu()]


def barrier(dist: Distributed) -> None:
    """Wait until every rank is here (nothing for one process)."""
    if dist.active:
        import torch.distributed as td

        td.barrier()
