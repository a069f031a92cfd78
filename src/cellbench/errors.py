"""Input problems reported all at once, like a linter."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class InputProblem:
    """One thing wrong with one input file."""

    file: Path
    message: str
    hint: str = ""

    def __str__(self) -> str:
        text = f"{self.file}: {self.message}"
        return f"{text} ({self.hint})" if self.hint else text


def internal_error(file: Path, err: BaseException) -> InputProblem:
    """Last resort when reading one input file raises what no check foresaw: that file is reported
    and the others are still checked. The fuzz tests assert that no input ever gets this message."""
    try:
        text = str(err)
    except Exception:  # an exception whose str() fails still names its type
        text = "?"
    text = text if len(text) <= 200 else text[:200] + "..."
    return InputProblem(file, f"internal error while reading this file ({type(err).__name__}: {text}); "
                              "please report it")


class InputError(Exception):
    """Raised with every problem found in the inputs, before any output is written."""

    def __init__(self, problems: list[InputProblem]):
        self.problems = list(problems)
        n = len(self.problems)
        lines = "\n".join(f"  {p}" for p in self.problems)
        super().__init__(f"{n} problem{'s' if n != 1 else ''} in the input:\n{lines}")


class ConfigError(ValueError):
    """The configuration (or a command-line choice) cannot work; the message says what to change."""


class OutputError(Exception):
    """An output cannot be written where it was asked for (it would replace what cellbench did not
    create, or an input); nothing was touched."""


class WeightsUnavailable(RuntimeError):
    """Pretrained weights were asked for but cannot be loaded (offline and not in the cache)."""


class Preempted(Exception):
    """Training stopped on a signal after saving a resumable state (cellbench.training.resume)."""

    exit_status = 143  # 128 + SIGTERM, what a job killed by SIGTERM reports
