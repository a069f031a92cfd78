"""One GPU per training job on a multi-GPU workstation.

Snakemake limits how many training jobs run at once (``--resources gpu=N``) but does not say
which GPU each should use. A job claims a free GPU by taking an exclusive lock on a file per GPU
(``$CELLBENCH_GPU_LOCKS``, default ``<tmp>/cellbench-gpu-locks``) and sets CUDA_VISIBLE_DEVICES
to it before CUDA starts. The lock belongs to the process: it is released when the job ends, even
when it crashes or is killed, so a GPU is never lost. Several workflows on one machine share the
locks. Nothing is claimed when only one GPU is visible (e.g. inside a SLURM job, where SLURM has
already set CUDA_VISIBLE_DEVICES). ``CELLBENCH_GPUS=0,1,2`` overrides the device list (for tests).
"""

from __future__ import annotations

import fcntl
import logging
import os
import tempfile
import time
from pathlib import Path

log = logging.getLogger(__name__)

_held: list = []  # open lock files of this process (closing one releases its GPU)


def visible_gpus() -> list[str]:
    """GPU ids this process may use: CELLBENCH_GPUS, else CUDA_VISIBLE_DEVICES, else all CUDA devices."""
    for variable in ("CELLBENCH_GPUS", "CUDA_VISIBLE_DEVICES"):
        value = os.environ.get(variable)
        if value is not None:
            return [v.strip() for v in value.split(",") if v.strip()]
    try:
        import torch

        return [str(i) for i in range(torch.cuda.device_count())]
    except ImportError:
        return []


def lock_dir() -> Path:
    return Path(os.environ.get("CELLBENCH_GPU_LOCKS") or Path(tempfile.gettempdir()) / "cellbench-gpu-locks")


def claim(timeout: float | None = None, poll: float = 1.0) -> str | None:
    """Claim a free GPU for this process and make it the only visible one; None if there is
    nothing to choose (fewer than two GPUs). Waits for a GPU to become free (up to ``timeout`` s)."""
    gpus = visible_gpus()
    if len(gpus) < 2:
        return None
    folder = lock_dir()
    folder.mkdir(parents=True, exist_ok=True)
    started = time.monotonic()
    while True:
        for gpu in gpus:
            handle = open(folder / f"gpu{gpu}.lock", "a+")  # held open for the life of the process
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                handle.close()
                continue
            _held.append(handle)
            os.environ["CUDA_VISIBLE_DEVICES"] = gpu
            log.info("using GPU %s (of %s; lock %s)", gpu, ",".join(gpus), handle.name)
            return gpu
        if timeout is not None and time.monotonic() - started >= timeout:
            raise TimeoutError(f"all GPUs {','.join(gpus)} stayed busy for {timeout:.0f} s (locks in {folder})")
        time.sleep(poll)
