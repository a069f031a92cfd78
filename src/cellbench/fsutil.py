"""Writing outputs so that a failure never leaves a half-written one, and nothing cellbench did
not create is ever replaced.

Every output folder gets a marker file when cellbench writes it; an existing folder is replaced
only if it is empty or carries that marker. Single files carry their mark inside (Parquet
metadata, a key of a torch checkpoint, a PNG text chunk, the last line of a text file or page): an
existing file is replaced only if it has it. Work in progress lives in hidden siblings whose names
say which host and process made them; a later write of the same output removes those left by
processes that no longer run (a kill, a full disk), and nothing else.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import io
import json
import logging
import os
import shutil
import socket
import tempfile
import zipfile
from collections.abc import Iterable, Iterator
from pathlib import Path

import pandas as pd

from cellbench.errors import OutputError

log = logging.getLogger(__name__)

MARKER = ".cellbench-output"
WRITER = "cellbench"  # Parquet metadata key, torch dict key ("writer") of every file cellbench writes
TEXT_MARK = "# written by cellbench"  # last line of cellbench's text outputs
HTML_MARK = "<!-- written by cellbench -->"  # last line of its Markdown and HTML pages
PNG_MARK = {"Software": WRITER}  # a text chunk of its figures
_STAGING = "cellbench-staging"
_PARTIAL = "cellbench-partial"


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def owner() -> str:
    """host.pid: who is writing a staging folder or partial file."""
    host = "".join(c if c.isalnum() or c == "-" else "_" for c in socket.gethostname()) or "host"
    return f"{host}.{os.getpid()}"


def is_running(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def remove_leftovers(final: Path) -> list[Path]:
    """Remove the staging folders and partial files of ``final`` left by dead processes of this host."""
    final = Path(final)
    if not final.parent.is_dir():
        return []
    host = owner().rsplit(".", 1)[0]
    removed = []
    for kind in (_STAGING, _PARTIAL):
        for path in final.parent.glob(f".{glob_escape(final.name)}.{kind}.*"):
            parts = path.name[len(final.name) + len(kind) + 3:].split(".")
            if len(parts) < 3 or parts[0] != host or not parts[1].isdigit() or is_running(int(parts[1])):
                continue
            if path.is_dir() and not path.is_symlink():
                shutil.rmtree(path, ignore_errors=True)
            else:
                path.unlink(missing_ok=True)
            removed.append(path)
    if removed:
        log.info("removed %d leftover staging file(s) of %s from an interrupted run", len(removed), final)
    return removed


def glob_escape(name: str) -> str:
    return "".join(f"[{c}]" if c in "*?[]" else c for c in name)


def _check_replaceable(final: Path, inputs: Iterable[Path]) -> None:
    resolved = final.resolve()
    for given in inputs:
        source = Path(given).resolve()
        if source == resolved or resolved in source.parents:
            raise OutputError(f"output folder {final} is (or contains) the input {given}: choose another output "
                              "folder; nothing was written")
    if final.is_symlink() or (final.exists() and not final.is_dir()):
        raise OutputError(f"{final} exists and is not a folder cellbench created: choose another output folder "
                          "or remove it yourself; nothing was touched")
    if final.is_dir() and not (final / MARKER).is_file() and any(final.iterdir()):
        raise OutputError(f"{final} holds files cellbench did not write (no {MARKER} marker): choose another "
                          "output folder, or empty or remove it yourself; nothing was touched")
    if final.is_dir() and (final / MARKER).is_file():
        changed = user_changes(final)
        if changed:
            shown = ", ".join(changed[:5]) + (f" and {len(changed) - 5} more" if len(changed) > 5 else "")
            raise OutputError(f"{final} holds files edited or added since cellbench wrote it ({shown}): move them "
                              "elsewhere (or remove them yourself) and run again; nothing was touched")


def sha256(path: Path) -> str:
    """SHA-256 (hex) of a file's bytes, read in blocks."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _files(folder: Path) -> list[Path]:
    return sorted(p for p in folder.rglob("*") if (p.is_file() or p.is_symlink()) and p.name != MARKER)


def _marker_text(folder: Path) -> str:
    """The marker: a line for people, then a JSON record of every file (size, mtime, SHA-256), so that
    a later run can tell a file cellbench wrote from one a user edited or added."""
    record = {}
    for path in _files(folder):
        info = path.lstat()
        record[path.relative_to(folder).as_posix()] = [info.st_size, info.st_mtime_ns,
                                                       "" if path.is_symlink() else sha256(path)]
    return ("written by cellbench; this folder is replaced when its step runs again, unless a file in it was "
            "edited or added\n" + json.dumps({"files": record}, separators=(",", ":")) + "\n")


def user_changes(folder: Path) -> list[str]:
    """Files of a cellbench folder edited or added since it was written (by its marker's record: a
    file whose size or time changed is hashed again). A marker without a record (an older cellbench)
    vouches for the whole folder."""
    try:
        lines = (Path(folder) / MARKER).read_text(encoding="utf-8", errors="replace").splitlines()
        record = json.loads(lines[1])["files"] if len(lines) > 1 else None
    except (OSError, ValueError, KeyError, TypeError):
        record = None
    if not isinstance(record, dict):
        return []
    changed = []
    for path in _files(Path(folder)):
        name = path.relative_to(folder).as_posix()
        known = record.get(name)
        if not isinstance(known, list) or len(known) != 3:
            changed.append(name)
            continue
        info = path.lstat()
        if [info.st_size, info.st_mtime_ns] != known[:2] and (path.is_symlink() or sha256(path) != known[2]):
            changed.append(name)
    return changed


@contextlib.contextmanager
def staged_dir(final: Path, inputs: Iterable[Path] = ()) -> Iterator[Path]:
    """Yield an empty sibling folder; on success it replaces ``final``, on error it is removed.

    ``final`` is replaced only when it does not exist, is empty, or was written by cellbench (it
    holds the marker); ``final`` equal to or containing one of ``inputs`` is refused. Both checks
    happen before anything is written, and OutputError says what to do.
    """
    final = Path(final)
    inputs = list(inputs)
    _check_replaceable(final, inputs)
    final.parent.mkdir(parents=True, exist_ok=True)
    remove_leftovers(final)
    staging = Path(tempfile.mkdtemp(prefix=f".{final.name}.{_STAGING}.{owner()}.", dir=final.parent))
    try:
        yield staging
        (staging / MARKER).write_text(_marker_text(staging), encoding="utf-8")
        staging.chmod(0o777 & ~_umask())
        _check_replaceable(final, inputs)  # it may have changed while we worked
        if final.exists():
            shutil.rmtree(final)
        os.replace(staging, final)
    except OSError as err:
        shutil.rmtree(staging, ignore_errors=True)
        if err.errno in (errno.ENOSPC, errno.EDQUOT):
            raise OutputError(f"cannot write {final}: {os.strerror(err.errno)} (writing {err.filename or 'it'}); the "
                              "disk is full: free space and run again; nothing was kept") from None
        raise
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise


def written_by_cellbench(path: Path) -> bool:
    """Whether an existing file carries cellbench's mark (see the module docstring)."""
    path = Path(path)
    try:
        with open(path, "rb") as handle:
            head = handle.read(4)
            if head == b"PAR1":
                import pyarrow.parquet as pq
                return WRITER.encode() in (pq.read_schema(path).metadata or {})
            if head == b"PK\x03\x04":  # a torch file: look for the writer key in its pickle, unpickling nothing
                with zipfile.ZipFile(path) as archive:
                    pickles = [n for n in archive.namelist() if n.endswith("/data.pkl")]
                    return bool(pickles) and b"writer" in archive.read(pickles[0]) and WRITER.encode() in \
                        archive.read(pickles[0])
            if head == b"\x89PNG":  # a figure: its text chunks, read without decoding the pixels
                from PIL import Image
                with Image.open(path, formats=["PNG"]) as picture:
                    return picture.info.get("Software") == WRITER
            handle.seek(max(path.stat().st_size - 256, 0))
            return handle.read().decode("utf-8", "replace").rstrip("\n").endswith((TEXT_MARK, HTML_MARK))
    except (OSError, ValueError, SyntaxError, zipfile.BadZipFile):
        return False


def check_files_replaceable(paths: Iterable[Path], replaceable=None) -> None:
    """Before writing several files: one OutputError naming every one that exists and may not be
    replaced (see staged_file), so that nothing is touched when any is refused."""
    refused = []
    for path in map(Path, paths):
        try:
            _check_file_replaceable(path, replaceable or written_by_cellbench)
        except OutputError:
            refused.append(str(path))
    if refused:
        shown = ", ".join(refused[:5]) + (" ..." if len(refused) > 5 else "")
        raise OutputError(f"{len(refused)} output files exist and were not written by cellbench ({shown}): choose "
                          "another output, or remove them yourself; nothing was touched")


def _check_file_replaceable(final: Path, replaceable) -> None:
    if final.is_symlink() or (final.exists() and not final.is_file()):
        raise OutputError(f"{final} exists and is not a file cellbench wrote: choose another output; nothing was "
                          "touched")
    if final.exists() and not replaceable(final):
        raise OutputError(f"{final} exists and was not written by cellbench: choose another output, or remove it "
                          "yourself; nothing was touched")


@contextlib.contextmanager
def staged_file(final: Path, replaceable=written_by_cellbench) -> Iterator[Path]:
    """Yield a temporary path next to ``final``; it is renamed to ``final`` only on success. An
    existing ``final`` is replaced only if ``replaceable(final)`` (default: it carries cellbench's mark)."""
    final = Path(final)
    _check_file_replaceable(final, replaceable)
    final.parent.mkdir(parents=True, exist_ok=True)
    remove_leftovers(final)
    fd, tmp = tempfile.mkstemp(prefix=f".{final.name}.{_PARTIAL}.{owner()}.", dir=final.parent)
    os.close(fd)
    tmp_path = Path(tmp)
    try:
        yield tmp_path
        tmp_path.chmod(0o666 & ~_umask())
        os.replace(tmp_path, final)
    except BaseException:
        tmp_path.unlink(missing_ok=True)
        raise


def write_bytes(data: bytes, final: Path) -> None:
    """Write ``data`` atomically; a disk problem raises OutputError and leaves an old ``final`` intact."""
    try:
        with staged_file(final) as tmp:
            with open(tmp, "wb") as handle:
                handle.write(data)
                handle.flush()
                os.fsync(handle.fileno())
    except OSError as err:
        reason = os.strerror(err.errno) if err.errno else str(err)
        hint = " (the disk is full: free space and run again)" if err.errno in (errno.ENOSPC, errno.EDQUOT) else ""
        kept = "the previous file is kept" if final.exists() else "nothing was written"
        raise OutputError(f"cannot write {final}: {reason}{hint}; {kept}") from None


def save_torch(obj: dict, final: Path) -> None:
    """torch.save of a dict (marked with its writer), atomically and with a clear message on a disk
    problem (serialised in memory first: torch reports a failed write as a bare RuntimeError)."""
    import torch

    buffer = io.BytesIO()
    torch.save({"writer": WRITER, **obj}, buffer)
    write_bytes(buffer.getbuffer(), Path(final))


def write_text(text: str, final: Path) -> None:
    """Write a text output atomically, its last line cellbench's mark."""
    with staged_file(final) as tmp:
        tmp.write_text(text.rstrip("\n") + f"\n{TEXT_MARK}\n", encoding="utf-8")


def write_parquet(frame: pd.DataFrame, path: Path) -> None:
    """Write a table atomically (no index), marked as cellbench's in its metadata."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    table = pa.Table.from_pandas(frame, preserve_index=False)
    table = table.replace_schema_metadata({**(table.schema.metadata or {}), WRITER.encode(): b"1"})
    with staged_file(path) as tmp:
        pq.write_table(table, tmp)
