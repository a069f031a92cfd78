"""One accessor for an ingested dataset (results/<dataset>/data/): the manifest, and each sample's
image, class map and instance map by id, so that no step re-reads the manifest or re-filters the
folds its own way."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from cellbench.errors import ConfigError, InputError, InputProblem
from cellbench.images import read_png

KINDS = ("image", "mask", "instances")  # manifest columns holding each sample's files


class Dataset:
    """An ingested dataset: ``manifest`` (indexed by sample_id) and readers by sample id.

    Parameters
    ----------
    folder:
        The folder ingest wrote (images/, masks/, instances/, manifest.parquet).
    """

    def __init__(self, folder: Path):
        self.folder = Path(folder)
        path = self.folder / "manifest.parquet"
        if not path.is_file():
            raise InputError([InputProblem(path, "does not exist", "it is made by `cellbench ingest`; run that first")])
        self.manifest = pd.read_parquet(path).set_index("sample_id")

    @property
    def ids(self) -> list[str]:
        """Every sample id, in manifest order."""
        return self.manifest.index.tolist()

    def path(self, sample_id: str, kind: str = "image") -> Path:
        """The file of one sample: kind image (RGB PNG), mask (class map) or instances (instance map)."""
        return self.folder / self.manifest.at[sample_id, kind]

    def image(self, sample_id: str) -> np.ndarray:
        """RGB uint8 (H, W, 3)."""
        return read_png(self.path(sample_id, "image"))

    def class_map(self, sample_id: str) -> np.ndarray:
        """Class indices uint8 (H, W), 255 = ignore."""
        return read_png(self.path(sample_id, "mask"))

    def instances(self, sample_id: str) -> np.ndarray:
        """Object ids uint16 (H, W), 0 = background."""
        return read_png(self.path(sample_id, "instances"))

    @staticmethod
    def fold_ids(splits: pd.DataFrame, fold: int) -> list[str]:
        """The sample ids of ``fold`` (the images it scores), in splits order."""
        if fold not in set(splits["fold"]):
            raise ConfigError(f"fold {fold} is not in the splits (folds: {sorted(set(splits['fold']))})")
        return splits.loc[splits["fold"] == fold, "sample_id"].tolist()

    @staticmethod
    def training_ids(splits: pd.DataFrame, fold: int) -> list[str]:
        """The sample ids of every other fold (what fold ``fold``'s model may learn from), in splits order."""
        Dataset.fold_ids(splits, fold)
        return splits.loc[splits["fold"] != fold, "sample_id"].tolist()
