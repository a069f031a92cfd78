"""Surviving preemption: a SIGTERM (what SLURM sends before it kills a job) makes training save a
resumable state and stop; the next run of the same job continues from it.

The state lives in its own folder (results/<dataset>/resume/<arch>/fold<k>/resume.pt), away from
the job's declared outputs, which Snakemake removes (with their empty folders) when a job fails.
"""

from __future__ import annotations

import logging
import signal
from pathlib import Path

import torch

from cellbench.fsutil import save_torch

log = logging.getLogger(__name__)

RESUME_FILE = "resume.pt"
STOP_SIGNALS = (signal.SIGTERM, signal.SIGUSR1)  # SLURM: TERM before the kill, USR1 with --signal


class StopRequests:
    """While active, a stop signal only sets ``requested``; the training loop checks it between steps."""

    def __init__(self):
        self.requested: int | None = None
        self._previous: dict[int, object] = {}

    def _handle(self, signum, frame) -> None:
        self.requested = signum
        log.warning("received %s: stopping after this step", signal.Signals(signum).name)

    def __enter__(self) -> StopRequests:
        for signum in STOP_SIGNALS:
            self._previous[signum] = signal.signal(signum, self._handle)
        return self

    def __exit__(self, *exc) -> None:
        for signum, handler in self._previous.items():
            signal.signal(signum, handler)


def rng_states() -> dict:
    states = {"torch": torch.get_rng_state()}
    if torch.cuda.is_available():
        states["cuda"] = torch.cuda.get_rng_state_all()
    return states


def restore_rng_states(states: dict) -> None:
    torch.set_rng_state(states["torch"])
    if "cuda" in states and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(states["cuda"])


def save_state(out_dir: Path, state: dict) -> Path:
    """Write the resumable state atomically (a kill or a full disk while writing keeps the previous one)."""
    path = Path(out_dir) / RESUME_FILE
    save_torch({**state, "rng": rng_states()}, path)
    return path


def load_state(out_dir: Path, identity: str) -> dict | None:
    """The saved state of an interrupted run of the same job on the same inputs, or None.

    A state of other inputs or settings, or one that cannot be read (truncated, not a cellbench
    state), is named in a warning and ignored: the job starts afresh and later replaces it.
    """
    path = Path(out_dir) / RESUME_FILE
    if not path.is_file():
        return None
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # truncated zip, foreign pickle, ...: torch raises many kinds
        log.warning("%s cannot be read (%s: %s): starting afresh", path, type(err).__name__, str(err)[:200])
        return None
    if not isinstance(state, dict) or not {"identity", "trainer", "progress", "rng"} <= set(state):
        log.warning("%s is not a cellbench training state: starting afresh", path)
        return None
    if state["identity"] != identity:
        log.warning("%s was saved for other inputs or settings (training images, variants or train "
                    "settings changed): starting afresh", path)
        return None
    return state


def clear_state(out_dir: Path) -> None:
    """Remove the state (and its folder when that is left empty)."""
    (Path(out_dir) / RESUME_FILE).unlink(missing_ok=True)
    try:
        Path(out_dir).rmdir()
    except OSError:  # not empty, or already gone
        pass
