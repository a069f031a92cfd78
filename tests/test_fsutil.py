import pandas as pd
import pytest

from cellbench.fsutil import staged_dir, staged_file, write_parquet


def test_staged_dir_replaces_only_on_success(tmp_path):
    final = tmp_path / "out"
    with staged_dir(final) as stage:
        (stage / "a").write_text("1")
    assert (final / "a").read_text() == "1"
    with pytest.raises(RuntimeError), staged_dir(final) as stage:
        (stage / "b").write_text("half")
        raise RuntimeError("boom")
    assert sorted(p.name for p in final.iterdir()) == ["a"]
    assert [p.name for p in tmp_path.iterdir()] == ["out"]  # no staging folder left behind


def test_staged_file_is_atomic(tmp_path):
    target = tmp_path / "t.txt"
    with pytest.raises(ValueError), staged_file(target) as tmp:
        tmp.write_text("partial")
        raise ValueError
    assert list(tmp_path.iterdir()) == []
    write_parquet(pd.DataFrame({"a": [1]}), tmp_path / "x.parquet")
    assert pd.read_parquet(tmp_path / "x.parquet")["a"].tolist() == [1]
    assert oct((tmp_path / "x.parquet").stat().st_mode & 0o777) != oct(0o600)  # umask, not mkstemp's 0600
