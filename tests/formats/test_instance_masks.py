import numpy as np
import pandas as pd
import pytest
from helpers import make_config, shared
from PIL import Image

from cellbench.dataset.ingest import find_problems, ingest, input_files
from cellbench.errors import InputError
from cellbench.formats import instance_folders, instance_masks
from cellbench.images import read_png


def test_masks_sort_numerically(tmp_path):
    (tmp_path / "masks").mkdir()
    for k in (10, 2, 1):
        (tmp_path / "masks" / f"a_{k}.png").touch()
    assert [p.stem for p in instance_folders.mask_files(tmp_path)] == ["a_1", "a_2", "a_10"]


def test_paint_later_object_wins_and_overlap_is_counted():
    a = np.array([[1, 1, 0]], bool)
    b = np.array([[0, 1, 1]], bool)
    classes, instances, overlap = instance_masks.paint([a, b], (1, 3), 2)
    assert classes.tolist() == [[2, 2, 2]] and instances.tolist() == [[1, 2, 2]] and overlap == 1


def test_object_class():
    assert instance_masks.object_class_index(["background", "nucleus"], None) == 1
    assert instance_masks.object_class_index(["background", "cytoplasm", "nucleus"], "nucleus") == 2
    with pytest.raises(ValueError, match="must name the class"):
        instance_masks.object_class_index(["background", "cytoplasm", "nucleus"], None)


def dsb_config(fmt, **data):
    root = shared("dsb2018-stage1-test")
    annotations = root / ("stage1_solution.csv" if fmt == "rle_csv" else "stage1_test")
    return make_config(annotations, classes=["background", "nucleus"], evaluate={"regions": {}},
                       data={"format": fmt, "images": str(root / "stage1_test"), **data})


def test_dsb_folders_and_csv_ingest_to_the_same_maps(tmp_path):
    folders = ingest(dsb_config("instance_folders"), tmp_path / "a").set_index("sample_id")
    csv = ingest(dsb_config("rle_csv"), tmp_path / "b").set_index("sample_id")
    assert len(folders) == 65 and folders.index.equals(csv.index)
    assert folders["n_objects"].sum() == csv["n_objects"].sum() == 4152
    assert set(folders["source_mode"]) == {"RGB", "RGBA"}
    for sample_id in folders.index[::8]:
        for kind in ("masks", "instances"):
            assert np.array_equal(read_png(tmp_path / "a" / kind / f"{sample_id}.png"),
                                  read_png(tmp_path / "b" / kind / f"{sample_id}.png"))
    assert len(input_files(dsb_config("instance_folders"))) == 4152 + 65


def write_rle_case(tmp_path, rows):
    (tmp_path / "images").mkdir()
    Image.fromarray(np.zeros((4, 5, 3), np.uint8)).save(tmp_path / "images" / "img.png")
    csv = tmp_path / "runs.csv"
    pd.DataFrame(rows, columns=["ImageId", "EncodedPixels", "Height", "Width"]).to_csv(csv, index=False)
    return make_config(csv, classes=["background", "nucleus"],
                       data={"format": "rle_csv", "images": str(tmp_path / "images")})


@pytest.mark.parametrize("rows, expected", [
    ([["img", "1 3", 4, 5], ["img", "1 2 3", 4, 5]], "runs.csv: line 3: odd number of values"),
    ([["img", "1 3", 4, 6]], "line 2: Height x Width 4 x 6 but the image is 4 x 5"),
    ([["other", "1 3", 4, 5]], "no image named other.*"),
    ([["img", "18 9", 4, 5]], "line 2: a run ends at pixel 26 beyond"),
    ([["img", "1 3", "\u00b2", 5]], "line 2: Height/Width '\u00b2'/'5' are not integers"),
    ([["img", "1 3", "9" * 5000, 5]], "line 2: Height/Width '99999999999999999999'/'5' are not integers"),
    ([["img", "1 " + "9" * 30, 4, 5]], "line 2: not a list of integers"),
])
def test_rle_problems_name_the_file_and_line(tmp_path, rows, expected):
    with pytest.raises(InputError, match=expected.replace("*", r"\*").replace("(", r"\(")):
        ingest(write_rle_case(tmp_path, rows), tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_empty_or_binary_rle_csv(tmp_path):
    config = write_rle_case(tmp_path, [["img", "1 3", 4, 5]])
    for content in (b"", b"\xff\xfe\x00garbage"):
        (tmp_path / "runs.csv").write_bytes(content)
        found = find_problems(config)
        good, problems = found.good, found.problems
        assert good == 0 and "run-length CSV cannot be read" in str(problems[0])


def test_rle_csv_without_the_columns(tmp_path):
    config = write_rle_case(tmp_path, [["img", "1 3", 4, 5]])
    (tmp_path / "runs.csv").write_text("id,pixels\nimg,1 3\n")
    with pytest.raises(InputError, match=r"missing columns \['ImageId', 'EncodedPixels'"):
        ingest(config, tmp_path / "out")


def test_mask_of_the_wrong_size(tmp_path):
    sample = tmp_path / "folders" / "s1"
    (sample / "images").mkdir(parents=True)
    (sample / "masks").mkdir()
    Image.fromarray(np.zeros((4, 4, 3), np.uint8)).save(sample / "images" / "s1.png")
    Image.fromarray(np.zeros((4, 5), np.uint8)).save(sample / "masks" / "s1_0.png")
    config = make_config(tmp_path / "folders", classes=["background", "nucleus"], data={"format": "instance_folders"})
    with pytest.raises(InputError, match="s1_0.png: mask is 4 x 5 but the image is 4 x 4"):
        ingest(config, tmp_path / "out")


def test_instance_folder_bombs_and_other_formats_are_problems(tmp_path):
    from helpers import EPS, png_bomb
    grey = np.zeros((4, 4, 3), np.uint8)
    for name, image, mask in [("bomb", grey, png_bomb(30000, 30000)), ("eps", grey, EPS),
                              ("big_image", png_bomb(20000, 20000), None), ("fine", grey, None)]:
        sample = tmp_path / "folders" / name
        (sample / "images").mkdir(parents=True)
        (sample / "masks").mkdir()
        if isinstance(image, bytes):
            (sample / "images" / f"{name}.png").write_bytes(image)
        else:
            Image.fromarray(image).save(sample / "images" / f"{name}.png")
        if isinstance(mask, bytes):
            (sample / "masks" / f"{name}_0.png").write_bytes(mask)
        else:
            Image.fromarray(np.eye(4, dtype=np.uint8) * 255).save(sample / "masks" / f"{name}_0.png")
    config = make_config(tmp_path / "folders", classes=["background", "nucleus"], data={"format": "instance_folders"})
    found = find_problems(config)
    good, problems = found.good, found.problems
    assert good == 1 and [str(p).split(" (")[0] for p in problems] == [
        f"{tmp_path}/folders/big_image/images/big_image.png: image is 20000 x 20000 = 400000000 pixels, more than "
        "data.max_pixels = 100000000",
        f"{tmp_path}/folders/bomb/masks/bomb_0.png: mask is 30000 x 30000 = 900000000 pixels, more than "
        "data.max_pixels = 100000000",
        f"{tmp_path}/folders/eps/masks/eps_0.png: mask cannot be read: it is not a PNG, JPEG, BMP or TIFF image"]
