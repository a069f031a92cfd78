import re

from cellbench import provenance


def test_record_names_versions_and_commit():
    record = provenance.record()
    assert record["versions"]["torch"] != "not installed"
    assert record["versions"]["segmentation-models-pytorch"].startswith("0.6")
    assert re.fullmatch(r"[0-9a-f]{40}(\+dirty)?|unknown", record["git_commit"])


def test_commit_outside_a_repository_is_unknown(tmp_path):
    assert provenance.git_commit(tmp_path) == "unknown"
