"""Class probabilities of an image of any size from one or several fold models.

Windows of ``tile_size`` are cut, batched and blended with Gaussian weights by MONAI's
``sliding_window_inference`` (the field's maintained tiler); each window is predicted by every
model under every test-time transform, and the softmax probabilities are averaged before any
argmax. Images larger than ``block_size`` are processed block by block, each block read with the
whole image's windows that touch it, so that its probabilities are exactly the whole image's and
memory is bounded whatever the image's size.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from monai.inferers import sliding_window_inference

from cellbench.device import autocast, normalise_planar
from cellbench.inference import tta as tta_transforms
from cellbench.training import models, targets


@dataclass(frozen=True)
class FoldModel:
    """One trained model and what it needs to see an image as it was trained."""

    net: torch.nn.Module
    meta: dict

    @property
    def classes(self) -> list[str]:
        return list(self.meta["classes"])

    @property
    def family(self) -> str:
        """smp (semantic: class probabilities), maskrcnn (instances: cellbench.inference.detections) or
        nucleus_guided (two stages: cellbench.inference.nucleus_guided)."""
        return self.meta.get("family", "smp")

    @property
    def outputs(self) -> list[str]:
        """The model's output channels: its classes, plus "border" when trained on touching borders."""
        return targets.outputs(self.classes, self.meta.get("target", "classes"))

    @property
    def divisor(self) -> int:
        return int(self.meta["size_divisor"])

    @classmethod
    def load(cls, checkpoint: Path, device: torch.device) -> FoldModel:
        net, meta = models.load_checkpoint(checkpoint, device)
        return cls(net, {**meta, "checkpoint": str(checkpoint)})


@dataclass(frozen=True)
class Windows:
    """How an image is cut and predicted. ``tile_size`` None: the whole image is one window."""

    tile_size: int | None = 512
    overlap: float = 0.25
    batch_size: int = 4
    tta: str = "none"
    amp: bool = True
    block_size: int = 4096


DEFAULT_WINDOWS = Windows()  # infer's defaults; also the per-epoch scoring during training


@dataclass
class Probabilities:
    """Mean softmax over models and transforms, and how many of the models voted for each class."""

    mean: np.ndarray  # (C, H, W) float32
    votes: np.ndarray  # (C, H, W) float32: share of the models whose argmax is the class (blended)


def _padded_size(size: int, divisor: int, tile: int | None) -> int:
    """A side shorter than the window (or every side, without tiling) is padded to the divisor."""
    if tile is not None and size >= tile:
        return size
    return math.ceil(size / divisor) * divisor


def argmax_channels(x: torch.Tensor, dim: int) -> torch.Tensor:
    """``x.argmax(dim)`` (ties to the first index) for the few channels of a probability map, as
    elementwise comparisons: on a CPU, torch's argmax over a short channel axis is 4 to 7 times
    slower than this (1.2 s against 0.17 s for a 3 x 1920 x 2560 map)."""
    planes = x.unbind(dim)
    best, chosen = planes[0], torch.zeros(planes[0].shape, dtype=torch.int64, device=x.device)
    for index, plane in enumerate(planes[1:], 1):
        better = plane > best
        chosen.masked_fill_(better, index)
        best = torch.maximum(best, plane)
    return chosen


class _Predictor:
    """The callable MONAI runs on each batch of windows: normalise, every model x transform, softmax
    mean and the models' argmax votes, stacked as 2C channels."""

    def __init__(self, fold_models: list[FoldModel], windows: Windows, device: torch.device):
        self.models, self.device, self.amp = fold_models, device, windows.amp
        self.transforms = tta_transforms.transforms(windows.tta)
        self.stats = [(torch.as_tensor(m.meta["mean"], dtype=torch.float32, device=device),
                       torch.as_tensor(m.meta["std"], dtype=torch.float32, device=device)) for m in fold_models]

    @torch.no_grad()
    def __call__(self, window: torch.Tensor) -> torch.Tensor:
        window = window.to(self.device)
        mean = votes = None
        for model, (mu, sd) in zip(self.models, self.stats, strict=True):
            x = normalise_planar(window, mu, sd)
            model_mean = None
            for transform in self.transforms:
                with autocast(self.device, self.amp):
                    logits = model.net(transform.apply(x))
                p = transform.invert(torch.softmax(logits.float(), dim=1))
                model_mean = p if model_mean is None else model_mean + p
            model_mean /= len(self.transforms)
            chosen = argmax_channels(model_mean, 1)
            vote = torch.stack([chosen == c for c in range(model_mean.shape[1])], dim=1).float()
            mean = model_mean if mean is None else mean + model_mean
            votes = vote if votes is None else votes + vote
        return torch.cat([mean, votes], dim=1) / len(self.models)


def _block_probabilities(image: np.ndarray, predictor: _Predictor, windows: Windows, divisor: int,
                         device: torch.device, stitch_device: torch.device) -> torch.Tensor:
    """(2C, H, W) for one block: pad, MONAI's Gaussian-blended sliding window, crop back."""
    height, width = image.shape[:2]
    tile = window_size(windows, divisor)
    size = (_padded_size(height, divisor, tile), _padded_size(width, divisor, tile))
    x = torch.from_numpy(image.transpose(2, 0, 1).astype(np.float32))[None]
    pad_h, pad_w = size[0] - height, size[1] - width
    if pad_h or pad_w:
        mode = "reflect" if pad_h < height and pad_w < width else "replicate"
        x = F.pad(x, (0, pad_w, 0, pad_h), mode=mode)
    roi = size if tile is None else (min(tile, size[0]), min(tile, size[1]))
    out = sliding_window_inference(x, roi, windows.batch_size, predictor, overlap=windows.overlap,
                                   mode="gaussian", sw_device=device, device=stitch_device)
    return out[0, :, :height, :width]


def _stitch_device(device: torch.device, pixels: int, channels: int) -> torch.device:
    """Blend on the GPU when the block's maps fit in a quarter of its free memory, else on the CPU."""
    if device.type != "cuda":
        return device
    free, _ = torch.cuda.mem_get_info(device)
    needed = pixels * (2 * channels + 1 + 3) * 4
    return device if needed < free / 4 else torch.device("cpu")


def window_starts(size: int, tile: int, overlap: float) -> list[int]:
    """Where MONAI's sliding window puts its windows along a side (its dense_patch_slices): every
    ``tile * (1 - overlap)`` pixels, the last window flush with the end."""
    if size <= tile:
        return [0]
    stride = max(int(tile * (1 - overlap)), 1)
    starts = []
    while not starts or starts[-1] + tile < size:
        starts.append(min(len(starts) * stride, size - tile))
    return starts


def reading_span(start: int, stop: int, size: int, tile: int, overlap: float) -> tuple[int, int]:
    """The part of a side to read for the pixels [start, stop): from the first to the last of the
    whole image's windows that touch them. MONAI's windows over that span are exactly those windows,
    so a block's probabilities equal the whole image's, wherever the block lies."""
    touching = [p for p in window_starts(size, tile, overlap) if p < stop and p + tile > start]
    return touching[0], min(touching[-1] + tile, size)


def blocks(height: int, width: int, block: int, tile: int | None, overlap: float):
    """(inner, outer) pairs of (top, bottom, left, right): the region a block writes, and the region it
    reads (the image's windows that touch inner; without tiling, inner plus half a block each side)."""
    for top in range(0, height, block):
        for left in range(0, width, block):
            inner = (top, min(top + block, height), left, min(left + block, width))
            yield inner, reading_region(inner, (height, width), block, tile, overlap)


def reading_region(region: tuple[int, int, int, int], shape: tuple[int, int], block: int, tile: int | None,
                   overlap: float) -> tuple[int, int, int, int]:
    """What to read to predict ``region`` (top, bottom, left, right) of an image of ``shape`` as the
    whole image would be predicted (see reading_span; ``tile`` None: half a block of margin)."""
    top, bottom, left, right = region
    if tile is None:
        margin = block // 2
        return max(top - margin, 0), min(bottom + margin, shape[0]), max(left - margin, 0), min(right + margin,
                                                                                                 shape[1])
    return (*reading_span(top, bottom, shape[0], tile, overlap), *reading_span(left, right, shape[1], tile, overlap))


def window_size(windows: Windows, divisor: int) -> int | None:
    """The window side the tiler uses: tile_size rounded up to the models' size divisor."""
    return None if windows.tile_size is None else math.ceil(windows.tile_size / divisor) * divisor


def predict_blocks(image: np.ndarray, fold_models: list[FoldModel], windows: Windows, device: torch.device):
    """Yield ((top, bottom, left, right), block) over the image, block a (2C, h, w) float32 CPU tensor:
    the mean softmax over models and transforms, then the models' argmax votes (see probabilities)."""
    outputs = fold_models[0].outputs
    if any(m.outputs != outputs for m in fold_models):
        raise ValueError("the models of an ensemble must predict the same classes (and the same target)")
    divisor = max(m.divisor for m in fold_models)
    predictor = _Predictor(fold_models, windows, device)
    height, width = image.shape[:2]
    for (top, bottom, left, right), (o_top, o_bottom, o_left, o_right) in blocks(
            height, width, windows.block_size, window_size(windows, divisor), windows.overlap):
        part = image[o_top:o_bottom, o_left:o_right]
        stitch = _stitch_device(device, part.shape[0] * part.shape[1], len(outputs))
        out = _block_probabilities(part, predictor, windows, divisor, device, stitch)
        yield (top, bottom, left, right), out[:, top - o_top:bottom - o_top, left - o_left:right - o_left].cpu()


def probabilities(image: np.ndarray, fold_models: list[FoldModel], windows: Windows,
                  device: torch.device) -> Probabilities:
    """Class probabilities of an RGB uint8 image (H, W, 3) of any size: the mean over ``fold_models``
    and the test-time transforms of ``windows.tta`` of the softmax, blended over overlapping windows.

    Parameters
    ----------
    image:
        RGB uint8 (H, W, 3).
    fold_models:
        One or more models trained on the same classes (the folds of one architecture, or any mix).
    windows:
        Tiling, batching, test-time augmentation and block size.
    device:
        Where the models run; blending happens there when it fits, else on the CPU.

    Returns
    -------
    Probabilities: the mean (C, H, W) and the share of models voting for each class, float32 on the CPU.
    """
    n = len(fold_models[0].outputs)
    mean = np.empty((n, *image.shape[:2]), np.float32)
    votes = np.empty_like(mean)
    for (top, bottom, left, right), block in predict_blocks(image, fold_models, windows, device):
        mean[:, top:bottom, left:right] = block[:n].numpy()
        votes[:, top:bottom, left:right] = block[n:].numpy()
    return Probabilities(mean, votes)
