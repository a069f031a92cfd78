import numpy as np
import pytest
from PIL import Image

from cellbench.classmaps import IGNORE_INDEX
from cellbench.formats.class_masks import cell_instances, class_indices, grey_levels, read_class_mask

CLASSES = ["background", "cytoplasm", "nucleus"]
LEVELS = {"background": 0, "cytoplasm": 128, "nucleus": 255}
STRAY = np.array([[0, 128, 255, 3], [120, 250, 0, 0]], np.uint8)  # 3, 120, 250 are no level


def save(tmp_path, array, mode=None, palette=None):
    image = Image.fromarray(array) if mode is None else Image.fromarray(array).convert(mode)
    if palette is not None:
        image = Image.fromarray(array, mode="P")
        image.putpalette(palette)
    path = tmp_path / "m.png"
    image.save(path)
    return path


def test_nearest_level_with_ties_to_the_lower_level():
    table = grey_levels(LEVELS, CLASSES)
    assert table.lut[[0, 3, 63, 64, 65, 128, 191, 192, 255]].tolist() == [0, 0, 0, 0, 1, 1, 1, 2, 2]
    assert table.exact.sum() == 3 and table.exact[[0, 128, 255]].all()


@pytest.mark.parametrize("levels, message", [({"background": 0, "membrane": 9}, "not in `classes`"),
                                             ({"background": 0, "nucleus": 0}, "two classes")])
def test_bad_levels(levels, message):
    with pytest.raises(ValueError, match=message):
        grey_levels(levels, CLASSES)


def test_stray_values_go_to_the_nearest_level(tmp_path):
    class_map, n_stray, problems = read_class_mask(save(tmp_path, STRAY), grey_levels(LEVELS, CLASSES))
    assert problems == [] and n_stray == 3
    assert class_map.tolist() == [[0, 1, 2, 0], [1, 2, 0, 0]]


def test_stray_values_can_be_ignored(tmp_path):
    class_map, n_stray, _ = read_class_mask(save(tmp_path, STRAY), grey_levels(LEVELS, CLASSES, "ignore"))
    assert n_stray == 3 and class_map.tolist() == [[0, 1, 2, IGNORE_INDEX], [IGNORE_INDEX, IGNORE_INDEX, 0, 0]]


def test_stray_values_can_be_an_error_listing_them(tmp_path):
    path = save(tmp_path, STRAY)
    class_map, _, problems = read_class_mask(path, grey_levels(LEVELS, CLASSES, "error"))
    assert class_map is None and problems[0].file == path
    assert "3 pixels have values that are no class (3, 120, 250)" in str(problems[0])
    assert "stray_levels" in problems[0].hint


def test_palette_grey_mask_is_read_by_colour(tmp_path):
    grey_palette = [v for level in range(256) for v in (level, level, level)]
    indices = np.array([[0, 128], [255, 0]], np.uint8)
    class_map, _, _ = read_class_mask(save(tmp_path, indices, palette=grey_palette), grey_levels(LEVELS, CLASSES))
    assert class_map.tolist() == [[0, 1], [2, 0]]


def test_class_index_palette_png_keeps_indices(tmp_path):
    voc_like = np.array([[0, 1, 2], [255, 2, 0]], np.uint8)
    colours = [v for i in range(256) for v in ((i * 37) % 256, (i * 91) % 256, (i * 13) % 256)]
    class_map, n_stray, problems = read_class_mask(save(tmp_path, voc_like, palette=colours), class_indices(CLASSES))
    assert problems == [] and n_stray == 0 and np.array_equal(class_map, voc_like)


def test_class_index_out_of_range_is_an_error(tmp_path):
    path = save(tmp_path, np.array([[0, 1, 7], [9, 9, 255]], np.uint8))
    class_map, n_stray, problems = read_class_mask(path, class_indices(CLASSES))
    assert class_map is None and n_stray == 3
    assert "no class (7, 9)" in str(problems[0]) and "class indices are 0..2" in problems[0].hint


def test_colour_mask_is_refused(tmp_path):
    colour = np.zeros((2, 2, 3), np.uint8)
    colour[0, 0] = (255, 0, 0)
    _, _, problems = read_class_mask(save(tmp_path, colour), grey_levels(LEVELS, CLASSES))
    assert "mask is colour (RGB)" in str(problems[0])


def test_sixteen_bit_mask_is_refused(tmp_path):
    _, _, problems = read_class_mask(save(tmp_path, np.zeros((2, 2), np.uint16)), class_indices(CLASSES))
    assert "expected 8-bit values" in str(problems[0])


def test_instances_are_foreground_components_without_ignore():
    class_map = np.array([[1, 2, 0, 1], [1, 1, 0, 0], [IGNORE_INDEX, 0, 0, 0]], np.uint8)
    instances = cell_instances(class_map)
    assert instances.dtype == np.uint16 and instances.max() == 2
    assert instances[0, 0] == instances[0, 1] != instances[0, 3] and instances[2, 0] == 0


def test_mask_bombs_and_other_formats_are_problems_not_crashes(tmp_path):
    from helpers import EPS, png_bomb
    path = tmp_path / "m.png"
    path.write_bytes(png_bomb(30000, 30000))
    class_map, _, problems = read_class_mask(path, class_indices(CLASSES))
    assert class_map is None and [p.file for p in problems] == [path]
    assert "mask is 30000 x 30000 = 900000000 pixels, more than data.max_pixels = 100000000" in problems[0].message
    path.write_bytes(EPS)
    assert "not a PNG, JPEG, BMP or TIFF image" in read_class_mask(path, class_indices(CLASSES))[2][0].message
    _, _, problems = read_class_mask(save(tmp_path, STRAY), class_indices(CLASSES), max_pixels=7)
    assert "mask is 4 x 2 = 8 pixels, more than data.max_pixels = 7" in problems[0].message
