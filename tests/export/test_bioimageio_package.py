"""A BioImage Model Zoo package of the fold ensemble: valid for bioimageio.spec, its test tensors
reproduced by bioimageio.core (test_model, and its prediction pipeline) with both weights formats,
its expected output cellbench's own prediction, and all of it without the network."""

from pathlib import Path

import httpx
import numpy as np
import pytest
import torch

from cellbench.export.export import export
from cellbench.inference.ensemble import Windows, probabilities
from cellbench.inference.segment import load_models

bioimageio_core = pytest.importorskip("bioimageio.core", reason="the export extra: pip install 'cellbench[export]'")


@pytest.fixture
def offline(monkeypatch):
    """Any HTTP request fails the test: the package must be written and checked offline."""
    def refuse(self, request, *args, **kwargs):
        raise AssertionError(f"bioimageio tried to reach {request.url}")
    monkeypatch.setattr(httpx.Client, "send", refuse)


def test_package_validates_offline_and_reproduces_its_test_tensors(unet_folds, parity_images, tmp_path, offline,
                                                                   monkeypatch):
    from bioimageio.spec import InvalidDescr, load_description
    from bioimageio.spec.model.v0_5 import ParameterizedSize
    monkeypatch.chdir(tmp_path)
    out = Path("results", "bioimageio")  # relative, as the workflow gives it
    record = export(unet_folds, "bioimageio", out, parity_images, parity_side=128, authors=("A. Tester",),
                    license="MIT")
    assert {"rdf.yaml", "ensemble.onnx", "ensemble.pt", "test_input.npy", "test_output.npy", "cover.png", "README.md",
            "manifest.json"} <= {p.name for p in out.iterdir()}
    assert (record["bioimageio"]["format_validation"], record["bioimageio"]["test_model"]) == ("valid-format", "passed")
    assert all(r["max_abs_diff"] <= 1e-4 for r in record["parity"]["results"].values())
    assert set(record["parity"]["results"]) == {"torchscript", "onnx"}

    descr = load_description(out / "rdf.yaml", perform_io_checks=True)
    assert not isinstance(descr, InvalidDescr), descr.validation_summary.format()
    assert descr.license == "MIT" and [a.name for a in descr.authors] == ["A. Tester"]
    assert descr.cite[0].doi is not None and descr.documentation is not None and descr.covers
    (image,) = descr.inputs
    assert [str(a.id) for a in image.axes] == ["batch", "channel", "y", "x"]
    assert image.axes[2].size == ParameterizedSize(min=32, step=32)
    assert descr.outputs[0].axes[1].channel_names == ["background", "cytoplasm", "nucleus"]
    assert descr.weights.onnx is not None and descr.weights.torchscript is not None
    assert descr.config.model_extra["cellbench"]["ensemble"]["rule"].endswith("argmax after averaging")

    # export ran bioimageio.core's test_model (and refuses to keep a package that fails it): both
    # weights reproduce the test output, and run at three sizes and two batch sizes
    tests = record["bioimageio"]["tests"]
    for weights in ("onnx", "torchscript"):
        assert f"Reproduce test outputs from test inputs ({weights})" in tests
        assert sum(name.startswith(f"Run {weights} inference") for name in tests) == 6

    # the test output, by bioimageio.core's own prediction pipeline, is cellbench's prediction of the
    # test input (a real image crop)
    test_input, test_output = np.load(out / "test_input.npy"), np.load(out / "test_output.npy")
    for weights in ("onnx", "torchscript"):
        pipeline = bioimageio_core.create_prediction_pipeline(descr, weight_format=weights, devices=["cpu"])
        sample = bioimageio_core.predict(model=pipeline, inputs={"image": test_input})
        assert np.abs(sample.members["probabilities"].data.to_numpy() - test_output).max() <= 1e-4
    crop = np.ascontiguousarray(test_input[0].transpose(1, 2, 0).astype(np.uint8))
    assert np.array_equal(crop.astype(np.float32).transpose(2, 0, 1), test_input[0])
    expected = probabilities(crop, load_models(unet_folds, "cpu"), Windows(tile_size=None, amp=False),
                             torch.device("cpu")).mean
    assert np.abs(test_output[0] - expected).max() <= 1e-5  # the same computation, threads aside
