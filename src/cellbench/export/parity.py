"""Whether an exported network gives cellbench's own probabilities: both run on real image crops
(sides multiples of the size divisor, so that cellbench pads nothing) and the largest absolute
difference of any probability must stay within TOLERANCE, else nothing is written. The numbers go
into the manifest, so a user can see how faithful the files are.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from cellbench.errors import ConfigError, InputError, InputProblem
from cellbench.images import MAX_PIXELS, ImageReadError, read_image
from cellbench.inference.ensemble import FoldModel, Windows, probabilities

log = logging.getLogger(__name__)

TOLERANCE = 1e-4
# cellbench's prediction of a whole crop as one window, without test-time augmentation or autocast
REFERENCE_WINDOWS = Windows(tile_size=None, overlap=0.0, batch_size=1, tta="none", amp=False)
PARITY_SIDE = 512  # crops at most this large: real context, seconds on a CPU
PARITY_IMAGES = 3  # the first images given are checked (and the first gives the package's test tensors)

Runner = Callable[[np.ndarray], np.ndarray]  # (N, 3, H, W) float32 0..255 -> (N, C, H, W) probabilities


class ParityError(RuntimeError):
    """An exported network does not reproduce cellbench's probabilities (a bug: nothing is written)."""


@dataclass(frozen=True)
class Crop:
    """The centre of one image, its sides cut down to multiples of the size divisor."""

    source: str
    pixels: np.ndarray  # (H, W, 3) uint8

    @property
    def batch(self) -> np.ndarray:
        """(1, 3, H, W) float32, pixel values 0..255: what the exported networks take."""
        return np.ascontiguousarray(self.pixels.transpose(2, 0, 1)[None].astype(np.float32))


def crops(images: list[Path], divisor: int, smallest: int, side: int = PARITY_SIDE,
          max_pixels: int | None = MAX_PIXELS) -> list[Crop]:
    """Centre crops of ``images`` with sides the largest multiples of ``divisor`` up to ``side``;
    images smaller than ``smallest`` px are left out (with a warning), and none left is an error."""
    found, problems = [], []
    for path in images:
        try:
            rgb = read_image(Path(path), max_pixels, f"image {path}").rgb
        except ImageReadError as err:
            problems.append(InputProblem(Path(path), str(err).removeprefix(f"image {path} "), err.hint))
            continue
        height, width = ((min(n, side) // divisor) * divisor for n in rgb.shape[:2])
        if min(height, width) < smallest:
            log.warning("%s is smaller than %d px: not used for the parity check", path, smallest)
            continue
        top, left = (rgb.shape[0] - height) // 2, (rgb.shape[1] - width) // 2
        found.append(Crop(str(path), np.ascontiguousarray(rgb[top:top + height, left:left + width])))
    if problems:
        raise InputError(problems)
    if not found:
        raise ConfigError(f"no image of at least {smallest} x {smallest} px to check the exported networks on "
                          "(--images)")
    return found


def reference(crop: Crop, nets: list[tuple[torch.nn.Module, dict]]) -> np.ndarray:
    """cellbench's own (C, H, W) probabilities of the crop: the mean over the given fold networks
    (raw networks and their checkpoint metadata), as infer computes them."""
    fold_models = [FoldModel(net, meta) for net, meta in nets]
    return probabilities(crop.pixels, fold_models, REFERENCE_WINDOWS, torch.device("cpu")).mean


def compare(name: str, runner: Runner, items: list[Crop], expected: list[np.ndarray],
            tolerance: float = TOLERANCE) -> dict:
    """Run ``runner`` on every crop and compare with cellbench's probabilities; also a batch of two
    (the first crop twice) against the single prediction. ParityError when any difference exceeds
    ``tolerance``; else the differences and the share of pixels whose argmax agrees."""
    per_image, agreement = {}, []
    first = None
    for crop, truth in zip(items, expected, strict=True):
        got = np.asarray(runner(crop.batch))[0]
        first = got if first is None else first
        per_image[crop.source] = float(np.abs(got - truth).max())
        agreement.append(float((got.argmax(0) == truth.argmax(0)).mean()))
    pair = np.asarray(runner(np.concatenate([items[0].batch, items[0].batch])))
    batch_diff = float(np.abs(pair - first[None]).max())
    worst = max(per_image, key=per_image.get)
    result = {"max_abs_diff": per_image[worst], "per_image": per_image, "batch_of_two_max_abs_diff": batch_diff,
              "argmax_agreement": min(agreement), "tolerance": tolerance}
    if per_image[worst] > tolerance or batch_diff > tolerance:
        raise ParityError(f"{name}: probabilities differ from cellbench's by {max(per_image[worst], batch_diff):.3g} "
                          f"(more than {tolerance:g}; worst on {worst}); nothing was written")
    log.info("%s: max |p - cellbench| = %.2e over %d image(s), batch of two %.2e", name, per_image[worst],
             len(items), batch_diff)
    return result
