"""The winning fold ensemble outside cellbench: ONNX files, TorchScript files or a BioImage Model Zoo
package, each network taking RGB pixel values 0..255 and giving softmax probabilities, so that no
user has to re-implement cellbench's normalisation; a manifest.json beside them says how to tile,
augment and average them, and how closely they reproduce cellbench's own probabilities.

Kept free of torch at import: the Snakefile reads FORMATS while parsing.
"""

FORMATS = ("onnx", "torchscript", "bioimageio")

# why each model family that is not a plain smp network cannot become one traced graph
NOT_EXPORTABLE = {
    "maskrcnn": "Mask R-CNN's detection post-processing (proposal selection, non-maximum suppression, pasting "
                "each detection's mask into the image) is data-dependent control flow, which a traced ONNX or "
                "TorchScript graph freezes to the example image",
    "nucleus_guided": "NucleusGuided runs two networks with Python-side object steps between them (nuclei found "
                      "as objects, then each nucleus's crop predicted by the second stage), which is no single "
                      "network",
}
FAMILY_OF = {"MaskRCNN": "maskrcnn", "NucleusGuided": "nucleus_guided"}  # architectures that are no smp network


def refusal(arch: str, family: str) -> str:
    """Why ``arch`` cannot be exported, and what to do instead."""
    return (f"{arch} cannot be exported: {NOT_EXPORTABLE[family]}; export a segmentation-models-pytorch "
            "architecture (Unet, FPN, ...) instead")
