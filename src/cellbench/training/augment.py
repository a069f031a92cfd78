"""Offline augmentation: every sample rotated and mirrored, stored as flat memory-mappable arrays.

The variants of all samples live in flat files (images.u8, masks.u8 and the instance maps
instances.i32); manifest.parquet gives each variant's source sample, angle, flip, shape and byte
offsets (read by cellbench.training.variants.VariantStore). A rotation reflects the image at its
borders, so an instance can appear twice; each connected piece of a rotated instance map becomes
its own instance, as targets that need instances (touching borders, Mask R-CNN boxes) require.
"""

from __future__ import annotations

import os
from pathlib import Path

os.environ.setdefault("NO_ALBUMENTATIONS_UPDATE", "1")  # no network call on import (offline nodes)

import albumentations as A  # noqa: E402
import cv2  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
from skimage.measure import label as connected_pieces  # noqa: E402

from cellbench.dataset import Dataset  # noqa: E402
from cellbench.fsutil import staged_dir  # noqa: E402


def variant_specs(rotations: int, flip: bool) -> list[tuple[float, bool]]:
    """(angle in degrees, mirrored) for every variant; the first is the original."""
    angles = [360.0 * k / rotations for k in range(rotations)]
    return [(angle, mirrored) for mirrored in ([False, True] if flip else [False]) for angle in angles]


def transform(image: np.ndarray, mask: np.ndarray, angle: float, mirrored: bool,
              instances: np.ndarray | None = None) -> tuple[np.ndarray, ...]:
    """Mirror (left-right) then rotate about the centre; masks nearest, borders reflected.
    Returns (image, mask), plus the instance map (int32, ids 1..N by connected piece) when given."""
    steps = [A.HorizontalFlip(p=1.0)] if mirrored else []
    if angle:
        steps.append(A.Rotate(limit=(angle, angle), interpolation=cv2.INTER_LINEAR,
                              mask_interpolation=cv2.INTER_NEAREST,
                              border_mode=cv2.BORDER_REFLECT_101, p=1.0))
    targets = {} if instances is None else {"instances": instances.astype(np.int32, copy=False)}
    out = A.Compose(steps, additional_targets=dict.fromkeys(targets, "mask"))(image=image, mask=mask, **targets)
    result = (np.ascontiguousarray(out["image"]), np.ascontiguousarray(out["mask"]))
    if instances is None:
        return result
    pieces = connected_pieces(out["instances"], background=0, connectivity=1).astype(np.int32)
    return (*result, np.ascontiguousarray(pieces))


def augment(data_dir: Path, out_dir: Path, rotations: int = 8, flip: bool = True) -> pd.DataFrame:
    """Write every rotation/flip variant of every ingested sample.

    Parameters
    ----------
    data_dir:
        The ingested dataset.
    out_dir:
        The folder to write: images.u8, masks.u8, instances.i32 (flat, memory-mappable) and
        manifest.parquet.
    rotations, flip:
        ``rotations`` angles evenly spaced over 360 degrees, of the image and (``flip``) its mirror.

    Returns
    -------
    The variant manifest: variant, sample_id, angle, flip, height, width and byte offsets.
    """
    data_dir = Path(data_dir)
    data = Dataset(data_dir)
    specs = variant_specs(rotations, flip)
    rows = []
    image_offset = mask_offset = instance_offset = 0
    with staged_dir(Path(out_dir), [data_dir]) as stage, \
            open(stage / "images.u8", "wb") as images, open(stage / "masks.u8", "wb") as masks, \
            open(stage / "instances.i32", "wb") as instance_file:
        for sample_id in data.ids:
            image, mask, instances = data.image(sample_id), data.class_map(sample_id), data.instances(sample_id)
            for angle, mirrored in specs:
                new_image, new_mask, new_instances = transform(image, mask, angle, mirrored, instances)
                images.write(new_image.tobytes())
                masks.write(new_mask.tobytes())
                instance_file.write(new_instances.astype("<i4").tobytes())
                rows.append({"variant": len(rows), "sample_id": sample_id, "angle": angle,
                             "flip": mirrored, "height": new_image.shape[0], "width": new_image.shape[1],
                             "image_offset": image_offset, "mask_offset": mask_offset,
                             "instance_offset": instance_offset})
                image_offset += new_image.nbytes
                mask_offset += new_mask.nbytes
                instance_offset += new_instances.nbytes
        table = pd.DataFrame(rows)
        table.to_parquet(stage / "manifest.parquet", index=False)
    return table
