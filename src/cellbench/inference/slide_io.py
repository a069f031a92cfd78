"""Whole slides read lazily, region by region: OME-TIFF, pyramidal or tiled TIFF (tifffile) and
OME-Zarr (zarr), full resolution only. Only the tiles or chunks a region covers are decoded, so a
slide of any size is never in memory; the pixels come out as 8-bit RGB, as read_image gives them.

Which images are slides: an OME-Zarr folder always; a TIFF when it is pyramidal or larger than
data.max_pixels (or when infer is told to treat every TIFF as one). Smaller images keep the
in-memory path and its PNG outputs.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from cellbench.images import ImageReadError
from cellbench.inference.inputs import is_zarr

log = logging.getLogger(__name__)
TIFF_SUFFIXES = (".tif", ".tiff")
MAX_CHUNK_BYTES = 1 << 30  # one stored tile or chunk larger than this is refused (a bomb, or a strip TIFF)
MAX_SLIDE_PIXELS = 10**11  # 316,000 pixels square: 6 times a 40x whole-slide scan; beyond it, a bomb


@dataclass
class Slide:
    """A full-resolution image readable by regions. ``axes``: the stored order (tifffile's letters,
    or OME-Zarr's axis names upper-cased), of which Y and X are the image and C or S the colour."""

    path: Path
    array: object  # zarr array or numpy memmap, indexable lazily
    axes: str
    scale: float  # 8-bit value = stored value * scale
    closer: object = None

    @property
    def shape(self) -> tuple[int, int]:
        return int(self.array.shape[self.axes.index("Y")]), int(self.array.shape[self.axes.index("X")])

    def read(self, top: int, bottom: int, left: int, right: int) -> np.ndarray:
        """(bottom - top, right - left, 3) uint8 RGB of a region."""
        index = []
        for axis in self.axes:
            index.append(slice(top, bottom) if axis == "Y" else slice(left, right) if axis == "X"
                         else slice(None) if axis in "CS" else 0)
        try:
            values = np.asarray(self.array[tuple(index)])
        except Exception as err:  # damaged tiles, a codec that is not installed, a truncated file
            raise ImageReadError(f"slide {self.path} cannot be read at rows {top}-{bottom}, columns {left}-{right} "
                                 f"({type(err).__name__}: {str(err)[:200]})",
                                 "a JPEG- or LZW-compressed slide needs `pip install imagecodecs`") from None
        kept = [a for a in self.axes if a in "YXCS"]
        if "C" in kept or "S" in kept:
            colour = "C" if "C" in kept else "S"
            values = np.moveaxis(values, [kept.index("Y"), kept.index("X"), kept.index(colour)], [0, 1, 2])
        else:
            values = values.transpose(kept.index("Y"), kept.index("X"))[..., None]
        if values.shape[2] == 1:
            values = np.repeat(values, 3, axis=2)
        values = values[..., :3]  # RGBA: the alpha is dropped, as read_image drops it
        if values.dtype != np.uint8:
            values = np.clip(np.rint(values.astype(np.float32) * self.scale), 0, 255).astype(np.uint8)
        return np.ascontiguousarray(values)

    def close(self) -> None:
        if self.closer is not None:
            self.closer.close()

    def __enter__(self) -> Slide:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def is_slide(path: Path, max_pixels: int | None, every_tiff: bool = False) -> bool:
    """Whether infer reads ``path`` lazily (see the module's docstring). Never raises: a file that
    cannot be opened is left to the decoding check, which names it."""
    path = Path(path)
    if is_zarr(path):
        return True
    if path.suffix.lower() not in TIFF_SUFFIXES:
        return False
    if every_tiff:
        return True
    try:
        import tifffile
        with tifffile.TiffFile(path) as tiff:
            series = tiff.series[0]
            level = series.levels[0]
            height, width = level.shape[level.axes.index("Y")], level.shape[level.axes.index("X")]
            return series.is_pyramidal or (max_pixels is not None and height * width > max_pixels)
    except Exception:  # noqa: BLE001  (anything unreadable is reported by the decoding check)
        return False


def _scale(dtype: np.dtype, path: Path) -> float:
    if dtype == np.uint8:
        return 1.0
    if dtype == np.uint16:
        return 255.0 / 65535.0
    raise ImageReadError(f"slide {path} holds {dtype} pixels; whole slides are read as 8- or 16-bit",
                         "convert it to 8- or 16-bit")


def _check_axes(axes: str, shape: tuple[int, ...], path: Path) -> None:
    if "Y" not in axes or "X" not in axes:
        raise ImageReadError(f"slide {path} has axes {axes}, without Y and X")
    colours = [a for a in axes if a in "CS"]
    if len(colours) > 1:
        raise ImageReadError(f"slide {path} has both channel and sample axes ({axes})", "save it as RGB or grey")
    if colours and shape[axes.index(colours[0])] not in (1, 3, 4):
        raise ImageReadError(f"slide {path} has {shape[axes.index(colours[0])]} channels; cellbench reads grey, "
                             "RGB or RGBA", "save the channels the models were trained on as RGB")


def _chunk_check(array, path: Path) -> None:
    chunks = getattr(array, "chunks", None)
    if chunks is not None and int(np.prod(chunks)) * np.dtype(array.dtype).itemsize > MAX_CHUNK_BYTES:
        raise ImageReadError(f"slide {path} stores chunks of {' x '.join(map(str, chunks))} values, too large to read "
                             "by regions", "save it tiled (e.g. 512 x 512 tiles) or as OME-Zarr")


def open_slide(path: Path) -> Slide:
    """The slide at ``path`` (a TIFF or an OME-Zarr folder), opened lazily. Raises ImageReadError
    naming the file for anything that is not a readable 8/16-bit grey or RGB(A) image."""
    path = Path(path)
    try:
        slide = _open_zarr(path) if is_zarr(path) else _open_tiff(path)
    except ImageReadError:
        raise
    except Exception as err:  # any damage, whatever the library raises
        raise ImageReadError(f"slide {path} cannot be read ({type(err).__name__}: {str(err)[:200]})") from None
    height, width = slide.shape
    if height * width > MAX_SLIDE_PIXELS or min(height, width) < 1:
        slide.close()
        raise ImageReadError(f"slide {path} declares {height} x {width} pixels, which no scan has",
                             "a small file that declares a huge image is a decompression bomb")
    return slide


def _open_tiff(path: Path) -> Slide:
    import tifffile
    import zarr
    tiff = tifffile.TiffFile(path)
    try:
        if not tiff.series or not tiff.series[0].shape:
            raise ImageReadError(f"slide {path} holds no image")
        series = tiff.series[0]
        level = series.levels[0]
        axes = level.axes
        _check_axes(axes, level.shape, path)
        scale = _scale(np.dtype(level.dtype), path)
        _warn_absent_tiles(level, path)
        if level.dataoffset is not None and not series.is_pyramidal and level.keyframe.compression == 1:
            # uncompressed and contiguous: mapped, the OS pages in only what a region touches
            array = tifffile.memmap(path, series=0, level=0, mode="r")
        else:
            array = zarr.open(series.aszarr(level=0), mode="r")
            _chunk_check(array, path)
        return Slide(path, array, axes, scale, tiff)
    except BaseException:
        tiff.close()
        raise


def _warn_absent_tiles(level, path: Path) -> None:
    """A tile or strip stored with no bytes is read as value 0 (black in brightfield, where it would
    look like dense nuclei): say so, naming the slide, rather than segment it silently."""
    counts = [count for page in level.pages if page is not None for count in page.databytecounts]
    absent = sum(count == 0 for count in counts)
    if absent:
        log.warning("slide %s: %d of %d stored tiles or strips are absent and read as 0 (black); objects found "
                    "there are not in the scan", path, absent, len(counts))


def _open_zarr(path: Path) -> Slide:
    import zarr
    group = zarr.open_group(str(path), mode="r")
    attributes = dict(group.attrs)
    multiscales = attributes.get("multiscales") or attributes.get("ome", {}).get("multiscales")
    if not multiscales:
        raise ImageReadError(f"slide {path} is a Zarr folder without OME-Zarr multiscales metadata",
                             "write it as OME-Zarr (e.g. with ome-zarr-py or bioformats2raw)")
    first = multiscales[0]
    array = group[first["datasets"][0]["path"]]
    names = first.get("axes") or ["t", "c", "z", "y", "x"][-len(array.shape):]
    axes = "".join(str(a["name"] if isinstance(a, dict) else a)[:1].upper() for a in names)
    if len(axes) != len(array.shape):
        raise ImageReadError(f"slide {path} declares {len(axes)} axes ({', '.join(map(str, names))}) for an array of "
                             f"{len(array.shape)} dimensions {tuple(array.shape)}", "fix its multiscales axes")
    _check_axes(axes, array.shape, path)
    _chunk_check(array, path)
    return Slide(path, array, axes, _scale(np.dtype(array.dtype), path))
