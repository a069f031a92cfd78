import io

import numpy as np
import pytest
from helpers import reference
from PIL import Image, ImageFile

from cellbench.images import ImageReadError, image_size, read_image, read_png, write_png


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
    with pytest.raises(ImageReadError, match="not a PNG, JPEG, BMP or TIFF image"):
        read_image(b"not an image")


# ---- which formats are decoded, and how large ----

def test_only_png_jpeg_bmp_tiff_are_decoded():
    pil = Image.fromarray(np.full((4, 5, 3), 60, np.uint8))
    for fmt in ("PNG", "JPEG", "BMP", "TIFF"):
        assert read_image(encode(pil, fmt)).rgb.shape == (4, 5, 3)
    for fmt, looks in [("GIF", "GIF"), ("PDF", "PDF"), ("WEBP", ""), ("PPM", ""), ("ICO", "ICO")]:
        with pytest.raises(ImageReadError, match="not a PNG, JPEG, BMP or TIFF image") as err:
            read_image(encode(pil, fmt))
        assert looks in str(err.value) and "convert it" in err.value.hint


def test_camera_jpeg_identified_as_mpo_is_read():
    first, second = (Image.fromarray(np.full((4, 5, 3), v, np.uint8)) for v in (10, 250))
    data = encode(first, "MPO", save_all=True, append_images=[second])
    with Image.open(io.BytesIO(data)) as pil:
        assert pil.format == "MPO"
    assert read_image(data).rgb.shape == (4, 5, 3)


def test_eps_is_never_handed_to_ghostscript(tmp_path, monkeypatch):
    from helpers import EPS

    def forbidden(*args, **kwargs):
        raise AssertionError("a program was started")

    import subprocess
    monkeypatch.setattr(subprocess, "Popen", forbidden)
    (tmp_path / "x.png").write_bytes(EPS)
    with pytest.raises(ImageReadError, match="it looks like PostScript/EPS"):
        read_image(tmp_path / "x.png")


def test_read_png_reads_only_png(tmp_path):
    (tmp_path / "x.png").write_bytes(encode(Image.new("L", (2, 2)), "BMP"))
    with pytest.raises(ImageReadError, match="not a PNG image"):
        read_png(tmp_path / "x.png")


def test_max_pixels_is_checked_from_the_header_before_decoding(monkeypatch):
    from helpers import png_bomb
    with pytest.raises(ImageReadError, match="image is 30000 x 30000 = 900000000 pixels, more than "
                                             "data.max_pixels = 100000000") as err:
        read_image(png_bomb(30000, 30000))
    assert "decompression bomb" in err.value.hint
    data, decoded = encode(Image.new("L", (30, 20))), []
    monkeypatch.setattr(ImageFile.ImageFile, "load", lambda self: decoded.append(self))
    with pytest.raises(ImageReadError, match="more than data.max_pixels = 599"):
        read_image(data, max_pixels=599)
    assert decoded == []


def test_our_limit_decides_not_pillows(monkeypatch):
    """Pillow's own limit (a warning, then an error at twice it) is neither raised nor left changed."""
    import warnings
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 100)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a DecompressionBombWarning would fail the test
        assert read_image(encode(Image.new("L", (30, 20))), max_pixels=600).rgb.shape == (20, 30, 3)
        assert image_size(encode(Image.new("L", (300, 200)))) == (300, 200)
    assert Image.MAX_IMAGE_PIXELS == 100


def test_damaged_image_is_an_image_read_error():
    data = encode(Image.fromarray(np.arange(10000, dtype=np.uint8).reshape(100, 100)))
    with pytest.raises(ImageReadError, match="image cannot be read"):
        read_image(data[:200])


def test_the_default_pixel_limit_is_the_schema_default():
    from cellbench import config as configuration
    from cellbench.images import MAX_PIXELS
    assert MAX_PIXELS == configuration.defaults()["data"]["max_pixels"]


def test_an_image_of_only_nan_is_read_as_black_with_a_warning(tmp_path, caplog):
    import logging

    from PIL import Image

    from cellbench.images import read_image
    Image.fromarray(np.full((8, 9), np.nan, np.float32)).save(tmp_path / "nan.tif")
    with caplog.at_level(logging.WARNING):
        loaded = read_image(tmp_path / "nan.tif", what=f"image {tmp_path / 'nan.tif'}")
    assert loaded.rgb.shape == (8, 9, 3) and not loaded.rgb.any()
    assert f"image {tmp_path / 'nan.tif'} holds no finite value" in caplog.text
    Image.fromarray(np.array([[np.nan, 1.0]], np.float32)).save(tmp_path / "some.tif")
    caplog.clear()
    read_image(tmp_path / "some.tif")
    assert "no finite value" not in caplog.text
