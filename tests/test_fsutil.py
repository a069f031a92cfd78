import errno
import os
import subprocess
import sys

import pandas as pd
import pytest

from cellbench import fsutil
from cellbench.errors import OutputError
from cellbench.fsutil import MARKER, remove_leftovers, save_torch, staged_dir, staged_file, write_parquet


def test_staged_dir_replaces_only_on_success(tmp_path):
    final = tmp_path / "out"
    with staged_dir(final) as stage:
        (stage / "a").write_text("1")
    assert (final / "a").read_text() == "1" and (final / MARKER).is_file()
    with pytest.raises(RuntimeError), staged_dir(final) as stage:
        (stage / "b").write_text("half")
        raise RuntimeError("boom")
    assert sorted(p.name for p in final.iterdir()) == [MARKER, "a"]
    assert [p.name for p in tmp_path.iterdir()] == ["out"]  # no staging folder left behind


def _tree(folder):
    return sorted((str(p.relative_to(folder)), p.read_bytes() if p.is_file() else b"") for p in folder.rglob("*"))


@pytest.mark.parametrize("content", ["user files", "a file"])
def test_a_folder_cellbench_did_not_write_is_never_replaced(tmp_path, content):
    final = tmp_path / "mine"
    if content == "a file":
        final.write_text("precious")
    else:
        final.mkdir()
        (final / "notes.txt").write_text("precious")
        (final / "sub").mkdir()
    before = _tree(tmp_path)
    with pytest.raises(OutputError, match="choose another output folder"), staged_dir(final) as stage:
        (stage / "x").write_text("1")
    assert _tree(tmp_path) == before


def test_an_output_that_is_or_contains_an_input_is_refused(tmp_path):
    images = tmp_path / "project" / "images"
    images.mkdir(parents=True)
    (images / "a.png").write_bytes(b"png")
    before = _tree(tmp_path)
    for out in (images, tmp_path / "project", tmp_path):
        with pytest.raises(OutputError, match="is \\(or contains\\) the input"), staged_dir(out, [images]):
            pass
    assert _tree(tmp_path) == before


def test_an_empty_folder_is_used(tmp_path):
    (tmp_path / "empty").mkdir()
    with staged_dir(tmp_path / "empty") as stage:
        (stage / "x").write_text("1")
    assert (tmp_path / "empty" / "x").read_text() == "1"


def test_leftovers_of_a_killed_run_are_removed_and_nothing_else(tmp_path):
    """A process killed while writing leaves its staging folder and partial file; the next run of the
    same output removes exactly those (dead process, this host), not a live one's or a stranger's."""
    code = ("import os, sys; from pathlib import Path; from cellbench.fsutil import staged_dir, staged_file\n"
            "d = staged_dir(Path(sys.argv[1]) / 'data'); stage = d.__enter__(); (stage / 'half').write_text('x')\n"
            "f = staged_file(Path(sys.argv[1]) / 'model.pt'); tmp = f.__enter__(); tmp.write_text('half')\n"
            "os._exit(9)\n")
    subprocess.run([sys.executable, "-c", code, str(tmp_path)], check=False)
    left = sorted(p.name for p in tmp_path.iterdir())
    assert len(left) == 2 and all("cellbench-" in name for name in left)
    live = tmp_path / f".data.cellbench-staging.{fsutil.owner()}.abc"  # this (running) process's
    live.mkdir()
    stranger = tmp_path / ".data.backup"
    stranger.mkdir()
    assert len(remove_leftovers(tmp_path / "data")) == 1
    assert len(remove_leftovers(tmp_path / "model.pt")) == 1
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([live.name, stranger.name])
    with staged_dir(tmp_path / "data") as stage:  # a real write cleans up the same way
        (stage / "x").write_text("1")
    assert live.is_dir() and stranger.is_dir()


def test_staged_file_is_atomic(tmp_path):
    target = tmp_path / "t.txt"
    with pytest.raises(ValueError), staged_file(target) as tmp:
        tmp.write_text("partial")
        raise ValueError
    assert list(tmp_path.iterdir()) == []
    write_parquet(pd.DataFrame({"a": [1]}), tmp_path / "x.parquet")
    assert pd.read_parquet(tmp_path / "x.parquet")["a"].tolist() == [1]
    assert oct((tmp_path / "x.parquet").stat().st_mode & 0o777) != oct(0o600)  # umask, not mkstemp's 0600


def test_a_full_disk_keeps_the_old_checkpoint_and_says_so(tmp_path, monkeypatch):
    path = tmp_path / "model.pt"
    save_torch({"epoch": 1}, path)
    old = path.read_bytes()
    real_open = open

    class FullDisk:
        def __init__(self, file, mode):
            self.handle = real_open(file, mode)

        def write(self, data):
            self.handle.write(bytes(data)[:10])
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            self.handle.close()

    monkeypatch.setattr(fsutil, "open", lambda file, mode="r": FullDisk(file, mode) if "w" in mode
                        else real_open(file, mode), raising=False)
    with pytest.raises(OutputError, match="No space left on device.*disk is full.*previous file is kept"):
        save_torch({"epoch": 2}, path)
    assert path.read_bytes() == old
    assert [p.name for p in tmp_path.iterdir()] == ["model.pt"]  # no partial file left


def test_a_file_cellbench_did_not_write_is_never_replaced(tmp_path):
    from cellbench.fsutil import write_text, written_by_cellbench
    notes = tmp_path / "notes.parquet"
    notes.write_text("precious")
    for write in (lambda p: write_parquet(pd.DataFrame({"a": [1]}), p), lambda p: write_text("x", p),
                  lambda p: save_torch({"a": 1}, p)):
        with pytest.raises(OutputError, match="was not written by cellbench"):
            write(notes)
        assert notes.read_text() == "precious"
    for name, write in (("t.parquet", lambda p: write_parquet(pd.DataFrame({"a": [1]}), p)),
                        ("t.txt", lambda p: write_text("x", p)), ("t.pt", lambda p: save_torch({"a": 1}, p))):
        write(tmp_path / name)
        assert written_by_cellbench(tmp_path / name)
        write(tmp_path / name)  # its own output is replaced
    pd.DataFrame({"a": [1]}).to_parquet(tmp_path / "theirs.parquet")
    import torch
    torch.save({"a": 1}, tmp_path / "theirs.pt")
    assert not written_by_cellbench(tmp_path / "theirs.parquet") and not written_by_cellbench(tmp_path / "theirs.pt")


def test_validate_never_overwrites_a_users_file(tmp_path, demo_raw, capsys):
    import json

    from cellbench.cli import main
    readme = tmp_path / "README.md"
    readme.write_text("# my project\n")
    settings = json.dumps({"data": {"annotations": str(demo_raw), "demo": False}, "results": str(tmp_path)})
    assert main(["validate", "--config-json", settings, "--out", str(readme)]) == 1
    assert "was not written by cellbench" in capsys.readouterr().err and readme.read_text() == "# my project\n"
    assert main(["validate", "--config-json", settings, "--out", str(tmp_path / "v.txt")]) == 0
    assert main(["validate", "--config-json", settings, "--out", str(tmp_path / "v.txt")]) == 0


def test_a_file_edited_or_added_in_a_cellbench_folder_is_never_replaced(tmp_path):
    final = tmp_path / "out"
    with staged_dir(final) as stage:
        (stage / "a.json").write_text("{}")
        (stage / "sub").mkdir()
        (stage / "sub" / "b.json").write_text("[]")
    os.utime(final / "a.json", ns=(1, 1))  # touched, not changed: still cellbench's
    with staged_dir(final) as stage:
        (stage / "a.json").write_text("{}")
        (stage / "sub").mkdir()
        (stage / "sub" / "b.json").write_text("[]")
    (final / "sub" / "b.json").write_text('["corrected in LabelMe"]')
    (final / "notes.txt").write_text("mine")
    before = _tree(final)
    with pytest.raises(OutputError, match=r"edited or added since cellbench wrote it \(notes.txt, sub/b.json\)"):
        with staged_dir(final) as stage:
            (stage / "a.json").write_text("new")
    assert _tree(final) == before  # nothing touched, no staging left
    assert [p.name for p in tmp_path.iterdir()] == ["out"]
    (final / "notes.txt").unlink()
    (final / "sub" / "b.json").write_text("[]")  # put back as cellbench wrote it: replaceable again
    with staged_dir(final) as stage:
        (stage / "c").write_text("")
    assert sorted(p.name for p in final.iterdir()) == [MARKER, "c"]


def test_a_folder_of_an_older_cellbench_marker_is_still_replaced(tmp_path):
    final = tmp_path / "out"
    final.mkdir()
    (final / MARKER).write_text("written by cellbench; this folder is replaced when its step runs again\n")
    (final / "old.png").write_bytes(b"x")
    with staged_dir(final) as stage:
        (stage / "new.png").write_bytes(b"y")
    assert sorted(p.name for p in final.iterdir()) == [MARKER, "new.png"]


def test_export_labelme_and_demo_keep_a_users_corrections(tmp_path, demo_data, capsys):
    from cellbench.cli import main
    out = tmp_path / "to_correct"
    args = ["export-labelme", "--masks", str(demo_data / "masks"), "--images", str(demo_data / "images"), "--out",
            str(out)]
    assert main(args) == 0
    corrected = sorted(out.glob("*.json"))[0]
    corrected.write_text(corrected.read_text().replace('"cytoplasm"', '"nucleus"', 1))
    kept = corrected.read_text()
    assert main(args) == 1
    assert f"edited or added since cellbench wrote it ({corrected.name})" in capsys.readouterr().err
    assert corrected.read_text() == kept
    demo_out = tmp_path / "demo"
    assert main(["demo", "--out", str(demo_out), "--n-images", "2"]) == 0
    assert main(["demo", "--out", str(demo_out), "--n-images", "2"]) == 0  # its own files: replaced
    (demo_out / "extra.json").write_text("{}")
    assert main(["demo", "--out", str(demo_out), "--n-images", "2"]) == 1
    assert "extra.json" in capsys.readouterr().err and (demo_out / "extra.json").is_file()


def test_report_into_a_users_folder_touches_nothing(tmp_path):
    from cellbench.report.make import make_report, outputs_in
    folder = tmp_path / "paper"
    folder.mkdir()
    (folder / "index.html").write_text("<p>my own page</p>")
    with pytest.raises(OutputError, match=r"1 output files exist and were not written by cellbench"):
        make_report(pd.DataFrame(), pd.DataFrame(), pd.DataFrame(), tmp_path, {}, pd.DataFrame(), folder)
    assert [p.name for p in folder.iterdir()] == ["index.html"] and len(outputs_in(folder)) > 5
