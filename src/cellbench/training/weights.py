"""Pretrained encoder weights for compute nodes without internet.

A local step fetches the weights once, on the submitting host, into a cache folder
(results/weights, a Hugging Face / torch hub cache); training jobs read them from there with the
hub set offline, so a missing file fails at once with a clear message instead of a network wait.
Call ``use_cache`` before segmentation_models_pytorch (or huggingface_hub) is imported.
"""

from __future__ import annotations

import os
from pathlib import Path


def use_cache(cache: Path, offline: bool) -> None:
    """Point the Hugging Face and torch hub caches at ``cache`` (and forbid downloads if ``offline``)."""
    cache = Path(cache).resolve()
    os.environ["HF_HOME"] = str(cache / "huggingface")
    os.environ["HF_HUB_CACHE"] = str(cache / "huggingface" / "hub")
    os.environ["TORCH_HOME"] = str(cache / "torch")
    if offline:
        os.environ["HF_HUB_OFFLINE"] = "1"
    else:
        os.environ.pop("HF_HUB_OFFLINE", None)


def require(encoder: str, weights: str) -> None:
    """Fail at once, with what to do, when the cached weights are missing (call after use_cache)."""
    from segmentation_models_pytorch.encoders import get_encoder

    from cellbench.errors import WeightsUnavailable

    try:
        get_encoder(encoder, weights=weights)
    except Exception as err:  # hub and cache failures come in many types
        cache = os.environ.get("HF_HUB_CACHE", "the Hugging Face cache")
        raise WeightsUnavailable(
            f"{weights!r} weights of encoder {encoder!r} are not in {cache} ({type(err).__name__}). Fetch them "
            "first on a host with internet (the workflow's fetch_weights step, or `cellbench fetch-weights`), "
            "or set train.encoder_weights: null") from None


def fetch(encoder: str, weights: str, cache: Path, marker: Path) -> None:
    """Download ``encoder``'s ``weights`` into ``cache`` (needs internet) and write ``marker``."""
    use_cache(cache, offline=False)
    from segmentation_models_pytorch.encoders import get_encoder

    from cellbench.errors import WeightsUnavailable

    try:
        get_encoder(encoder, weights=weights)
    except Exception as err:  # network, hub and cache failures come in many types
        raise WeightsUnavailable(f"cannot fetch {weights!r} weights of encoder {encoder!r} into {cache}: {err}. "
                           "Run this step on a host with internet access") from None
    from cellbench.fsutil import write_text
    write_text(f"{encoder} {weights}\n", Path(marker))
