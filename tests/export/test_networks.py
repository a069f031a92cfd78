"""The exported networks: cellbench's normalisation and softmax inside, the folds' mean for one-network
formats, and the model families that are no single network refused with the reason."""

import pytest
import torch
from fold_checkpoints import CLASSES, save_fold

from cellbench.device import normalise_planar
from cellbench.errors import ConfigError, InputError
from cellbench.export import networks
from cellbench.export.export import export
from cellbench.training import models


def test_a_fold_takes_pixel_values_and_gives_cellbench_probabilities(unet_folds):
    (fold,) = networks.load_folds(unet_folds[1:])
    image = torch.rand(2, 3, 64, 96) * 255
    mean, std = torch.tensor(fold.meta["mean"]), torch.tensor(fold.meta["std"])
    with torch.no_grad():
        expected = torch.softmax(fold.net(normalise_planar(image, mean, std)), dim=1)
        got = fold.module(image)
    assert got.shape == (2, 3, 64, 96)
    assert torch.allclose(got.sum(1), torch.ones(2, 64, 96), atol=1e-5)
    assert (got - expected).abs().max() < 1e-5


def test_the_ensemble_is_the_mean_of_the_folds_softmax(unet_folds):
    folds = networks.load_folds(unet_folds)
    assert folds[0].meta["mean"] != folds[1].meta["mean"]  # each fold keeps its own normalisation
    image = torch.rand(1, 3, 64, 64) * 255
    with torch.no_grad():
        mean = (folds[0].module(image) + folds[1].module(image)) / 2
        ensemble = networks.EnsembleProbabilities([f.module for f in folds])(image)
    assert (ensemble - mean).abs().max() < 1e-6
    assert networks.divisor_of(folds) == 32 and networks.smallest_side(folds[0].module, 32) == 32


@pytest.mark.parametrize("arch, family, reason", [
    ("MaskRCNN", "maskrcnn", "detection post-processing"),
    ("NucleusGuided", "nucleus_guided", "Python-side object steps"),
])
def test_instance_and_two_stage_families_are_refused_with_the_reason(arch, family, reason, tmp_path, parity_images):
    path = tmp_path / "model.pt"
    models.save_checkpoint(path, {}, {"arch": arch, "family": family, "fold": 0, "classes": CLASSES,
                                      "in_channels": 3, "mean": [0.5] * 3, "std": [0.25] * 3})
    with pytest.raises(ConfigError) as caught:
        export([path], "torchscript", tmp_path / "out", parity_images)
    assert f"{arch} cannot be exported" in str(caught.value) and reason in str(caught.value)
    assert not (tmp_path / "out").exists()


def test_folds_of_different_architectures_are_no_ensemble(tmp_path, unet_folds):
    fpn = save_fold(tmp_path / "FPN" / "model.pt", arch="FPN")
    with pytest.raises(ConfigError, match="folds of one architecture"):
        networks.load_folds([unet_folds[0], fpn])


def test_a_damaged_checkpoint_is_named(tmp_path, unet_folds):
    broken = tmp_path / "model.pt"
    broken.write_bytes(unet_folds[0].read_bytes()[:4096])
    with pytest.raises(InputError) as caught:
        networks.load_folds([unet_folds[1], broken])
    assert [p.file for p in caught.value.problems] == [broken]
