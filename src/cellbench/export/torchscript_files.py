"""TorchScript files of the exported networks (torch.jit.trace: it records the operations cellbench
runs, and the sizes stay free because smp's decoders read every size from the tensors), loaded back
with torch.jit.load for the parity check.
"""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import torch


def write(module: torch.nn.Module, path: Path, example: torch.Tensor) -> None:
    """Trace ``module`` on ``example`` and save it to ``path``; the parity check on other sizes
    (cellbench.export.parity) shows the trace did not freeze them."""
    with warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter("ignore")  # tracer warnings about Python-side shape checks
        traced = torch.jit.trace(module.eval(), example, check_trace=False)
    traced.save(str(path))


def runner(path: Path):
    """(N, 3, H, W) float32 -> (N, C, H, W) probabilities, with the saved file on the CPU."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)  # torch deprecates TorchScript; the Zoo still runs it
        module = torch.jit.load(str(path), map_location="cpu").eval()

    @torch.no_grad()
    def run(batch: np.ndarray) -> np.ndarray:
        return module(torch.from_numpy(np.ascontiguousarray(batch, dtype=np.float32))).numpy()

    return run
