"""Distributed setup for ``torchrun`` (nccl on GPUs, gloo on CPUs) and the batch sampler that shards data.

The sampler deals one global batch per step (``batch_size x accumulation x world_size`` items of a seeded
permutation) into micro-batches: micro-batch ``j`` of rank ``r`` is chunk ``r * accumulation + j``. One process
with ``accumulation = k`` therefore sees exactly what ``k`` processes see, and a resumed run starts at the step
it stopped at.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import numpy as np
import torch
import torch.distributed as dist


@dataclass(frozen=True)
class Distributed:
    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    device: torch.device = torch.device("cpu")

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def enabled(self) -> bool:
        return self.world_size > 1

    def mean(self, values: dict[str, float]) -> dict[str, float]:
        """Average scalars over ranks (a no-op in one process)."""
        if not self.enabled or not values:
            return values
        keys = sorted(values)
        tensor = torch.tensor([values[k] for k in keys], dtype=torch.float64, device=self.device)
        dist.all_reduce(tensor)
        return dict(zip(keys, (tensor / self.world_size).tolist()))

    def sum(self, tensor: torch.Tensor) -> torch.Tensor:
        if self.enabled:
            tensor = tensor.to(self.device)
            dist.all_reduce(tensor)
        return tensor

    def barrier(self) -> None:
        if self.enabled:
            dist.barrier()


def setup_distributed(device: str | None = None) -> Distributed:
    """Read torchrun's environment; one process when it is absent."""
    world_size = int(os.environ.get("WORLD_SIZE", "1"))
    rank = int(os.environ.get("RANK", "0"))
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    if device is None:
        device = f"cuda:{local_rank}" if torch.cuda.is_available() else "cpu"
    chosen = torch.device(device)
    if chosen.type == "cuda":
        torch.cuda.set_device(chosen)
    if world_size > 1 and not dist.is_initialized():
        dist.init_process_group("nccl" if chosen.type == "cuda" else "gloo")
    return Distributed(rank, world_size, local_rank, chosen)


def teardown_distributed() -> None:
    if dist.is_initialized():
        dist.destroy_process_group()


class GlobalBatchSampler(torch.utils.data.Sampler):
    """Yields this rank's micro-batches (lists of indices) for one epoch, from ``start_step`` on."""

    def __init__(self, size: int, batch_size: int, accumulation: int, world_size: int, rank: int, seed: int):
        self.size, self.batch_size, self.accumulation = size, batch_size, accumulation
        self.world_size, self.rank, self.seed = world_size, rank, seed
        self.epoch, self.start_step = 0, 0
        if self.steps_per_epoch == 0:
            raise ValueError(f"{size} items are fewer than one global batch of {self.global_batch}")

    @property
    def global_batch(self) -> int:
        return self.batch_size * self.accumulation * self.world_size

    @property
    def steps_per_epoch(self) -> int:
        return self.size // self.global_batch

    def set_epoch(self, epoch: int, start_step: int = 0) -> None:
        self.epoch, self.start_step = epoch, start_step

    def __len__(self) -> int:
        return (self.steps_per_epoch - self.start_step) * self.accumulation

    def __iter__(self):
        order = np.random.default_rng([self.seed, self.epoch]).permutation(self.size)
        for step in range(self.start_step, self.steps_per_epoch):
            batch = order[step * self.global_batch:(step + 1) * self.global_batch]
            for micro in range(self.accumulation):
                chunk = self.rank * self.accumulation + micro
                yield batch[chunk * self.batch_size:(chunk + 1) * self.batch_size].tolist()
