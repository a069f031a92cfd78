"""A slide's label images, written block by block: OME-Zarr 0.4 (its labels group: one multiscale
label image per map, chunked, which napari, QuPath and Fiji's OME-Zarr readers open), and on
request each map again as a tiled, compressed (Big)TIFF streamed from the Zarr store.

The class map is uint8; the instance maps are uint32, so a slide may hold billions of objects.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

CHUNK = 1024
TIFF_TILE = 512
CLASS_MAP = "class_map"
OUTPUT_MAP = "outputs"  # a touching-border model's chosen outputs (border included): pass 2 reads it


def _multiscale(name: str) -> dict:
    return {"version": "0.4", "name": name, "axes": [{"name": "y", "type": "space"}, {"name": "x", "type": "space"}],
            "datasets": [{"path": "0", "coordinateTransformations": [{"type": "scale", "scale": [1.0, 1.0]}]}]}


class LabelStore:
    """<path>/labels/<map>/0 for the class map and every object type, all ``shape`` (rows, columns)."""

    def __init__(self, path: Path, shape: tuple[int, int], object_types: list[str], classes: list[str],
                 source: str, outputs: bool = False):
        import zarr
        self.path = Path(path)
        root = zarr.open_group(str(self.path), mode="w-", zarr_format=2)
        root.attrs["cellbench"] = {"source": source, "classes": list(classes), "object_types": list(object_types)}
        labels = root.create_group("labels")
        names = [CLASS_MAP, *object_types]
        labels.attrs["labels"] = names
        self.maps = {}
        for name in names:
            group = labels.create_group(name)
            group.attrs["multiscales"] = [_multiscale(name)]
            group.attrs["image-label"] = {"version": "0.4", "source": {"image": "../../"}}
            dtype = np.uint8 if name == CLASS_MAP else np.uint32
            self.maps[name] = group.create_array("0", shape=tuple(shape), chunks=(CHUNK, CHUNK), dtype=dtype,
                                                 fill_value=0, chunk_key_encoding={"name": "v2", "separator": "/"})
        if outputs:  # working data, not a label image: removed by close()
            self.maps[OUTPUT_MAP] = root.create_array(OUTPUT_MAP, shape=tuple(shape), chunks=(CHUNK, CHUNK),
                                                      dtype=np.uint8, fill_value=0)

    def read(self, name: str, region: tuple[int, int, int, int]) -> np.ndarray:
        top, bottom, left, right = region
        return self.maps[name][top:bottom, left:right]

    def close(self) -> None:
        """Remove the working data (the output map of a touching-border model)."""
        if OUTPUT_MAP in self.maps:
            import shutil
            del self.maps[OUTPUT_MAP]
            shutil.rmtree(self.path / OUTPUT_MAP, ignore_errors=True)

    def write(self, name: str, region: tuple[int, int, int, int], values: np.ndarray) -> None:
        top, bottom, left, right = region
        self.maps[name][top:bottom, left:right] = values

    def add_objects(self, name: str, region: tuple[int, int, int, int], labels: np.ndarray) -> int:
        """Write the non-zero pixels of ``labels`` (global ids) into ``region``, leaving pixels that an
        earlier block's object already holds as they are; the number of such pixels."""
        top, bottom, left, right = region
        current = self.maps[name][top:bottom, left:right]
        new = labels > 0
        taken = new & (current > 0)
        current[new & ~taken] = labels[new & ~taken]
        self.maps[name][top:bottom, left:right] = current
        return int(taken.sum())

    def to_tiff(self, name: str, path: Path) -> None:
        """The map as a tiled, zlib-compressed TIFF, read from the store a band of tiles at a time."""
        import tifffile
        array = self.maps[name]
        height, width = array.shape

        def tiles():
            for top in range(0, height, TIFF_TILE):
                band = array[top:min(top + TIFF_TILE, height), :]
                for left in range(0, width, TIFF_TILE):
                    yield band[:, left:left + TIFF_TILE]

        big = height * width * array.dtype.itemsize > 2**31
        tifffile.imwrite(path, tiles(), shape=(height, width), dtype=array.dtype, tile=(TIFF_TILE, TIFF_TILE),
                         compression="zlib", photometric="minisblack", bigtiff=big, metadata=None)
