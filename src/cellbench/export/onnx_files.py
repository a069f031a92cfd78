"""ONNX files of the exported networks, written by torch's TorchScript-based exporter (dynamo=False:
the torch.export-based one needs onnxscript, which nothing else needs; this one works offline and
keeps batch size, height and width free for every smp decoder but PSPNet's and UPerNet's) and run
back with onnxruntime on the CPU for the parity check.
"""

from __future__ import annotations

import contextlib
import os
import sys
import warnings
from pathlib import Path

import numpy as np
import torch

from cellbench.errors import ConfigError

OPSET = 17  # onnxruntime runs it since 1.14; every op smp's decoders need exists in it
INPUT, OUTPUT = "image", "probabilities"
AXES = {0: "batch", 2: "height", 3: "width"}


class OnnxUnsupported(ConfigError):
    """torch's ONNX exporter cannot express the network with a free image size (PSPNet's and UPerNet's
    pyramid pooling: adaptive average pooling over an input of unknown size)."""


@contextlib.contextmanager
def _quiet_output():
    """The exporter prints the whole TorchScript graph (C++, to the process's stdout) before it raises
    (its ONNX log is always on in torch 2.x): hundreds of lines; the reason alone goes into our message."""
    sys.stdout.flush()
    sys.stderr.flush()
    saved = [os.dup(1), os.dup(2)]
    try:
        with open(os.devnull, "w") as devnull:
            os.dup2(devnull.fileno(), 1)
            os.dup2(devnull.fileno(), 2)
            yield
    finally:
        for fd, copy in zip((1, 2), saved, strict=True):
            os.dup2(copy, fd)
            os.close(copy)


def write(module: torch.nn.Module, path: Path, example: torch.Tensor) -> None:
    """Export ``module`` (traced on ``example``) to ``path`` with a free batch size, height and width,
    and check the file with onnx's checker."""
    import onnx
    with warnings.catch_warnings(), _quiet_output():
        warnings.simplefilter("ignore")  # the exporter's deprecation notice and tracer warnings
        try:
            torch.onnx.export(module.eval(), (example,), str(path), dynamo=False, opset_version=OPSET,
                              input_names=[INPUT], output_names=[OUTPUT], dynamic_axes={INPUT: AXES, OUTPUT: AXES},
                              do_constant_folding=True)
        except Exception as err:  # the exporter raises many types (SymbolicValueError, RuntimeError, ...)
            reason = (str(err).strip().splitlines() or [type(err).__name__])[0]
            reason = reason.split(" Please feel free")[0].split(" [Caused by")[0].strip()
            raise OnnxUnsupported(f"torch's ONNX exporter cannot express it with a free image size ({reason[:300]})"
                                  ) from None
    onnx.checker.check_model(str(path))


def runner(path: Path):
    """(N, 3, H, W) float32 -> (N, C, H, W) probabilities, with onnxruntime on the CPU, as many
    threads as torch uses (onnxruntime's default, every core, oversubscribes a shared machine)."""
    import onnxruntime
    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = torch.get_num_threads()
    session = onnxruntime.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])

    def run(batch: np.ndarray) -> np.ndarray:
        return session.run([OUTPUT], {INPUT: np.ascontiguousarray(batch, dtype=np.float32)})[0]

    return run


def versions() -> dict[str, str]:
    import onnx
    import onnxruntime
    return {"onnx": onnx.__version__, "onnxruntime": onnxruntime.__version__, "opset": str(OPSET)}
