"""Where tensors run: the device chosen for a step, mixed precision on it, and the one normalisation
of uint8 images every model sees (training batches, scoring after an epoch, prediction)."""

from __future__ import annotations

import contextlib

import torch

from cellbench.errors import ConfigError


def resolve_device(choice: str = "auto") -> torch.device:
    if choice == "cuda" and not torch.cuda.is_available():
        raise ConfigError("train.device is cuda but no CUDA device is available (set it to auto or cpu)")
    if choice == "auto":
        choice = "cuda" if torch.cuda.is_available() else "cpu"
    return torch.device(choice)


def autocast(device: torch.device, enabled: bool = True):
    """Mixed precision on CUDA (bf16 where supported, else fp16); nothing on CPU."""
    if device.type != "cuda" or not enabled:
        return contextlib.nullcontext()
    dtype = torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
    return torch.autocast("cuda", dtype=dtype)


def normalise(batch_uint8: torch.Tensor, mean: torch.Tensor, std: torch.Tensor) -> torch.Tensor:
    """(N, H, W, 3) uint8 on the device -> (N, 3, H, W) float, channels_last."""
    return normalise_planar(batch_uint8.permute(0, 3, 1, 2), mean, std)


def normalise_planar(batch: torch.Tensor, mean: torch.Tensor, std: torch.Tensor) -> torch.Tensor:
    """(N, 3, H, W) pixel values 0..255 (any dtype; the windows of a sliding-window pass) -> the
    normalised float batch, channels_last."""
    x = batch.float().div_(255.0) if batch.dtype != torch.float32 else batch.div(255.0)
    x = (x - mean.view(1, -1, 1, 1)) / std.view(1, -1, 1, 1)
    return x.contiguous(memory_format=torch.channels_last)
