"""Training batches: seeded random crops of the training variants, gathered where the data lives.

The training variants are copied once into one uint8 tensor (N, H, W, 3) plus masks (N, H, W),
on the GPU when they fit in half of its free memory, else in host memory (pinned for fast
copies); crops are then gathered with one indexing operation per batch and never pass through
Python per image. Variants of different sizes are padded to the largest, the padding marked as
ignore in the masks, and crops are drawn inside each variant. When the data do not fit in memory
(``in_memory`` false, or auto and too large) crops are read from the memory-mapped store.

With a touching-border target (cellbench.training.targets) the masks carry the border class,
derived from each variant's instance map as it is loaded. Instance models (Mask R-CNN) get the
instance maps as well: their masks are (B, 2, c, c), class map then instance map.

Which variant and which crop a batch holds depends only on (seed, epoch, step), so an
interrupted epoch can be resumed at any step with the same batches.
"""

from __future__ import annotations

import math
import os
from collections.abc import Iterator

import numpy as np
import torch

from cellbench.classmaps import IGNORE_INDEX
from cellbench.training.targets import with_border
from cellbench.training.variants import VariantStore


def _available_host_bytes() -> int:
    try:
        return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):
        return 4 << 30


def fits_in_memory(nbytes: int, device: torch.device) -> bool:
    """Whether ``nbytes`` take at most half of the free memory of ``device``."""
    if device.type == "cuda":
        free, _ = torch.cuda.mem_get_info(device)
        return nbytes <= free // 2
    return nbytes <= _available_host_bytes() // 2


class CropBatches:
    """Batches of random ``crop_size`` crops of the variants in ``rows``, on ``device``."""

    def __init__(self, store: VariantStore, rows: np.ndarray, crop_size: int, batch_size: int, seed: int,
                 device: torch.device, in_memory: bool | str = "auto", border_index: int | None = None,
                 with_instances: bool = False):
        self.store, self.rows = store, np.asarray(rows)
        self.border_index, self.with_instances = border_index, with_instances
        self.crop_size, self.batch_size, self.seed, self.device = crop_size, batch_size, seed, device
        shapes = np.array([store.shape(int(r)) for r in self.rows])
        self.heights, self.widths = shapes[:, 0], shapes[:, 1]
        self.canvas = (max(int(self.heights.max()), crop_size), max(int(self.widths.max()), crop_size))
        nbytes = len(self.rows) * self.canvas[0] * self.canvas[1] * (8 if with_instances else 4)
        self.in_memory = fits_in_memory(nbytes, device) if in_memory == "auto" else bool(in_memory)
        self.where = ("device" if device.type == "cuda" else "host") if self.in_memory else "mapped"
        if self.in_memory:
            self._images, self._masks, self._instances = self._load()

    def __len__(self) -> int:
        """Batches in one pass over all variants."""
        return math.ceil(len(self.rows) / self.batch_size)

    def _load(self) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]:
        height, width = self.canvas
        images = torch.zeros((len(self.rows), height, width, 3), dtype=torch.uint8)
        masks = torch.full((len(self.rows), height, width), IGNORE_INDEX, dtype=torch.uint8)
        instances = torch.zeros((len(self.rows), height, width), dtype=torch.int32) if self.with_instances else None
        for i, row in enumerate(self.rows):
            image, mask = self._variant(int(row))
            images[i, : image.shape[0], : image.shape[1]] = torch.from_numpy(np.array(image))
            masks[i, : mask.shape[0], : mask.shape[1]] = torch.from_numpy(np.array(mask))
            if instances is not None:
                pieces = np.array(self.store.instances(int(row)))
                instances[i, : mask.shape[0], : mask.shape[1]] = torch.from_numpy(pieces)
        if self.device.type == "cuda":
            on_device = None if instances is None else instances.to(self.device)
            return images.to(self.device), masks.to(self.device), on_device
        return images, masks, instances

    def _variant(self, row: int) -> tuple[np.ndarray, np.ndarray]:
        """Image and training mask of one variant (with the border class when it is a target)."""
        image, mask = self.store.get(row)
        if self.border_index is None:
            return image, mask
        return image, with_border(mask, self.store.instances(row), self.border_index)

    def plan(self, epoch: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """The epoch's variant order and each variant's crop corner (top, left)."""
        generator = torch.Generator().manual_seed(int(self.seed) * 1_000_003 + int(epoch))
        order = torch.randperm(len(self.rows), generator=generator)
        spare_h = torch.as_tensor(np.maximum(self.heights - self.crop_size, 0) + 1)
        spare_w = torch.as_tensor(np.maximum(self.widths - self.crop_size, 0) + 1)
        tops = (torch.rand(len(self.rows), generator=generator, dtype=torch.float64) * spare_h).long()
        lefts = (torch.rand(len(self.rows), generator=generator, dtype=torch.float64) * spare_w).long()
        return order, tops, lefts

    def epoch(self, epoch: int, start: int = 0, steps: int | None = None
              ) -> Iterator[tuple[torch.Tensor, torch.Tensor, np.ndarray]]:
        """(images uint8 (B, c, c, 3), masks int64 (B, c, c), store rows) on the device, from batch
        ``start`` up to ``steps`` batches of the epoch."""
        order, tops, lefts = self.plan(epoch)
        stop = len(self) if steps is None else min(steps, len(self))
        for step in range(start, stop):
            chosen = order[step * self.batch_size:(step + 1) * self.batch_size]
            images, masks = self._gather(chosen, tops[chosen], lefts[chosen])
            yield images, masks, self.rows[chosen.numpy()]

    def _gather(self, chosen: torch.Tensor, tops: torch.Tensor, lefts: torch.Tensor
                ) -> tuple[torch.Tensor, torch.Tensor]:
        span = torch.arange(self.crop_size)
        if self.in_memory:
            where = self._images.device
            index = chosen.to(where)[:, None, None]
            ys = (tops[:, None] + span).to(where)[:, :, None]
            xs = (lefts[:, None] + span).to(where)[:, None, :]
            masks = self._masks[index, ys, xs].long()
            if self._instances is not None:
                masks = torch.stack([masks, self._instances[index, ys, xs].long()], 1)
            return self._images[index, ys, xs], masks
        images, masks = [], []
        for i, top, left in zip(chosen.tolist(), tops.tolist(), lefts.tolist(), strict=True):
            row = int(self.rows[i])
            image, mask = _pad_to(*self._variant(row), self.crop_size)
            window = (slice(top, top + self.crop_size), slice(left, left + self.crop_size))
            images.append(image[window])
            if self.with_instances:
                pieces = _pad_to(image, self.store.instances(row), self.crop_size, fill=0)[1]
                masks.append(np.stack([mask[window], pieces[window]]).astype(np.int64))
            else:
                masks.append(mask[window])
        pin = self.device.type == "cuda"
        image_batch = torch.from_numpy(np.stack(images))
        mask_batch = torch.from_numpy(np.stack(masks).astype(np.int64))
        if pin:
            image_batch, mask_batch = image_batch.pin_memory(), mask_batch.pin_memory()
        return (image_batch.to(self.device, non_blocking=True), mask_batch.to(self.device, non_blocking=True))


def _pad_to(image: np.ndarray, mask: np.ndarray, size: int, fill: int = IGNORE_INDEX) -> tuple[np.ndarray, np.ndarray]:
    """Pad image and mask (mask with ``fill``, the ignore index) until both sides are at least ``size``."""
    pad_h, pad_w = max(size - image.shape[0], 0), max(size - image.shape[1], 0)
    if pad_h or pad_w:
        image = np.pad(image, ((0, pad_h), (0, pad_w), (0, 0)))
        mask = np.pad(mask, ((0, pad_h), (0, pad_w)), constant_values=fill)
    return image, mask
