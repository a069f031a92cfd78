"""Building segmentation-models-pytorch models and saving/loading self-describing checkpoints."""

from __future__ import annotations

import os
import pickle
import zipfile
from pathlib import Path

import segmentation_models_pytorch as smp
import torch

from cellbench.errors import ConfigError, InputError, InputProblem, WeightsUnavailable
from cellbench.fsutil import save_torch
from cellbench.training.targets import outputs


def size_divisor(model: torch.nn.Module) -> int:
    """Input height and width must be multiples of this: the encoder's output stride as smp
    declares it (8 for PSPNet and DeepLabV3, 16 for DeepLabV3+ and PAN, usually 32)."""
    return int(getattr(getattr(model, "encoder", None), "output_stride", 32))


def build(arch: str, encoder: str, n_classes: int, encoder_weights: str | None = None,
          in_channels: int = 3) -> torch.nn.Module:
    """A freshly initialised model; pretrained encoder weights only when asked for."""
    try:
        return smp.create_model(arch, encoder_name=encoder, encoder_weights=encoder_weights,
                                in_channels=in_channels, classes=n_classes)
    except KeyError as err:
        raise ConfigError(f"unknown architecture or encoder: {arch} / {encoder} ({err})") from None
    except Exception as err:  # network and cache failures come in many types
        if encoder_weights is None:
            raise
        cache = os.environ.get("HF_HUB_CACHE") or os.environ.get("HF_HOME") or "the Hugging Face cache"
        raise WeightsUnavailable(
            f"cannot load {encoder_weights!r} weights for encoder {encoder!r} from {cache}: {err}. Compute "
            "nodes read them offline: fetch them first on a host with internet (the workflow's fetch_weights "
            "step, or `cellbench fetch-weights`), or set train.encoder_weights: null") from None


def cpu_weights(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    """A copy of the model's weights on the CPU."""
    return {k: v.detach().to("cpu", copy=True) for k, v in model.state_dict().items()}


def save_checkpoint(path: Path, model: torch.nn.Module | dict, meta: dict) -> None:
    """Weights (on CPU) plus everything needed to rebuild the model and know where it came from.
    ``model`` may be a module or a weights dict from cpu_weights."""
    state = model if isinstance(model, dict) else cpu_weights(model)
    save_torch({"state_dict": state, **meta}, Path(path))


def load_checkpoint(path: Path, device: str | torch.device = "cpu") -> tuple[torch.nn.Module, dict]:
    """Rebuild the model from a checkpoint (weights-only unpickling); return it in eval mode. A file
    that is not a whole cellbench checkpoint is an InputError naming it."""
    try:
        return _load_checkpoint(Path(path), device)
    except (ConfigError, WeightsUnavailable):
        raise
    except FileNotFoundError:
        raise InputError([InputProblem(Path(path), "does not exist", "train the model first")]) from None
    except Exception as err:  # truncated, not a zip, a pickle with code, missing or mistyped keys
        if isinstance(err, pickle.UnpicklingError):
            reason = "it holds objects or code a checkpoint never holds (refused without running them)"
        elif isinstance(err, (RuntimeError, EOFError, zipfile.BadZipFile)):
            reason = "it is truncated or damaged"
        else:
            reason = f"it lacks what a checkpoint holds ({type(err).__name__}: {str(err)[:100]})"
        raise InputError([InputProblem(Path(path), f"is not a cellbench checkpoint: {reason}",
                                       "train the model again (its train step writes it)")]) from None


def _load_checkpoint(path: Path, device: str | torch.device) -> tuple[torch.nn.Module, dict]:
    checkpoint = torch.load(path, map_location="cpu", weights_only=True)
    if not isinstance(checkpoint, dict):
        raise TypeError(f"a {type(checkpoint).__name__}, not a dict")
    if checkpoint.get("family") == "maskrcnn":
        from cellbench.training import maskrcnn
        model = maskrcnn.build(len(checkpoint["detection_types"]), checkpoint["mean"], checkpoint["std"],
                               {key: checkpoint[key] for key in maskrcnn.SHAPE})
    elif checkpoint.get("family") == "nucleus_guided":
        from cellbench.training import nucleus_guided
        model = nucleus_guided.rebuild(checkpoint)
    else:
        n_outputs = len(outputs(checkpoint["classes"], checkpoint.get("target", "classes")))
        model = build(checkpoint["arch"], checkpoint["encoder"], n_outputs, encoder_weights=None,
                      in_channels=checkpoint["in_channels"])
    model.load_state_dict(checkpoint["state_dict"])
    meta = {k: v for k, v in checkpoint.items() if k not in ("state_dict", "writer")}
    return model.to(device).eval(), meta
