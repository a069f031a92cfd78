"""The fold ensemble as a BioImage Model Zoo package (model description format 0.5): one network
(the mean of the folds' softmax, normalisation built in) as TorchScript and, where torch's ONNX
exporter can express it, ONNX weights; test tensors cut from a real image whose expected output is
cellbench's own prediction; a cover; documentation. The package is then validated by bioimageio.spec
and run by bioimageio.core's test_model, which must reproduce the test output with both weights.

Nothing here goes to the network: the description holds no URL (citations by DOI only), so
bioimageio.spec's checks that fetch remote files have nothing to fetch.
"""

from __future__ import annotations

import contextlib
import string
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from cellbench.export.onnx_files import OPSET
from cellbench.export.parity import Crop
from cellbench.images import write_png

RDF = "rdf.yaml"
WEIGHTS_TORCHSCRIPT = "ensemble.pt"
WEIGHTS_ONNX = "ensemble.onnx"
TEST_INPUT, TEST_OUTPUT = "test_input.npy", "test_output.npy"
COVER, DOCUMENTATION = "cover.png", "README.md"
TEST_SIDE = 256  # test tensors: a real crop, small enough to keep the package light
# each architecture's paper, by DOI (a URL would be fetched by the validation)
CITATIONS = {
    "Unet": ("Ronneberger O, Fischer P, Brox T. U-Net: convolutional networks for biomedical image "
             "segmentation. MICCAI 2015", "10.1007/978-3-319-24574-4_28"),
    "UnetPlusPlus": ("Zhou Z et al. UNet++: a nested U-Net architecture for medical image segmentation. DLMIA 2018",
                     "10.1007/978-3-030-00889-5_1"),
    "FPN": ("Lin T-Y et al. Feature pyramid networks for object detection. CVPR 2017", "10.1109/CVPR.2017.106"),
    "PSPNet": ("Zhao H et al. Pyramid scene parsing network. CVPR 2017", "10.1109/CVPR.2017.660"),
    "DeepLabV3": ("Chen L-C et al. Rethinking atrous convolution for semantic image segmentation. arXiv 2017",
                  "10.48550/arXiv.1706.05587"),
    "DeepLabV3Plus": ("Chen L-C et al. Encoder-decoder with atrous separable convolution for semantic image "
                      "segmentation. ECCV 2018", "10.48550/arXiv.1802.02611"),
    "Linknet": ("Chaurasia A, Culurciello E. LinkNet: exploiting encoder representations for efficient semantic "
                "segmentation. VCIP 2017", "10.48550/arXiv.1707.03718"),
    "PAN": ("Li H et al. Pyramid attention network for semantic segmentation. BMVC 2018", "10.48550/arXiv.1805.10180"),
    "UPerNet": ("Xiao T et al. Unified perceptual parsing for scene understanding. ECCV 2018",
                "10.48550/arXiv.1807.10221"),
    "Segformer": ("Xie E et al. SegFormer: simple and efficient design for semantic segmentation with transformers. "
                  "NeurIPS 2021", "10.48550/arXiv.2105.15203"),
}


@dataclass(frozen=True)
class Package:
    """What the package says about the model beyond its files."""

    name: str
    description: str
    outputs: list[str]
    min_side: int
    divisor: int
    arch: str
    authors: tuple[str, ...] = ("cellbench",)
    license: str = "CC-BY-4.0"
    documentation: str = ""
    config: dict | None = None  # cellbench's own record (normalisation, tiling, ensembling, parity)


def zoo_name(text: str) -> str:
    """A model name the Zoo accepts: letters, digits, _+-() and spaces, 5 to 128 characters."""
    allowed = set(string.ascii_letters + string.digits + "_+- ()")
    name = "".join(c if c in allowed else "-" for c in text).strip()[:128]
    return name if len(name) >= 5 else f"cellbench {name}".strip()


def test_crop(crop: Crop, divisor: int, min_side: int, side: int = TEST_SIDE) -> Crop:
    """The centre of ``crop`` with sides multiples of ``divisor`` up to ``side`` (at least ``min_side``)."""
    height, width = (max(min_side, (min(n, side) // divisor) * divisor) for n in crop.pixels.shape[:2])
    top, left = (crop.pixels.shape[0] - height) // 2, (crop.pixels.shape[1] - width) // 2
    return Crop(crop.source, np.ascontiguousarray(crop.pixels[top:top + height, left:left + width]))


def cover(crop: Crop, probabilities: np.ndarray) -> np.ndarray:
    """The crop beside its predicted classes coloured over it (2:1, as the Zoo shows covers)."""
    from cellbench.report.figures import colourise
    coloured = (colourise(probabilities.argmax(0), crop.pixels) * 255).round().astype(np.uint8)
    return np.concatenate([crop.pixels, coloured], axis=1)


@contextlib.contextmanager
def quiet():
    """bioimageio's loguru messages and torch's TorchScript deprecation notices off (the verdicts
    are reported by cellbench)."""
    from loguru import logger
    logger.disable("bioimageio")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", FutureWarning)
            yield
    finally:
        logger.enable("bioimageio")


def describe(folder: Path, package: Package, onnx: bool):
    """The bioimageio.spec model description of the files in ``folder`` (an absolute path)."""
    from bioimageio.spec import ValidationContext
    from bioimageio.spec.model.v0_5 import Author as ZooAuthor
    from bioimageio.spec.model.v0_5 import (
        AxisId,
        BatchAxis,
        BioimageioConfig,
        ChannelAxis,
        CiteEntry,
        Config,
        Doi,
        FileDescr,
        InputTensorDescr,
        IntervalOrRatioDataDescr,
        ModelDescr,
        OnnxWeightsDescr,
        OutputTensorDescr,
        ParameterizedSize,
        ReproducibilityTolerance,
        SizeReference,
        SpaceInputAxis,
        SpaceOutputAxis,
        TensorId,
        TorchscriptWeightsDescr,
        Version,
        WeightsDescr,
    )
    image, probabilities = TensorId("image"), TensorId("probabilities")
    size = ParameterizedSize(min=package.min_side, step=package.divisor)
    inputs = [InputTensorDescr(
        id=image, description=f"RGB pixel values 0..255 as float32; sides min {package.min_side} + n x "
                              f"{package.divisor} px",
        axes=[BatchAxis(), ChannelAxis(channel_names=["red", "green", "blue"]),
              SpaceInputAxis(id=AxisId("y"), size=size), SpaceInputAxis(id=AxisId("x"), size=size)],
        test_tensor=FileDescr(source=folder / TEST_INPUT), data=IntervalOrRatioDataDescr(type="float32",
                                                                                         range=(0.0, 255.0)))]
    outputs = [OutputTensorDescr(
        id=probabilities, description="mean softmax probability of each output channel over the fold models",
        axes=[BatchAxis(), ChannelAxis(channel_names=list(package.outputs)),
              SpaceOutputAxis(id=AxisId("y"), size=SizeReference(tensor_id=image, axis_id=AxisId("y"))),
              SpaceOutputAxis(id=AxisId("x"), size=SizeReference(tensor_id=image, axis_id=AxisId("x")))],
        test_tensor=FileDescr(source=folder / TEST_OUTPUT), data=IntervalOrRatioDataDescr(type="float32",
                                                                                          range=(0.0, 1.0)))]
    comment = "traced from cellbench's fold checkpoints, normalisation and softmax built in"
    torchscript = TorchscriptWeightsDescr(source=folder / WEIGHTS_TORCHSCRIPT, comment=comment,
                                          pytorch_version=Version(torch.__version__.split("+")[0]))
    weights = WeightsDescr(torchscript=torchscript, onnx=OnnxWeightsDescr(
        source=folder / WEIGHTS_ONNX, opset_version=OPSET, parent="torchscript", comment=comment) if onnx else None)
    cite = [CiteEntry(text=text, doi=Doi(doi)) for text, doi in [CITATIONS[package.arch]]
            ] if package.arch in CITATIONS else []
    tolerance = ReproducibilityTolerance(absolute_tolerance=1e-4, relative_tolerance=1e-4)
    config = Config(bioimageio=BioimageioConfig(reproducibility_tolerance=[tolerance]),
                    cellbench=package.config or {})
    with ValidationContext(root=folder, perform_io_checks=True):
        return ModelDescr(
            name=zoo_name(package.name), description=package.description[:1024],
            authors=[ZooAuthor(name=name.replace("/", "-")) for name in package.authors], cite=cite,
            license=package.license, documentation=FileDescr(source=folder / DOCUMENTATION),
            covers=[FileDescr(source=folder / COVER)], tags=["cellbench", "semantic-segmentation", "2d", "rgb",
                                                             package.arch.lower(), "pytorch"],
            inputs=inputs, outputs=outputs, weights=weights, config=config)


def write(folder: Path, package: Package, crop: Crop, expected: np.ndarray, onnx: bool) -> dict:
    """Write the package into ``folder`` (which holds the weights already): test tensors (``crop``
    and cellbench's ``expected`` probabilities of it), cover, documentation and rdf.yaml; then
    validate it and run bioimageio.core's test_model. RuntimeError when either fails."""
    folder = Path(folder).resolve()  # the spec resolves a relative source against its root once more
    np.save(folder / TEST_INPUT, crop.batch)
    np.save(folder / TEST_OUTPUT, expected[None].astype(np.float32))
    write_png(cover(crop, expected), folder / COVER)
    (folder / DOCUMENTATION).write_text(package.documentation, encoding="utf-8")
    from bioimageio.spec import save_bioimageio_package_as_folder
    with quiet():
        descr = describe(folder, package, onnx)
        save_bioimageio_package_as_folder(descr, output_path=folder)
    return check(folder / RDF)


def check(rdf: Path) -> dict:
    """Validate the description offline (bioimageio.spec) and run its test tensors through every
    weights format (bioimageio.core test_model, on the CPU). RuntimeError with the reasons on failure."""
    from bioimageio.core import test_model
    from bioimageio.spec import InvalidDescr, load_description
    with quiet():
        loaded = load_description(rdf, perform_io_checks=True)
        if isinstance(loaded, InvalidDescr):
            raise RuntimeError(f"the BioImage Model Zoo description {rdf} is invalid:\n"
                               f"{_errors(loaded.validation_summary)}")
        summary = test_model(rdf, devices=["cpu"])
    if summary.status != "passed":
        raise RuntimeError(f"bioimageio.core test_model failed on {rdf}:\n{_errors(summary)}")
    import bioimageio.core
    import bioimageio.spec
    return {"format_validation": loaded.validation_summary.status, "test_model": summary.status,
            "tests": [detail.name for detail in summary.details],
            "versions": {"bioimageio.spec": bioimageio.spec.__version__,
                         "bioimageio.core": bioimageio.core.__version__}}


def _errors(summary) -> str:
    return "\n".join(f"  {'.'.join(map(str, e.loc))}: {e.msg}" for e in summary.errors) or f"  status {summary.status}"


def zip_package(rdf: Path, out: Path) -> Path:
    """The package as one .zip for upload (bioimageio.spec checks it once more when writing)."""
    from bioimageio.spec import save_bioimageio_package
    with quiet():
        return Path(save_bioimageio_package(rdf, output_path=out))
