"""TorchScript files of every fold: loaded back with torch.jit.load, their probabilities are
cellbench's own on real images, at any height, width and batch size."""

import numpy as np
import torch

from cellbench.export.export import export
from cellbench.images import read_image
from cellbench.inference.ensemble import Windows, probabilities
from cellbench.inference.segment import load_models


def test_torchscript_folds_reproduce_cellbench_probabilities(unet_folds, parity_images, tmp_path):
    out = tmp_path / "torchscript"
    record = export(unet_folds, "torchscript", out, parity_images, tile_size=256, overlap=0.5, tta="flips",
                    parity_side=160)
    assert sorted(p.name for p in out.iterdir()) == [".cellbench-output", "fold0.pt", "fold1.pt", "manifest.json"]
    assert all(r["max_abs_diff"] <= 1e-4 for r in record["parity"]["results"].values())
    assert record["tta"]["views"] == ["rot0", "rot0_mirror", "rot180_mirror", "rot180"]
    assert (record["tiling"]["tile_size"], record["tiling"]["overlap"]) == (256, 0.5)

    crop = read_image(parity_images[1]).rgb[-96:, :64]
    fold1 = torch.jit.load(str(out / "fold1.pt"))
    with torch.no_grad():
        got = fold1(torch.from_numpy(np.stack([crop, crop[::-1]]).transpose(0, 3, 1, 2).astype(np.float32)))
    model = load_models(unet_folds[1:], "cpu")
    for index, pixels in enumerate([crop, crop[::-1]]):
        expected = probabilities(np.ascontiguousarray(pixels), model, Windows(tile_size=None, amp=False),
                                 torch.device("cpu")).mean
        assert np.abs(got[index].numpy() - expected).max() <= 1e-4
