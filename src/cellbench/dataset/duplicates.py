"""Recognising copies of one image: exact copies (identical decoded pixels) and near-duplicates (the
same picture re-encoded, resized or cropped by a few pixels), so that copies never sit in two folds.

- ``content_hash``: SHA-256 of the normalised RGB array ingest writes, shape included.
- ``perceptual_hash``: a 256-bit DCT hash (pHash). The grey image is area-averaged to 64 x 64 (any
  size, so resizing hardly matters), blurred a little, and the 16 x 16 lowest 2-D DCT frequencies
  but the constant one are compared with their median: 255 bits (plus one zero bit), 64 hex digits.
  Brightness and contrast changes and JPEG noise leave the low frequencies' signs alone; a crop of
  a few pixels shifts them a little.
- Two images are near-duplicates when their hashes differ in at most ``NEAR_THRESHOLD`` bits.
  Measured on the 100 WBC images (``benchmarks/duplicates_wbc.py``): the 4,950 pairs of distinct
  images differ in 88 bits or more (1st percentile 102, median 124: about half of 255, like
  unrelated hashes), while each image's JPEG re-encode (quality 75/90: at most 4 bits), 0.5x / 0.9x
  resize (12) and 2- or 4-pixel crop (24 / 38) differ in at most 38. The threshold 64 sits in the
  middle of that gap; the 65 DSB-2018 nuclei images are 98 bits apart or more.

- Rotated and mirrored copies: ``perceptual_hashes_d4`` hashes the eight rotations and mirrors of
  the thumbnail (the square's symmetries act on the DCT exactly: a transpose swaps u and v, a
  mirror changes the sign of the odd frequencies along its axis), and ``find`` compares each image
  with every other transform of the other, against its own threshold ``TURNED_THRESHOLD``: on the
  100 WBC images a rotated or mirrored copy (also re-encoded as JPEG, or cropped by 2 pixels and
  resized to 0.9x) is at most 24 bits from its source (the thumbnail's blocks are not quite
  symmetric), while the closest rotation or mirror of a distinct image is 60 bits away or more
  (0.1st percentile 86; ``benchmarks/duplicates_wbc.py``): 42 sits in the middle of that gap.

Images without any structure (a constant colour) all share one perceptual hash; they are reported
as near-duplicates of each other, which is what they are to a segmentation model.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

import numpy as np
from scipy import fft, ndimage

HASH_BITS = 256
NEAR_THRESHOLD = 64  # bits of HASH_BITS; see the module docstring and benchmarks/duplicates_wbc.py
TURNED_THRESHOLD = 42  # the same for a rotation or mirror of the other image (perceptual_hashes_d4)
_THUMB = 64  # side of the grey thumbnail the DCT is taken of
_FREQS = 16  # 16 x 16 lowest frequencies -> 256 bits (the constant term is always 0)
_LUMA = np.array([0.299, 0.587, 0.114])


def content_hash(rgb: np.ndarray) -> str:
    """SHA-256 (hex) of the decoded pixels and their shape and type: equal only for identical arrays."""
    rgb = np.ascontiguousarray(rgb)
    digest = hashlib.sha256(f"{rgb.dtype.str}{rgb.shape}".encode())
    digest.update(rgb.data)
    return digest.hexdigest()


def _area_mean(image: np.ndarray, size: int) -> np.ndarray:
    """``image`` (H x W or H x W x C) averaged over a size x size grid of (nearly) equal blocks; a
    side shorter than ``size`` repeats its pixels. Columns first: numpy sums along rows fast."""
    height, width = image.shape[:2]
    rows = np.linspace(0, height, size + 1).astype(np.intp)
    cols = np.linspace(0, width, size + 1).astype(np.intp)
    integer = image.dtype.kind in "ub" and image.itemsize == 1
    column_sums = np.add.reduceat(image, cols[:-1], axis=1, dtype=np.uint32 if integer else np.float64)
    sums = np.add.reduceat(column_sums, rows[:-1], axis=0, dtype=np.uint64 if integer else np.float64)
    counts = np.outer(np.maximum(np.diff(rows), 1), np.maximum(np.diff(cols), 1))
    return sums / (counts[..., None] if image.ndim == 3 else counts)


def thumbnail(rgb: np.ndarray) -> np.ndarray:
    """The blurred 64 x 64 grey thumbnail the perceptual hash is computed from (float64): the
    area mean of the RGB image, then luma (the same as the area mean of the luma)."""
    small = _area_mean(np.asarray(rgb), _THUMB)
    grey = small @ _LUMA if small.ndim == 3 else small
    return ndimage.gaussian_filter(grey, 1.0)


def _coefficients(rgb: np.ndarray) -> np.ndarray:
    """The 16 x 16 lowest DCT frequencies of the thumbnail."""
    return fft.dctn(thumbnail(rgb), norm="ortho")[:_FREQS, :_FREQS]


def _hash(coefficients: np.ndarray) -> str:
    bits = np.zeros(HASH_BITS, bool)
    ac = coefficients.ravel()[1:]
    bits[1:] = ac > np.median(ac)
    return np.packbits(bits).tobytes().hex()


def perceptual_hash(rgb: np.ndarray) -> str:
    """256-bit DCT hash (64 hex digits) of an RGB (or grey) image; see the module docstring."""
    return _hash(_coefficients(rgb))


def d4_coefficients(coefficients: np.ndarray) -> list[np.ndarray]:
    """The DCT coefficients of the eight rotations and mirrors of an image, from its own (identity
    first): a transpose transposes them; an up-down (left-right) mirror negates the odd rows (columns)."""
    signs = (-1.0) ** np.arange(coefficients.shape[0])
    found = []
    for square in (coefficients, coefficients.T):
        for rows in (False, True):
            for columns in (False, True):
                found.append(square * (signs[:, None] if rows else 1.0) * (signs[None, :] if columns else 1.0))
    return found


def perceptual_hashes_d4(rgb: np.ndarray) -> str:
    """The perceptual hashes of the image's eight rotations and mirrors, identity first, as one string
    of 8 x 64 hex digits (the manifest's perceptual_hash_d4)."""
    return "".join(_hash(c) for c in d4_coefficients(_coefficients(rgb)))


def _bits(hashes: list[str]) -> np.ndarray:
    """n x HASH_BITS array of 0/1 from hex hashes."""
    raw = np.frombuffer(b"".join(bytes.fromhex(h) for h in hashes), np.uint8).reshape(len(hashes), -1)
    return np.unpackbits(raw, axis=1)


def distance(a: str, b: str) -> int:
    """Number of bits in which two perceptual hashes differ."""
    return int(np.unpackbits(np.frombuffer(bytes.fromhex(a), np.uint8) ^ np.frombuffer(bytes.fromhex(b), np.uint8))
               .sum())


def distances(hashes: list[str]) -> np.ndarray:
    """n x n matrix of pairwise perceptual-hash distances (int)."""
    bits = _bits(hashes).astype(np.float32)
    ones = bits.sum(axis=1)
    same_ones = bits @ bits.T
    return np.rint(ones[:, None] + ones[None, :] - 2 * same_ones).astype(np.int64)


@dataclass(frozen=True)
class NearPair:
    """Two samples whose perceptual hashes differ in ``distance`` bits (and whose pixels differ)."""

    a: str
    b: str
    distance: int


@dataclass(frozen=True)
class Duplicates:
    """Copies among a set of samples: ``exact`` = sets of sample ids with identical pixels (each set
    sorted, sets sorted), ``near`` = near-duplicate pairs with different pixels (sorted)."""

    exact: list[list[str]]
    near: list[NearPair]
    threshold: int = NEAR_THRESHOLD

    def __bool__(self) -> bool:
        return bool(self.exact or self.near)


def find(sample_ids: list[str], content_hashes: list[str], perceptual_hashes: list[str],
         threshold: int = NEAR_THRESHOLD, block: int = 2048, d4_hashes: list[str] | None = None) -> Duplicates:
    """Exact-duplicate sets and near-duplicate pairs (distance <= threshold) among the samples; with
    ``d4_hashes`` (perceptual_hashes_d4 of each sample) a pair is also near when one image is within
    TURNED_THRESHOLD bits of a rotation or mirror of the other (its distance is then that one).

    Pairs are compared in blocks of ``block`` rows, so memory stays small for many thousand images.
    """
    ids = [str(s) for s in sample_ids]
    by_content: dict[str, list[str]] = {}
    for sample_id, digest in zip(ids, content_hashes, strict=True):
        by_content.setdefault(digest, []).append(sample_id)
    exact = sorted(sorted(members) for members in by_content.values() if len(members) > 1)
    near = []
    if ids:
        bits = _bits(list(perceptual_hashes)).astype(np.float32)
        ones = bits.sum(axis=1)
        turned = [] if d4_hashes is None else [
            _bits([h[64 * t:64 * (t + 1)] for h in d4_hashes]).astype(np.float32) for t in range(1, 8)]
        for start in range(0, len(ids), block):
            rows = slice(start, start + block)
            dist = np.rint(ones[rows, None] + ones[None, :] - 2 * bits[rows] @ bits.T).astype(np.int64)
            for other in turned:  # a turned copy counts when it is within its own, stricter threshold
                part = np.rint(ones[rows, None] + other.sum(axis=1)[None, :] - 2 * bits[rows] @ other.T)
                part = part.astype(np.int64)
                dist = np.where((part <= min(threshold, TURNED_THRESHOLD)) & (part < dist), part, dist)
            for i, j in np.argwhere(dist <= threshold):
                i += start
                if i < j and content_hashes[i] != content_hashes[j]:
                    a, b = sorted((ids[i], ids[j]))
                    near.append(NearPair(a, b, int(dist[i - start, j])))
    return Duplicates(exact, sorted(near, key=lambda p: (p.a, p.b)), threshold)


def report_lines(found: Duplicates, names: dict[str, str] | None = None,
                 group_near_duplicates: bool | None = True) -> list[str]:
    """One line per exact-duplicate set and per near-duplicate pair, saying what split does with them
    (``group_near_duplicates`` None: the setting is not known here). ``names``: sample id -> file."""
    names = names or {}
    lines = []
    for members in found.exact:
        shown = ", ".join(names.get(m, m) for m in members)
        lines.append(f"exact duplicates (identical pixels): {shown}: they will be grouped into one fold")
    if group_near_duplicates is None:
        fate = "split groups them into one fold unless split.group_near_duplicates is false"
    elif group_near_duplicates:
        fate = "they will be grouped into one fold (split.group_near_duplicates: true)"
    else:
        fate = "they will NOT be grouped (split.group_near_duplicates: false) and may sit in different folds"
    for pair in found.near:
        lines.append(f"near duplicates (perceptual-hash distance {pair.distance} of {HASH_BITS} bits, threshold "
                     f"{found.threshold}): {names.get(pair.a, pair.a)}, {names.get(pair.b, pair.b)}: {fate}")
    return lines


class UnionFind:
    """Disjoint sets over 0..n-1."""

    def __init__(self, n: int):
        self.parent = list(range(n))

    def find(self, i: int) -> int:
        while self.parent[i] != i:
            self.parent[i] = self.parent[self.parent[i]]
            i = self.parent[i]
        return i

    def union(self, i: int, j: int) -> None:
        a, b = self.find(i), self.find(j)
        if a != b:
            self.parent[max(a, b)] = min(a, b)

    def components(self) -> list[int]:
        """The representative (smallest index) of every element's set."""
        return [self.find(i) for i in range(len(self.parent))]
