import io

import numpy as np
import pytest
from conftest import reference
from PIL import Image

from cellbench.images import read_image, read_png, write_png


def encode(pil, fmt="PNG", **kwargs):
    buffer = io.BytesIO()
    pil.save(buffer, format=fmt, **kwargs)
    return buffer.getvalue()


@pytest.mark.parametrize("mode", ["RGB", "RGBA", "L", "P"])
def test_any_mode_becomes_rgb8(mode):
    pil = Image.fromarray(np.full((4, 5, 3), 120, np.uint8)).convert(mode)
    loaded = read_image(encode(pil))
    assert loaded.rgb.shape == (4, 5, 3) and loaded.rgb.dtype == np.uint8 and loaded.source_mode == mode


def test_alpha_is_dropped_not_blended():
    rgba = np.zeros((2, 2, 4), np.uint8)
    rgba[..., 0], rgba[..., 3] = 200, 0
    assert read_image(encode(Image.fromarray(rgba))).rgb[0, 0].tolist() == [200, 0, 0]


def test_sixteen_bit_is_scaled_and_the_scale_recorded():
    loaded = read_image(encode(Image.fromarray(np.array([[0, 65535]], np.uint16))))
    assert loaded.rgb[0, :, 0].tolist() == [0, 255]
    assert loaded.intensity_scale == pytest.approx(255 / 65535)


def test_exif_orientation_is_applied():
    pil = Image.fromarray(np.zeros((2, 6, 3), np.uint8))
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90 degrees clockwise on display
    assert read_image(encode(pil, "JPEG", exif=exif.tobytes())).rgb.shape[:2] == (6, 2)


@pytest.mark.parametrize("orientation", range(1, 9))
def test_every_exif_orientation_as_labelme_applies_it(orientation):
    lm_utils = reference("labelme.utils")
    rng = np.random.default_rng(orientation)
    pil = Image.fromarray(rng.integers(0, 255, (6, 10, 3), dtype=np.uint8))
    exif = Image.Exif()
    exif[0x0112] = orientation
    data = encode(pil, "JPEG", exif=exif.tobytes(), quality=100)
    with Image.open(io.BytesIO(data)) as original:
        expected = np.asarray(lm_utils.apply_exif_orientation(original).convert("RGB"))
    assert np.array_equal(read_image(data).rgb, expected)


def test_png_round_trip_keeps_dtype(tmp_path):
    for array in (np.array([[0, 3]], np.uint8), np.array([[0, 40000]], np.uint16)):
        write_png(array, tmp_path / "x.png")
        back = read_png(tmp_path / "x.png")
        assert back.dtype == array.dtype and np.array_equal(back, array)


def test_unreadable_bytes_raise():
    with pytest.raises(OSError):
        read_image(b"not an image")
