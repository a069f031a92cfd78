"""Kaggle run-length encoding (DSB 2018): "start length" pairs, 1-indexed, column-major."""

from __future__ import annotations

import numpy as np


def decode(encoded: str, height: int, width: int) -> np.ndarray:
    """Boolean (height, width) mask. Raises ValueError for malformed or out-of-range runs."""
    try:
        numbers = np.array(encoded.split(), dtype=np.int64)
    except (ValueError, OverflowError):  # OverflowError: beyond 64 bits
        raise ValueError(f"not a list of integers: {encoded[:40]!r}") from None
    if numbers.size % 2:
        raise ValueError(f"odd number of values ({numbers.size}): runs are 'start length' pairs")
    starts, lengths = numbers[0::2] - 1, numbers[1::2]
    if (starts < 0).any() or (lengths < 1).any():
        raise ValueError("run starts must be >= 1 and lengths >= 1")
    too_far = (starts >= height * width) | (lengths > height * width)  # checked first: start + length could overflow
    ends = np.where(too_far, height * width + 1, starts + lengths)
    if ends.max(initial=0) > height * width:
        end = int(starts[too_far][0]) + int(lengths[too_far][0]) if too_far.any() else int(ends.max())
        raise ValueError(f"a run ends at pixel {end} beyond the {height} x {width} image")
    flat = np.zeros(height * width + 1, dtype=np.int32)
    np.add.at(flat, starts, 1)
    np.add.at(flat, ends, -1)
    return np.cumsum(flat[:-1]).reshape(width, height).T > 0


def encode(mask: np.ndarray) -> str:
    """Run-length string of a boolean mask (column-major, 1-indexed)."""
    flat = np.concatenate([[0], mask.T.ravel().astype(np.int8), [0]])
    edges = np.flatnonzero(np.diff(flat)) + 1
    starts, ends = edges[0::2], edges[1::2]
    return " ".join(f"{s} {e - s}" for s, e in zip(starts, ends, strict=True))
