import json

import pandas as pd
import pytest
from helpers import REPO, relabelled

from cellbench.cli import main
from cellbench.images import read_png, write_png


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
    settings = json.dumps({"dataset": "x", "results": str(tmp_path / "results"), "split": {"folds": 2},
                           "data": {"annotations": str(tmp_path), "demo": False}})
    report = tmp_path / "results" / "validation.txt"
    assert main(["validate", "--config-json", settings, "--out", str(report)]) == 1
    out = capsys.readouterr().out.splitlines()
    assert out[-1].startswith("NOT READY: 3 problems in 2 files; 1 image read")
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


def test_evaluate_one_class_named_cell_with_the_default_settings(tmp_path, demo_data, capsys):
    """classes [background, cell]: evaluate skips the defaults that do not fit, says so in its log,
    and scores a derived `cell` object type; a region the user wrote that does not fit stops it."""
    data = relabelled(demo_data, tmp_path / "data", [0, 1, 1])
    samples = pd.read_parquet(data / "manifest.parquet")["sample_id"].tolist()[:3]
    pd.DataFrame({"sample_id": samples, "fold": 0}).to_parquet(tmp_path / "splits.parquet")
    (tmp_path / "predictions").mkdir()
    for sample in samples:
        write_png(read_png(data / "masks" / f"{sample}.png"), tmp_path / "predictions" / f"{sample}.png")
    paths = ["--data", str(data), "--splits", str(tmp_path / "splits.parquet"), "--predictions",
             str(tmp_path / "predictions"), "--arch", "Unet", "--fold", "0"]
    outputs = ["--out", str(tmp_path / "m.parquet"), "--instances-out", str(tmp_path / "i.parquet"),
               "--objects-out", str(tmp_path / "o.parquet")]
    settings = {"dataset": "x", "classes": ["background", "cell"]}
    assert main(["evaluate", "--config-json", json.dumps(settings), *paths, *outputs]) == 0
    log = capsys.readouterr().err
    assert "WARNING cellbench.evaluation.evaluate: region 'cell' skipped: it is the name of a class" in log
    assert "INFO cellbench.evaluation.evaluate: object type 'cell' derived" in log
    instances = pd.read_parquet(tmp_path / "i.parquet")
    assert set(instances["object_type"]) == {"cell"} and instances["tp"].sum() > 0
    settings["evaluate"] = {"regions": {"whole": ["cell", "membrane"]}}
    assert main(["evaluate", "--config-json", json.dumps(settings), *paths, *outputs]) == 2
    assert ("cellbench evaluate: error: evaluate.regions.whole: no class 'membrane' in classes "
            "[background, cell]") in capsys.readouterr().err


def _snapshot(folder):
    return sorted((str(p.relative_to(folder)), p.stat().st_size) for p in folder.rglob("*"))


def test_demo_never_replaces_a_users_folder(tmp_path, capsys, monkeypatch):
    (tmp_path / "thesis.tex").write_text("precious")
    monkeypatch.chdir(tmp_path)
    before = _snapshot(tmp_path)
    assert main(["demo", "--out", ".", "--config-json", "{}"]) == 1
    assert "holds files cellbench did not write" in capsys.readouterr().err
    assert _snapshot(tmp_path) == before


def test_export_labelme_refuses_to_write_over_its_inputs(tmp_path, demo_data, capsys):
    masks = tmp_path / "masks"
    masks.mkdir()
    for name in ("demo_00", "demo_01"):
        (masks / f"{name}.png").write_bytes((demo_data / "masks" / f"{name}.png").read_bytes())
    images = tmp_path / "images"
    images.mkdir()
    for name in ("demo_00", "demo_01"):
        (images / f"{name}.png").write_bytes((demo_data / "images" / f"{name}.png").read_bytes())
    before = _snapshot(tmp_path)
    for out in (images, masks, tmp_path):
        status = main(["export-labelme", "--config-json", "{}", "--masks", str(masks), "--images", str(images),
                       "--out", str(out)])
        assert status == 1 and "is (or contains) the input" in capsys.readouterr().err
    assert _snapshot(tmp_path) == before
    assert main(["export-labelme", "--config-json", "{}", "--masks", str(masks), "--images", str(images),
                 "--out", str(tmp_path / "labelme")]) == 0
    assert len(list((tmp_path / "labelme").glob("*.json"))) == 2


def test_settings_are_exactly_what_was_sent(tmp_path, demo_data, capsys):
    """--settings fills in nothing: a step that reads a setting its rule did not send stops with the
    setting's name instead of silently using the default."""
    status = main(["augment", "--settings", json.dumps({"dataset": "x"}), "--data", str(demo_data),
                   "--out", str(tmp_path / "aug")])
    assert status == 2 and "setting augment.rotations was not sent to this step" in capsys.readouterr().err
    assert main(["augment", "--settings", json.dumps({"augment": {"rotations": 0}})]) == 2
    assert "augment/rotations" in capsys.readouterr().err


def test_only_configuration_errors_lose_their_traceback(monkeypatch, capsys):
    import numpy as np

    from cellbench import cli

    def bug(args, settings):
        np.zeros(2).reshape(3)  # a ValueError from deep inside numpy is a bug, not a configuration error

    parser = cli.build_parser()
    parser._subparsers._group_actions[0].choices["split"].set_defaults(func=bug)
    monkeypatch.setattr(cli, "build_parser", lambda: parser)
    with pytest.raises(ValueError, match="cannot reshape"):
        main(["split", "--config-json", "{}"])
