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


def test_validate_lists_every_problem_and_writes_nothing(tmp_path, demo_raw, capsys):
    for name in ("demo_00", "demo_01", "demo_02"):
        for suffix in (".json", ".png"):
            (tmp_path / f"{name}{suffix}").write_bytes((demo_raw / f"{name}{suffix}").read_bytes())
    doc = json.loads((tmp_path / "demo_01.json").read_text())
    doc["shapes"][0]["label"] = "platelet"
    doc["shapes"][1]["points"] = [[1, 1]]
    (tmp_path / "demo_01.json").write_text(json.dumps(doc))
    (tmp_path / "demo_02.png").unlink()
    before = sorted(p.name for p in tmp_path.iterdir())
    settings = json.dumps({"dataset": "x", "results": str(tmp_path / "results"),
                           "data": {"annotations": str(tmp_path), "demo": False}})
    report = tmp_path / "results" / "validation.txt"
    assert main(["validate", "--config-json", settings, "--out", str(report)]) == 1
    out = capsys.readouterr().out.splitlines()
    assert out[-1].startswith("1 images fine, 3 problems")
    assert any("demo_01.json: shape 0: unknown label 'platelet'" in line for line in out)
    assert any("demo_01.json: shape 1" in line and "needs at least 3 points" in line for line in out)
    assert any("demo_02.json: image not found" in line for line in out)
    assert sorted(p.name for p in tmp_path.iterdir()) == before
    doc["shapes"][0]["label"], doc["shapes"][1]["points"] = "cytoplasm", [[1, 1], [5, 1], [5, 5]]
    (tmp_path / "demo_01.json").write_text(json.dumps(doc))
    (tmp_path / "demo_02.json").unlink()
    assert not report.exists()
    assert main(["validate", "--config-json", settings, "--out", str(report)]) == 0
    assert report.read_text().startswith("2 images fine, 0 problems")


def test_validate_a_folder_named_on_the_command_line(tmp_path, demo_raw, capsys):
    assert main(["validate", str(demo_raw), "--config-json", json.dumps({"results": str(tmp_path)})]) == 0
    assert capsys.readouterr().out.strip().endswith(f"problems (labelme: {demo_raw})")
