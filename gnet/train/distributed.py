"""Data-parallel training across processes with torch.distributed: set-up, the few collectives, the launcher.

Training runs as N processes started by ``torchrun`` (or by ``gnet train --nproc-per-node N``,
which calls the same launcher). Each process reads its rank from torchrun's environment
(``RANK``, ``WORLD_SIZE``, ``LOCAL_RANK``), joins the process group (gloo on the CPU, NCCL on
CUDA) and wraps the net in :class:`torch.nn.parallel.DistributedDataParallel`, which
averages the gradients. Only rank 0 logs, writes the gradient log and writes checkpoints.

With one process (no torchrun) everything here is a no-op, so :mod:`gnet.train.loop` has one code path.
"""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.distributed as dist
from torch import Tensor, nn

from ..errors import DeviceError, GNetError

__all__ = ["SINGLE", "Dist", "device_for", "from_env", "launch", "process_group"]

_GNET_PARENT = Path(__file__).resolve().parents[2]  # so the launched processes import this gnet


@dataclass(frozen=True)
class Dist:
    """This process's place in the run: its rank, the number of processes, its rank on this machine."""

    rank: int = 0
    world: int = 1
    local_rank: int = 0

    @property
    def is_main(self) -> bool:
        """Rank 0: the one process that logs and writes files."""
        return self.rank == 0

    def sum_(self, t: Tensor) -> Tensor:
        """``t`` summed over all processes (on ``t``'s device)."""
        if self.world == 1:
            return t
        on = t.to(_collective_device())
        dist.all_reduce(on, op=dist.ReduceOp.SUM)
        return on.to(t.device)

    def min_int(self, value: int) -> int:
        """The smallest ``value`` any process holds."""
        if self.world == 1:
            return value
        t = torch.tensor([value], dtype=torch.int64, device=_collective_device())
        dist.all_reduce(t, op=dist.ReduceOp.MIN)
        return int(t.item())

    def mean_scalars(self, values: dict[str, Tensor]) -> dict[str, Tensor]:
        """Each scalar averaged over the processes (equal local batches: the global batch's mean)."""
        if self.world == 1:
            return values
        t = torch.stack([v.detach().float() for v in values.values()]).to(_collective_device())
        dist.all_reduce(t, op=dist.ReduceOp.SUM)
        return dict(zip(values, (t / self.world).cpu()))

    def broadcast_buffers(self, net: nn.Module) -> None:
        """Give every process rank 0's buffers (batch-norm running statistics), the ones its checkpoint holds."""
        if self.world > 1:
            for buffer in net.buffers():
                dist.broadcast(buffer, src=0)

    def gather(self, items: list[str]) -> list[str]:
        """Every process's ``items``, concatenated in rank order (on every rank)."""
        if self.world == 1:
            return list(items)
        gathered: list[list[str] | None] = [None] * self.world
        dist.all_gather_object(gathered, list(items))
        return [item for part in gathered for item in (part or [])]


SINGLE = Dist()


def _collective_device() -> torch.device:
    """NCCL reduces CUDA tensors only; gloo takes CPU tensors."""
    if dist.get_backend() == "nccl":
        return torch.device("cuda", torch.cuda.current_device())
    return torch.device("cpu")


def from_env() -> Dist:
    """This process's :class:`Dist` from torchrun's environment variables (a single process without them)."""
    try:
        return Dist(
            rank=int(os.environ.get("RANK", 0)),
            world=int(os.environ.get("WORLD_SIZE", 1)),
            local_rank=int(os.environ.get("LOCAL_RANK", 0)),
        )
    except ValueError as e:
        raise GNetError(f"torchrun's RANK/WORLD_SIZE/LOCAL_RANK are not integers ({e}); start with torchrun.") from None


def device_for(d: Dist, device: torch.device) -> torch.device:
    """The device this process trains on: with CUDA, GPU ``LOCAL_RANK`` of this machine."""
    if device.type != "cuda" or d.world == 1:
        return device
    count = torch.cuda.device_count()
    if d.local_rank >= count:
        raise DeviceError(
            f"--nproc_per_node asks for at least {d.local_rank + 1} processes on this machine but it has {count} GPUs: "
            f"use --nproc_per_node {count} or fewer."
        )
    return torch.device("cuda", d.local_rank)


@contextmanager
def process_group(d: Dist, device: torch.device) -> Iterator[None]:
    """Join the process group for the block (gloo on the CPU, NCCL on CUDA) when there are several processes."""
    if d.world == 1:
        yield
        return
    if device.type == "cuda":
        torch.cuda.set_device(device)
        dist.init_process_group("nccl", device_id=device)
    else:
        dist.init_process_group("gloo")
    try:
        yield
    finally:
        dist.destroy_process_group()


def launch(nproc: int, argv: Sequence[str]) -> int:
    """Run ``python -m gnet <argv>`` as ``nproc`` processes on this machine with torch's elastic launcher.

    The same launcher as ``torchrun --standalone --nproc-per-node N -m gnet ...``; unlike torchrun
    it returns 2 without a report of its own when the processes stopped on a user error (rank 0
    has printed the sentence), so a mistake reads the same as in a one-process run.
    """
    from torch.distributed.elastic.multiprocessing.errors import ChildFailedError
    from torch.distributed.run import parse_args, run

    # One CPU thread per process by default (torchrun's own default, set here to silence its warning).
    os.environ.setdefault("OMP_NUM_THREADS", str(max(1, (os.cpu_count() or 1) // nproc)))
    os.environ["PYTHONPATH"] = os.pathsep.join(filter(None, [str(_GNET_PARENT), os.environ.get("PYTHONPATH")]))
    quiet = logging.getLogger("torch.distributed")
    level = quiet.level
    quiet.setLevel(logging.CRITICAL)  # the launcher's own log lines; each process prints what matters
    try:
        run(parse_args(["--standalone", f"--nproc-per-node={nproc}", "--module", "gnet", *argv]))
    except ChildFailedError as e:
        # After the first process fails the launcher stops the others (a signal: a negative exit code).
        codes = {failure.exitcode for failure in e.failures.values()}
        if 2 in codes and all(code == 2 or code < 0 for code in codes):
            return 2
        worst = max(codes)
        print(f"error: a training process failed with exit code {worst}; its messages are above.", file=sys.stderr)
        return 1
    finally:
        quiet.setLevel(level)
    return 0
