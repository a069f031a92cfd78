"""Mask R-CNN predictions: windows, one detection per object across overlaps, painting."""

import numpy as np
import pytest
import torch

from cellbench.errors import ConfigError
from cellbench.inference.detections import Detections, compose, detect, shares, window_starts
from cellbench.inference.ensemble import FoldModel, Windows

TYPES = {"cell": {"label": 1, "classes": [1, 2], "paints": 1}, "nucleus": {"label": 2, "classes": [2], "paints": 2}}


@pytest.mark.parametrize("size,tile,overlap", [(100, 100, 0.25), (300, 128, 0.25), (1000, 256, 0.5), (130, 128, 0)])
def test_windows_cover_the_axis_and_their_shares_partition_it(size, tile, overlap):
    starts = window_starts(size, tile, overlap)
    assert starts[0] == 0 and starts[-1] + tile == max(size, tile)
    assert all(b - a <= tile * (1 - overlap) + 1 for a, b in zip(starts, starts[1:], strict=False))
    parts = shares(starts, tile, size)
    assert parts[0][0] == 0 and parts[-1][1] == size
    assert all(a[1] == b[0] for a, b in zip(parts, parts[1:], strict=False))
    assert all(start <= low and high <= start + tile for start, (low, high) in zip(starts, parts, strict=True))


def crop(x0, y0, x1, y1):
    return ((x0, y0, x1, y1), np.ones((y1 - y0, x1 - x0), bool))


def test_compose_paints_cells_then_nuclei_and_the_best_score_wins():
    found = Detections(torch.tensor([[0, 0, 6, 6], [4, 0, 10, 6], [1, 1, 3, 3]], dtype=torch.float32),
                       torch.tensor([1, 1, 2]), torch.tensor([0.9, 0.6, 0.7]),
                       [crop(0, 0, 6, 6), crop(4, 0, 10, 6), crop(1, 1, 3, 3)])
    class_map, instances = compose(found, (8, 12), TYPES)
    assert class_map[2, 2] == 2 and class_map[5, 5] == 1 and class_map[7, 0] == 0
    cells = instances["cell"]
    assert cells.max() == 2 and cells[3, 4] == cells[0, 0] != cells[3, 8]  # overlap to the 0.9 cell
    assert (instances["nucleus"] > 0).sum() == 4


class FakeNet(torch.nn.Module):
    """Detects the one bright square of an image at a fixed place, in whatever window shows it."""

    def __init__(self):
        super().__init__()
        self.weight = torch.nn.Parameter(torch.zeros(1))
        self.transform = type("T", (), {"min_size": (1,), "max_size": 1})()
        self.seen = 0

    def forward(self, images):
        image = images[0][0]
        self.seen += 1
        ys, xs = torch.nonzero(image > 0.5, as_tuple=True)
        if len(ys) == 0:
            return [{"boxes": torch.zeros((0, 4)), "labels": torch.zeros(0, dtype=torch.int64),
                     "scores": torch.zeros(0), "masks": torch.zeros((0, 1, *image.shape))}]
        box = torch.tensor([[xs.min(), ys.min(), xs.max() + 1, ys.max() + 1]], dtype=torch.float32)
        mask = (image > 0.5).float()[None, None]
        return [{"boxes": box, "labels": torch.tensor([1]), "scores": torch.tensor([0.9]), "masks": mask}]


def test_an_object_seen_by_overlapping_windows_is_kept_once():
    image = np.zeros((100, 160, 3), np.uint8)
    image[40:50, 70:80] = 255  # inside the overlap of the windows at 0 and 64 (tile 96)
    model = FoldModel(FakeNet(), {"score_threshold": 0.5, "mask_threshold": 0.5, "classes": ["b", "c", "n"]})
    found = detect(image, [model], Windows(tile_size=96, overlap=0.5, amp=False))
    assert model.net.seen > 2 and len(found.masks) == 1
    (x0, y0, x1, y1), mask = found.masks[0]
    assert (x0, y0, x1, y1) == (70, 40, 80, 50) and mask.all()
    with pytest.raises(ConfigError, match="test-time augmentation"):
        detect(image, [model], Windows(tile_size=96, tta="flips"))
