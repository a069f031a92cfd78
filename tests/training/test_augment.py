import numpy as np
import pytest

from cellbench.training import augment


def test_sixteen_variants_rotations_of_image_and_mirror():
    specs = augment.variant_specs(8, True)
    assert len(specs) == 16 and specs[0] == (0.0, False)
    assert sorted({a for a, _ in specs}) == [0, 45, 90, 135, 180, 225, 270, 315]
    assert sum(f for _, f in specs) == 8


def test_right_angles_are_exact_and_masks_stay_labels():
    rng = np.random.default_rng(0)
    image = rng.integers(0, 255, (32, 32, 3), dtype=np.uint8)
    mask = rng.integers(0, 3, (32, 32), dtype=np.uint8)
    same_image, same_mask = augment.transform(image, mask, 0, False)
    assert np.array_equal(same_image, image) and np.array_equal(same_mask, mask)
    rotated_image, rotated_mask = augment.transform(image, mask, 90, True)
    assert np.array_equal(rotated_mask, np.rot90(mask[:, ::-1]))
    assert np.array_equal(rotated_image, np.rot90(image[:, ::-1]))
    _, oblique = augment.transform(image, mask, 45, False)
    assert set(np.unique(oblique)) <= {0, 1, 2}  # nearest neighbour: no blended labels


@pytest.mark.parametrize("rotations, flip, n", [(1, False, 1), (4, False, 4), (8, True, 16)])
def test_variant_counts(rotations, flip, n):
    assert len(augment.variant_specs(rotations, flip)) == n
