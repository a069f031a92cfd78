import json

from conftest import REPO

from cellbench.cli import main


def test_ingest_error_exit_status_and_message(tmp_path, capsys):
    (tmp_path / "a.json").write_text("{not json")
    settings = json.dumps({"dataset": "x", "data": {"annotations": str(tmp_path), "demo": False}})
    status = main(["ingest", "--config-json", settings, "--out", str(tmp_path / "out")])
    err = capsys.readouterr().err
    assert status == 1
    assert f"{tmp_path / 'a.json'}: malformed JSON at line 1" in err
    assert not (tmp_path / "out").exists()


def test_invalid_config_exit_status(tmp_path, capsys):
    status = main(["split", "--config-json", json.dumps({"split": {"folds": 1}})])
    assert status == 2 and "split/folds" in capsys.readouterr().err


def test_config_files_and_overrides(tmp_path, demo_raw):
    out = tmp_path / "demo"
    assert main(["demo", "--config", str(REPO / "config.yaml"), "--out", str(out), "--n-images", "3",
                 "--metadata", str(tmp_path / "types.csv")]) == 0
    assert len(list(out.glob("*.json"))) == 3 and (tmp_path / "types.csv").is_file()
