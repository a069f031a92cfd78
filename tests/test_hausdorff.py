import numpy as np
import pytest
from scipy import ndimage
from scipy.spatial.distance import directed_hausdorff

from cellbench.hausdorff import Outlines, hausdorff, nearest, outline_masks


def brute_force(a_mask, b_mask) -> float:
    ca, cb = np.argwhere(a_mask), np.argwhere(b_mask)
    return max(directed_hausdorff(ca, cb)[0], directed_hausdorff(cb, ca)[0])


def random_objects(rng, shape=(40, 50)):
    """Touching, ragged, sometimes disconnected objects: connected components of noise, some merged."""
    labels, n = ndimage.label(rng.random(shape) < rng.uniform(0.3, 0.7))
    merged = np.arange(n + 1)
    merged[1:] = rng.integers(1, max(n // 2, 1) + 1, n)  # several components may share one id
    labels = merged[labels]
    present = np.unique(labels[labels > 0])
    table = np.zeros(labels.max() + 1, dtype=np.int32)
    table[present] = np.arange(1, len(present) + 1)
    return table[labels], len(present)


def test_outlines_of_a_square():
    labels = np.zeros((8, 8), dtype=np.int32)
    labels[2:6, 2:6] = 1
    surface, rim = outline_masks(labels)
    assert surface.sum() == 12 and rim.sum() == 12  # a 4 x 4 square: its 12 outline pixels
    labels[2:6, 4:6] = 2  # two touching 4 x 2 halves: every pixel touches the other half or outside
    surface, rim = outline_masks(labels)
    assert surface.sum() == rim.sum() == 16


def test_pairs_match_scipy_on_random_objects():
    rng = np.random.default_rng(0)
    checked = 0
    for _ in range(60):
        a, na = random_objects(rng)
        b, nb = random_objects(rng)
        if not na or not nb:
            continue
        a_ids, b_ids = rng.integers(1, na + 1, 12), rng.integers(1, nb + 1, 12)  # ids repeat across pairs
        got = hausdorff(Outlines(a, na), Outlines(b, nb), a_ids, b_ids)
        expected = [brute_force(a == i, b == j) for i, j in zip(a_ids, b_ids, strict=True)]
        np.testing.assert_allclose(got, expected, rtol=0, atol=1e-9)
        checked += len(a_ids)
    assert checked > 500


def test_farthest_pixel_inside_the_object():
    """A disc and a ring on its edge: the disc's farthest pixel is its centre, off every outline."""
    r = np.hypot(*np.ogrid[-40:41, -40:41])
    disc, ring = (r < 30).astype(np.int32), ((r >= 20) & (r < 30)).astype(np.int32)
    assert hausdorff(Outlines(disc, 1), Outlines(ring, 1), [1], [1])[0] == pytest.approx(20.0)
    assert brute_force(disc > 0, ring > 0) == pytest.approx(20.0)


def test_identical_objects_are_zero_apart():
    rng = np.random.default_rng(1)
    labels, n = random_objects(rng)
    ids = np.arange(1, n + 1)
    assert not hausdorff(Outlines(labels, n), Outlines(labels, n), ids, ids).any()


def test_nearest_is_the_smallest_over_all_objects():
    rng = np.random.default_rng(2)
    for _ in range(10):
        a, na = random_objects(rng, (30, 60))
        b, nb = random_objects(rng, (30, 60))
        if not na or not nb:
            continue
        got = nearest(Outlines(a, na), Outlines(b, nb), np.arange(1, na + 1))
        # every pair from distance maps, as GlaS's own code does it (bwdist)
        to_a = [ndimage.distance_transform_edt(a != i) for i in range(1, na + 1)]
        to_b = [ndimage.distance_transform_edt(b != j) for j in range(1, nb + 1)]
        expected = [min(max(to_b[j - 1][a == i].max(), to_a[i - 1][b == j].max()) for j in range(1, nb + 1))
                    for i in range(1, na + 1)]
        np.testing.assert_allclose(got, expected, rtol=0, atol=1e-9)
