"""The networks that leave cellbench: one fold model with its normalisation and softmax built in,
and the mean of several such folds. What a user feeds them is what a camera gives (RGB 0..255), and
what comes out is what cellbench averages (softmax probabilities), so nothing of cellbench's
pre- and post-processing has to be re-implemented to use them.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch

from cellbench.errors import ConfigError, InputError, InputProblem
from cellbench.export import NOT_EXPORTABLE, refusal
from cellbench.training import models, targets


class FoldProbabilities(torch.nn.Module):
    """One fold model: (N, 3, H, W) float32 RGB 0..255 -> (N, C, H, W) softmax probabilities. The
    normalisation is the one cellbench applies (cellbench.device.normalise_planar: /255, minus the
    training mean, over the training std), in the same order, so the probabilities match."""

    def __init__(self, net: torch.nn.Module, mean: list[float], std: list[float]):
        super().__init__()
        self.net = net
        self.register_buffer("mean", torch.tensor(mean, dtype=torch.float32).view(1, -1, 1, 1))
        self.register_buffer("std", torch.tensor(std, dtype=torch.float32).view(1, -1, 1, 1))

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        x = (image / 255.0 - self.mean) / self.std
        return torch.softmax(self.net(x), dim=1)


class EnsembleProbabilities(torch.nn.Module):
    """The fold ensemble as one network: the mean of the folds' softmax probabilities (what
    cellbench averages before any argmax), for formats that hold a single network (BioImage Model
    Zoo)."""

    def __init__(self, folds: list[FoldProbabilities]):
        super().__init__()
        self.folds = torch.nn.ModuleList(folds)

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        total = None
        for fold in self.folds:
            p = fold(image)
            total = p if total is None else total + p
        return total / len(self.folds)


@dataclass
class Fold:
    """One checkpoint, loaded: the raw network (what cellbench runs), its exportable wrapper and its
    metadata."""

    checkpoint: Path
    net: torch.nn.Module
    meta: dict

    @property
    def module(self) -> FoldProbabilities:
        return FoldProbabilities(self.net, self.meta["mean"], self.meta["std"]).eval()

    @property
    def outputs(self) -> list[str]:
        return targets.outputs(list(self.meta["classes"]), self.meta.get("target", "classes"))


def check_exportable(meta: dict) -> None:
    """ConfigError naming the architecture and why, for the families that are no single network."""
    family = meta.get("family", "smp")
    arch = meta.get("arch", family)
    if family in NOT_EXPORTABLE:
        raise ConfigError(refusal(arch, family))
    if family != "smp":
        raise ConfigError(f"{arch} cannot be exported: unknown model family {family!r}")
    if int(meta.get("in_channels", 3)) != 3:
        raise ConfigError(f"{arch} cannot be exported: it takes {meta['in_channels']} input channels, and the "
                          "exported networks take RGB images")


def metadata(path: Path) -> dict:
    """A checkpoint's metadata (weights-only unpickling, the weights dropped); a file that is no
    cellbench checkpoint is an InputError naming it."""
    try:
        meta = torch.load(path, map_location="cpu", weights_only=True)
        meta.pop("state_dict")
        meta["arch"], meta["fold"]  # noqa: B018  (every checkpoint says what it is)
    except Exception as err:  # truncated, not a zip, a pickle with code, not a dict, keys missing
        raise InputError([InputProblem(Path(path), f"is not a cellbench checkpoint ({type(err).__name__})",
                                       "train the model again (its train step writes it)")]) from None
    return meta


def load_folds(checkpoints: list[Path]) -> list[Fold]:
    """The fold models of one architecture on the CPU; refused (before any weight is rebuilt) when
    they are no single network or do not form one ensemble."""
    metas = []
    for path in checkpoints:
        meta = metadata(Path(path))
        check_exportable(meta)
        metas.append(meta)
    shapes = {(m["arch"], m["encoder"], tuple(targets.outputs(list(m["classes"]), m.get("target", "classes"))))
              for m in metas}
    if len(shapes) > 1:
        raise ConfigError("the checkpoints of one export must be folds of one architecture with one encoder and "
                          f"the same outputs, not {sorted(shapes)}")
    folds = []
    for path in checkpoints:
        net, meta = models.load_checkpoint(Path(path), "cpu")
        folds.append(Fold(Path(path), net, meta))
    return folds


def divisor_of(folds: list[Fold]) -> int:
    """Input sides must be multiples of this (the largest size divisor of the folds, as cellbench pads)."""
    return max(int(f.meta.get("size_divisor") or models.size_divisor(f.net)) for f in folds)


@torch.no_grad()
def smallest_side(module: torch.nn.Module, divisor: int, most: int = 16) -> int:
    """The smallest multiple of ``divisor`` the network runs on (PAN's pooling needs 128 px, most
    architectures one divisor): the minimum tile side the exported networks declare."""
    for k in range(1, most + 1):
        side = k * divisor
        try:
            module(torch.zeros(1, 3, side, side))
        except RuntimeError:
            continue
        return side
    raise ConfigError(f"the network runs on no square input of {divisor} to {most * divisor} px")
