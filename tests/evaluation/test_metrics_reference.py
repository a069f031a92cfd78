"""Our metric code against the reference implementations, on the 65 DSB-2018 test images (in
../shared/data) and on instance maps drawn here with scikit-image (always, with the packages only).

Predictions are made from the truth by eroding, dilating, shifting, merging, splitting, dropping
and adding objects. Cellpose's `average_precision` (StarDist's matching) must give the same tp,
fp, fn at every threshold; nnU-Net v2's `compute_tp_fp_fn_tn` the same pixel counts. Cellpose's
`aggregated_jaccard_index` is not Kumar's AJI (it divides by the union of all foreground), so AJI,
AJI+, SegPC mIoU and the GlaS metrics are checked on hand-computed cases in test_object_metrics.py.
"""

import numpy as np
import pytest
from helpers import reference, shared
from PIL import Image
from scipy import ndimage
from skimage import draw
from skimage.segmentation import expand_labels

from cellbench.classmaps import sequential
from cellbench.evaluation import object_metrics, semantic_metrics
from cellbench.formats.instance_folders import mask_files
from cellbench.formats.instance_masks import paint


def dsb_truths():
    root = shared("dsb2018-stage1-test", "stage1_test")
    for sample in sorted(p for p in root.iterdir() if p.is_dir()):
        masks = [np.asarray(Image.open(p).convert("L")) > 0 for p in mask_files(sample)]
        _, instances, _ = paint(masks, masks[0].shape, 1)
        yield sample.name, instances.astype(np.int32)


def drawn_truths():
    """Deterministic instance maps: overlapping and touching ellipses (later ones on top), objects cut
    by the border or painted over in part, a grid of 324 tiny objects (ids above 255), an empty image."""
    for seed, shape in enumerate([(64, 96), (128, 128), (40, 200), (97, 61)]):
        rng = np.random.default_rng(seed)
        truth = np.zeros(shape, np.int32)
        for label in range(1, int(rng.integers(12, 40))):
            rr, cc = draw.ellipse(rng.uniform(-5, shape[0] + 5), rng.uniform(-5, shape[1] + 5), rng.uniform(2, 12),
                                  rng.uniform(2, 12), shape=shape, rotation=rng.uniform(0, np.pi))
            truth[rr, cc] = label
        yield f"drawn_{seed}", relabel(truth)
    grid = np.zeros((110, 110), np.int32)
    for k in range(18 * 18):
        r, c = divmod(k, 18)
        grid[6 * r + 1:6 * r + 5, 6 * c + 1:6 * c + 5] = k + 1
    yield "grid_324", grid
    yield "empty", np.zeros((30, 40), np.int32)


def perturbations(truth: np.ndarray, seed: int) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    n = truth.max()
    same = ndimage.minimum_filter(truth, 3) == ndimage.maximum_filter(truth, 3)
    split = truth.copy()
    centre_cols = ndimage.center_of_mass(np.ones_like(truth), truth, range(1, n + 1))
    cut = np.zeros(n + 1)
    cut[1:] = [c[1] for c in centre_cols]
    cols = np.broadcast_to(np.arange(truth.shape[1]), truth.shape)
    right = (truth > 0) & (cols > cut[truth])
    split[right] += n
    added = truth.copy()
    for _ in range(5):
        r, c = rng.integers(0, truth.shape[0] - 6), rng.integers(0, truth.shape[1] - 6)
        added[r:r + 6, c:c + 6] = np.where(added[r:r + 6, c:c + 6] == 0, added.max() + 1, added[r:r + 6, c:c + 6])
    return {
        "eroded": np.where(same & (truth > 0), truth, 0),
        "dilated": expand_labels(truth, 2),
        "shifted": np.roll(truth, (2, 3), axis=(0, 1)),
        "merged": np.where(truth > 0, (truth + 1) // 2, 0),
        "split": split,
        "dropped": np.where(truth % 3 == 0, 0, truth),
        "added": added,
    }


def relabel(instances):
    return sequential(instances)[0]


def perturbed(truths):
    return [(name, kind, truth, relabel(pred)) for i, (name, truth) in enumerate(truths)
            for kind, pred in perturbations(truth, i).items()]


@pytest.fixture(scope="module")
def cases():
    return perturbed(dsb_truths())


@pytest.fixture(scope="module")
def drawn_cases():
    return perturbed(drawn_truths())


def test_matching_counts_equal_cellpose_average_precision(cases):
    cellpose_metrics = reference("cellpose.metrics")
    assert len({name for name, *_ in cases}) == 65
    check_matching_counts(cellpose_metrics, cases)


def test_matching_counts_equal_cellpose_on_drawn_instances(drawn_cases):
    cellpose_metrics = reference("cellpose.metrics")
    assert len(drawn_cases) == 6 * 7 and max(truth.max() for _, _, truth, _ in drawn_cases) == 324
    check_matching_counts(cellpose_metrics, drawn_cases)


def check_matching_counts(cellpose_metrics, cases):
    thresholds = list(object_metrics.THRESHOLDS)
    for name, kind, truth, prediction in cases:
        with np.errstate(invalid="ignore"):  # its AP of an image with nothing on either side is 0/0
            _, tp, fp, fn = cellpose_metrics.average_precision(truth, prediction, threshold=thresholds)
        rows, _ = object_metrics.image_scores(truth, prediction, hausdorff_distance=False)
        ours = np.array([[r["tp"], r["fp"], r["fn"]] for r in rows])
        assert np.array_equal(ours, np.stack([tp, fp, fn], axis=1).astype(int)), (name, kind)
        with np.errstate(invalid="ignore"):  # nothing on either side: 0/0, NaN for both
            theirs_ap = tp.astype(np.float64) / (tp + fp + fn)
        assert np.allclose([r["ap"] for r in rows], theirs_ap, rtol=0, atol=1e-9, equal_nan=True), (name, kind)


def test_semantic_counts_equal_nnunet(cases):
    check_semantic_counts(reference("nnunetv2.evaluation.evaluate_predictions"), cases[::3])


def test_semantic_counts_equal_nnunet_on_drawn_instances(drawn_cases):
    check_semantic_counts(reference("nnunetv2.evaluation.evaluate_predictions"), drawn_cases)


def check_semantic_counts(nnunet, cases):
    for name, kind, truth, prediction in cases:
        truth_classes, pred_classes = (truth > 0).astype(np.uint8), (prediction > 0).astype(np.uint8)
        ignore = np.zeros_like(truth_classes, dtype=bool)
        ignore[:3] = True  # a band of ignored pixels, as nnU-Net's ignore label
        theirs = nnunet.compute_tp_fp_fn_tn(truth_classes == 1, pred_classes == 1, ignore)
        truth_classes[ignore] = 255
        [row] = semantic_metrics.image_rows(truth_classes, pred_classes, ["background", "nucleus"])
        assert (row["tp"], row["fp"], row["fn"], row["tn"]) == tuple(int(v) for v in theirs), (name, kind)
