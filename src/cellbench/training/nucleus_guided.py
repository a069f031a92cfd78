"""The two-stage nucleus-guided method (SegPC-2021's second place) as a cellbench model family.

Stage 1, an smp model, tells nucleus from the rest; each connected nucleus is one cell. Stage 2,
a second smp model with a 4th input channel, sees a square crop centred on one nucleus (side =
scale x the nucleus's size) with that nucleus's mask and predicts the cytoplasm of that nucleus's
cell. Both train in one optimiser step on the fold's training variants: stage 1 on the random
crops every model trains on, stage 2 on cells drawn from the same variants at a random scale, their
reference nuclei as the guide. The scales come from the training cells' cytoplasm/nucleus area
ratios unless given (cellbench.inference.nucleus_guided turns both stages into class and instance
maps).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from scipy import ndimage

from cellbench.classmaps import IGNORE_INDEX
from cellbench.device import normalise
from cellbench.errors import ConfigError
from cellbench.inference.cell_crops import CropBox, cut, resize
from cellbench.training import models
from cellbench.training.variants import VariantStore

ARCH = "NucleusGuided"
FAMILY = "nucleus_guided"
CONTEXT = 2.0  # crop side per cell side: room for a nucleus at the edge of its cell
TOP_LEVEL = 0.98  # the largest scale's quantile of the training ratios (the largest cells, less outliers)
SHAPE = ("stage1_arch", "stage2_arch", "input_size", "aggregation", "ratio_threshold", "stage2_nuclei")


def roles(classes: list[str], settings) -> tuple[int, int]:
    """(cytoplasm index, nucleus index); refused unless the classes are background plus those two."""
    names = (settings["cytoplasm_class"], settings["nucleus_class"])
    missing = [name for name in names if name not in classes]
    if missing or len(classes) != 3:
        raise ConfigError(f"NucleusGuided needs classes [background, {names[0]}, {names[1]}] "
                          f"(nucleus_guided.cytoplasm_class and nucleus_class), not {classes}")
    return classes.index(names[0]), classes.index(names[1])


class NucleusGuidedNet(torch.nn.Module):
    """Both stages in one module: one optimiser, one checkpoint."""

    def __init__(self, stage1_arch: str, stage2_arch: str, encoder: str, encoder_weights: str | None = None):
        super().__init__()
        self.stage1 = models.build(stage1_arch, encoder, 2, encoder_weights)
        self.stage2 = models.build(stage2_arch, encoder, 2, encoder_weights, in_channels=4)


@dataclass(frozen=True)
class Cell:
    """One annotated cell of a training variant with a nucleus: where its nucleus is."""

    row: int
    instance: int
    centre: tuple[float, float]
    nucleus_area: int
    cytoplasm_area: int


def cells_of(class_map: np.ndarray, instance_map: np.ndarray, cytoplasm: int, nucleus: int, row: int = -1
             ) -> list[Cell]:
    """The cells of one image that have a nucleus (a cell's nucleus is every nucleus pixel of it)."""
    nuclear = (class_map == nucleus) & (instance_map > 0)
    ids = [int(i) for i in np.unique(instance_map[nuclear])]
    if not ids:
        return []
    labels = np.where(nuclear, instance_map, 0)
    areas = ndimage.sum_labels(nuclear, labels, ids)
    centres = ndimage.center_of_mass(nuclear, labels, ids)
    plasm = (class_map == cytoplasm) & (instance_map > 0)
    cyto_areas = ndimage.sum_labels(plasm, np.where(plasm, instance_map, 0), ids)
    return [Cell(row, i, (float(c[0]), float(c[1])), int(a), int(b))
            for i, c, a, b in zip(ids, centres, areas, cyto_areas, strict=True)]


def choose_scales(cells: list[Cell], n_scales: int) -> tuple[list[float], list[float]]:
    """(scales, the cytoplasm/nucleus area ratio each is for): quantiles of the training cells'
    ratios at n evenly spaced levels up to TOP_LEVEL, scale = CONTEXT x sqrt(1 + ratio)."""
    if not cells:
        raise ConfigError("NucleusGuided: no training cell has a nucleus (check the classes and the instance maps)")
    ratios = np.array([c.cytoplasm_area / max(c.nucleus_area, 1) for c in cells])
    levels = np.linspace(TOP_LEVEL / n_scales, TOP_LEVEL, n_scales)
    fitted = np.maximum.accumulate(np.quantile(ratios, levels))
    return [float(CONTEXT * np.sqrt(1 + r)) for r in fitted], [float(r) for r in fitted]


def ratios_of(scales: list[float]) -> list[float]:
    """The ratio each explicit scale fits (the inverse of choose_scales' formula)."""
    return [max((s / CONTEXT) ** 2 - 1, 0.0) for s in scales]


def guide_input(picture: np.ndarray, guide: np.ndarray, size: int, mean: torch.Tensor, std: torch.Tensor
                ) -> torch.Tensor:
    """(4, size, size) float from a crop (s, s, 3) uint8 and its nucleus mask (s, s): the normalised
    picture and the mask (-1 outside, +1 inside)."""
    rgb = torch.from_numpy(picture).permute(2, 0, 1).float() / 255
    mask = torch.from_numpy(guide).float()[None]
    rgb = (resize(rgb, size) - mean[:, None, None]) / std[:, None, None]
    return torch.cat([rgb, resize(mask, size) * 2 - 1])


class CellSamples:
    """Stage 2's training examples: a random cell of the fold's training variants at a random scale.
    Draws come from torch's global generator, which a resumed run restores."""

    def __init__(self, store: VariantStore, rows: np.ndarray, cytoplasm: int, nucleus: int):
        self.store, self.cytoplasm, self.nucleus = store, cytoplasm, nucleus
        self.cells = [cell for row in rows for cell in cells_of(store.get(int(row))[1], store.instances(int(row)),
                                                                 cytoplasm, nucleus, int(row))]

    def draw(self, n: int, scales: list[float]) -> list[tuple[np.ndarray, np.ndarray, np.ndarray]]:
        """n random cells at random scales: (picture (s, s, 3) uint8, reference nucleus (s, s) uint8,
        target (s, s) int64: 1 the cell's cytoplasm, 0 anything else, IGNORE_INDEX outside the image)."""
        picks = torch.randint(len(self.cells), (n,)).tolist()
        levels = torch.randint(len(scales), (n,)).tolist()
        drawn = []
        for pick, level in zip(picks, levels, strict=True):
            cell = self.cells[pick]
            image, class_map = self.store.get(cell.row)
            box = CropBox.around(cell.centre, cell.nucleus_area, scales[level])
            own = cut(self.store.instances(cell.row), box) == cell.instance
            classes = cut(class_map, box, fill=IGNORE_INDEX)
            guide = (own & (classes == self.nucleus)).astype(np.uint8)
            target = np.where(classes == IGNORE_INDEX, IGNORE_INDEX, own & (classes == self.cytoplasm))
            drawn.append((cut(image, box), guide, target.astype(np.int64)))
        return drawn


def stage2_batch(drawn: list[tuple[np.ndarray, np.ndarray, np.ndarray]], size: int, mean: torch.Tensor,
                 std: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(inputs (n, 4, size, size) float, targets (n, size, size) int64) of drawn cells."""
    inputs = [guide_input(picture, guide, size, mean, std) for picture, guide, _ in drawn]
    targets = [resize(torch.from_numpy(target)[None], size, "nearest")[0] for _, _, target in drawn]
    return torch.stack(inputs), torch.stack(targets)


@torch.no_grad()
def predicted_guides(stage1: torch.nn.Module, drawn: list, mean: torch.Tensor, std: torch.Tensor, divisor: int
                     ) -> list[tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """The drawn cells with stage 1's current nucleus in place of the reference one: the predicted
    component that covers most of the reference nucleus (the reference itself where stage 1 finds
    none, so that every drawn cell is trained on)."""
    from skimage.measure import label as connected_components

    was_training = stage1.training
    stage1.eval()
    out = []
    try:
        for picture, guide, target in drawn:
            side = picture.shape[0]
            padded = -(-side // divisor) * divisor
            batch = torch.from_numpy(np.ascontiguousarray(picture))[None].to(mean.device)
            x = torch.nn.functional.pad(normalise(batch, mean, std), (0, padded - side, 0, padded - side))
            found = (stage1(x)[0].argmax(0)[:side, :side] == 1).cpu().numpy()
            parts = connected_components(found, connectivity=1)
            hits = np.bincount(parts[guide > 0], minlength=parts.max() + 1)
            hits[0] = 0
            chosen = (parts == hits.argmax()).astype(np.uint8) if hits.max() > 0 else guide
            out.append((picture, chosen, target))
    finally:
        stage1.train(was_training)
    return out


def min_nucleus_area(cells: list[Cell]) -> float:
    """Predicted nuclei smaller than this are specks, not cells: half the 1st percentile of the
    training nuclei's areas."""
    return max(1.0, 0.5 * float(np.quantile([c.nucleus_area for c in cells], 0.01)))


def batch_loss(segmentation, samples: CellSamples, family: dict, mean: list[float], std: list[float],
               device: torch.device):
    """loss(model, images uint8 (B, H, W, 3), class maps int64 (B, H, W)): stage 1's loss on the crops
    (nucleus against the rest) plus stage 2's on as many cells drawn from the variants, guided by
    their reference nuclei or by stage 1's (family["stage2_nuclei"])."""
    mean_t, std_t = torch.tensor(mean, device=device), torch.tensor(std, device=device)
    mean_c, std_c = torch.tensor(mean), torch.tensor(std)
    scales, size, nucleus = family["scales"], family["input_size"], family["nucleus"]

    def loss(model, images: torch.Tensor, masks: torch.Tensor) -> torch.Tensor:
        nuclei = torch.where(masks == IGNORE_INDEX, IGNORE_INDEX, (masks == nucleus).long())
        first = segmentation(model.stage1(normalise(images, mean_t, std_t)), nuclei)
        drawn = samples.draw(len(images), scales)
        if family["stage2_nuclei"] == "predicted":
            drawn = predicted_guides(model.stage1, drawn, mean_t, std_t, family["size_divisor"])
        inputs, targets = stage2_batch(drawn, size, mean_c, std_c)
        second = segmentation(model.stage2(inputs.to(device, non_blocking=True)), targets.to(device))
        return first + second

    return loss


def build_trainer_parts(classes: list[str], settings, encoder: str, encoder_weights: str | None,
                        store: VariantStore, rows: np.ndarray) -> tuple[NucleusGuidedNet, CellSamples, dict]:
    """The fresh two-stage model, its stage-2 examples and the checkpoint fields that rebuild it and
    tell inference how to use it (scales chosen here, from these training variants alone)."""
    cytoplasm, nucleus = roles(classes, settings)
    net = NucleusGuidedNet(settings["stage1_arch"], settings["stage2_arch"], encoder, encoder_weights)
    divisor = models.size_divisor(net.stage2)
    if settings["input_size"] % divisor:
        raise ConfigError(f"nucleus_guided.input_size {settings['input_size']} is not a multiple of {divisor} "
                          f"(required by {settings['stage2_arch']})")
    samples = CellSamples(store, rows, cytoplasm, nucleus)
    if not samples.cells:
        raise ConfigError("NucleusGuided: no training cell has a nucleus (check the classes, "
                          "nucleus_guided.nucleus_class and the instance maps)")
    if settings["scales"]:
        scales = sorted(float(s) for s in settings["scales"])
        ratios = ratios_of(scales)
    else:
        scales, ratios = choose_scales(samples.cells, settings["n_scales"])
    meta = {"family": FAMILY, "encoder": encoder, "cytoplasm": cytoplasm, "nucleus": nucleus,
            **{key: settings[key] for key in SHAPE}, "scales": scales, "scale_ratios": ratios,
            "min_nucleus_area": min_nucleus_area(samples.cells),
            "size_divisor": models.size_divisor(net.stage1)}
    return net, samples, meta


def rebuild(meta: dict) -> NucleusGuidedNet:
    """The untrained network of a checkpoint's fields (load_state_dict fills it)."""
    return NucleusGuidedNet(meta["stage1_arch"], meta["stage2_arch"], meta["encoder"])
