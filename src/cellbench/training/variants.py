"""Reading the augmented variants written by cellbench.augment, memory-mapped.

A training job maps the flat files once and reads exactly the variants of its fold's training
samples, without decoding any image.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from cellbench.errors import InputError, InputProblem


class VariantStore:
    """Read-only, memory-mapped access to the augmented variants."""

    def __init__(self, folder: Path):
        self.folder = Path(folder)
        self.manifest = pd.read_parquet(self.folder / "manifest.parquet")
        self._open()
        self._shape = self.manifest[["height", "width"]].to_numpy()
        self._offsets = self.manifest[["image_offset", "mask_offset"]].to_numpy()

    def _open(self) -> None:
        self._images = np.memmap(self.folder / "images.u8", dtype=np.uint8, mode="r")
        self._masks = np.memmap(self.folder / "masks.u8", dtype=np.uint8, mode="r")
        instances = self.folder / "instances.i32"
        self._instances = np.memmap(instances, dtype="<i4", mode="r") if instances.exists() else None

    def __getstate__(self) -> dict:  # data-loader workers re-map the files instead of copying them
        return {k: v for k, v in self.__dict__.items() if k not in ("_images", "_masks", "_instances")}

    def __setstate__(self, state: dict) -> None:
        self.__dict__.update(state)
        self._open()

    def __len__(self) -> int:
        return len(self.manifest)

    def variants_of(self, sample_ids) -> np.ndarray:
        """Row numbers of every variant of the given samples."""
        return np.flatnonzero(self.manifest["sample_id"].isin(set(sample_ids)).to_numpy())

    def sample_of(self, row: int) -> str:
        return self.manifest["sample_id"].iat[row]

    def shape(self, row: int) -> tuple[int, int]:
        height, width = self._shape[row]
        return int(height), int(width)

    def get(self, row: int) -> tuple[np.ndarray, np.ndarray]:
        """Image (H, W, 3) and mask (H, W) of one variant, as read-only views."""
        height, width = self._shape[row]
        image_at, mask_at = self._offsets[row]
        n = int(height) * int(width)
        image = self._images[image_at:image_at + 3 * n].reshape(height, width, 3)
        mask = self._masks[mask_at:mask_at + n].reshape(height, width)
        return image, mask

    def instances(self, row: int) -> np.ndarray:
        """Instance map (H, W) int32 of one variant (ids 1..N by connected piece), read-only."""
        if self._instances is None or "instance_offset" not in self.manifest:
            raise InputError([InputProblem(self.folder / "instances.i32", "is missing: these variants were "
                                           "written by an older cellbench without instance maps",
                                           "run the augment step again")])
        height, width = self._shape[row]
        at = int(self.manifest["instance_offset"].iat[row]) // 4
        return self._instances[at:at + int(height) * int(width)].reshape(height, width)
