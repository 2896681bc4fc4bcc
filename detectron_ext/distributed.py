"""Training on several processes: detectron2's `launch` (PyTorch DDP), also on CPU, and loss
normalisers shared by the workers.

detectron2 v0.6's launch starts NCCL workers only (it asserts CUDA); on CPU the same workers start
here with gloo (and compat.py lets its DDP wrapper take a CPU model)."""
import logging
import os
import sys
from datetime import timedelta

import torch
import torch.distributed as dist
import torch.multiprocessing as mp
from detectron2.engine import launch as d2_launch
from detectron2.engine.launch import _find_free_port
from detectron2.utils import comm
from torch.nn.parallel import DistributedDataParallel

TIMEOUT = timedelta(minutes=30)


def launch(main_func, num_workers: int, num_machines: int = 1, machine_rank: int = 0, dist_url: str = "auto",
           device: str = "cuda", args=()):
    """main_func(*args) in num_workers processes per machine (one GPU each, or CPU processes on gloo);
    num_workers x num_machines == 1 runs it in this process."""
    if device == "cuda":
        return d2_launch(main_func, num_workers, num_machines, machine_rank, dist_url, args=args, timeout=TIMEOUT)
    world_size = num_workers * num_machines
    if world_size == 1:
        return main_func(*args)
    if dist_url == "auto":
        if num_machines != 1:
            raise ValueError("dist_url auto works on one machine only: give tcp://HOST:PORT of machine 0")
        dist_url = f"tcp://127.0.0.1:{_find_free_port()}"
    mp.spawn(_cpu_worker, nprocs=num_workers, daemon=False,
             args=(main_func, world_size, num_workers, machine_rank, dist_url, args))


def _cpu_worker(local_rank, main_func, world_size, num_workers, machine_rank, dist_url, args):
    rank = machine_rank * num_workers + local_rank
    try:
        dist.init_process_group("gloo", init_method=dist_url, world_size=world_size, rank=rank, timeout=TIMEOUT)
    except Exception:
        logging.getLogger(__name__).error(f"process group URL: {dist_url}")
        raise
    for i in range(world_size // num_workers):  # the workers of each machine, as detectron2's launch
        group = dist.new_group(list(range(i * num_workers, (i + 1) * num_workers)))
        if i == machine_rank:
            comm._LOCAL_PROCESS_GROUP = group
    comm.synchronize()
    main_func(*args)
    # Leave together, stop gloo's threads, then end the process without the interpreter's teardown: a worker
    # whose C++ objects (process groups, store, their threads) were destroyed at exit aborted in CI twice
    # ("terminate called without an active exception", SIGABRT), once after the group was destroyed too.
    # Everything a worker writes is written (atomically) before main_func returns; streams are flushed here.
    comm.synchronize()
    dist.destroy_process_group()
    logging.shutdown()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(0)


def unwrap(model: torch.nn.Module) -> torch.nn.Module:
    """The detector inside a DistributedDataParallel wrapper (or the model itself)."""
    return model.module if isinstance(model, DistributedDataParallel) else model


def shared_normaliser(value: float, minimum: float = 1.0) -> float:
    """A loss normaliser (the number of positives, a sum of weights) of the whole batch, at least
    `minimum`, as a share per worker: max(Σ over the workers, minimum) / workers. Each worker's loss
    divided by it averages (DDP averages the workers' gradients) to the loss of the whole batch in one
    process. In one process: max(value, minimum)."""
    world = comm.get_world_size()
    if world == 1:
        return max(float(value), minimum)
    t = torch.tensor([float(value)], dtype=torch.float64)
    if dist.get_backend() == "nccl":
        t = t.cuda()
    dist.all_reduce(t)
    return max(float(t.item()), minimum) / world
