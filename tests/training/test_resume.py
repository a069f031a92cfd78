"""Preemption: SIGTERM saves a resumable state, the rerun continues and ends as an uninterrupted run."""

import json
import os
import signal
import subprocess
import sys
import time

import pandas as pd
import pytest
import torch
from helpers import make_config

from cellbench.dataset.split import make_splits
from cellbench.training import augment, models, resume, train


def test_stop_signal_only_sets_a_flag_while_active():
    saved = {signum: signal.getsignal(signum) for signum in resume.STOP_SIGNALS}
    caught = []

    def before(signum, frame):  # the handler in place before: it must be back afterwards
        caught.append(signum)

    try:
        for signum in resume.STOP_SIGNALS:
            signal.signal(signum, before)
        with resume.StopRequests() as stop:
            for signum in resume.STOP_SIGNALS:
                assert signal.getsignal(signum) == stop._handle
                os.kill(os.getpid(), signum)
                assert stop.requested == signum
        assert caught == []
        for signum in resume.STOP_SIGNALS:
            assert signal.getsignal(signum) != stop._handle
            assert signal.getsignal(signum) is before
        os.kill(os.getpid(), signal.SIGTERM)
        assert caught == [signal.SIGTERM] and stop.requested == resume.STOP_SIGNALS[-1]
    finally:
        for signum, handler in saved.items():
            signal.signal(signum, handler)


def test_state_of_other_settings_is_not_resumed(tmp_path):
    resume.save_state(tmp_path, {"identity": "a", "trainer": {"x": torch.ones(2)}, "progress": {}})
    assert resume.load_state(tmp_path, "b") is None
    state = resume.load_state(tmp_path, "a")
    assert torch.equal(state["trainer"]["x"], torch.ones(2)) and "torch" in state["rng"]
    resume.clear_state(tmp_path)
    assert resume.load_state(tmp_path, "a") is None


@pytest.fixture(scope="module")
def fold_inputs(demo_data, demo_raw, tmp_path_factory):
    root = tmp_path_factory.mktemp("resume")
    augment.augment(demo_data, root / "augmented", rotations=4, flip=False)
    splits = make_splits(pd.read_parquet(demo_data / "manifest.parquet"), make_config(demo_raw)["split"])
    splits.to_parquet(root / "splits.parquet", index=False)
    return root


TRAIN = {"epochs": 3, "steps_per_epoch": 30, "batch_size": 8, "crop_size": 64, "encoder": "resnet18",
         "threads": 1}


def train_command(demo_data, root, out, resume_dir):
    settings = json.dumps({"dataset": "t", "classes": ["background", "cytoplasm", "nucleus"], "train": TRAIN})
    return [sys.executable, "-m", "cellbench", "train", "--config-json", settings, "--arch", "Unet", "--fold", "0",
            "--data", str(demo_data), "--augmented", str(root / "augmented"), "--splits",
            str(root / "splits.parquet"), "--out", str(out), "--resume-dir", str(resume_dir), "--threads", "1"]


def test_sigterm_mid_epoch_then_rerun_resumes_and_ends_like_an_uninterrupted_run(demo_data, demo_raw,
                                                                                 fold_inputs, tmp_path):
    out, saved = tmp_path / "model", tmp_path / "resume"
    job = subprocess.Popen(train_command(demo_data, fold_inputs, out, saved), stderr=subprocess.PIPE, text=True)
    seen = []
    for line in job.stderr:  # wait until epoch 1 is done, then kill in the middle of epoch 2
        seen.append(line)
        if "epoch 1/3" in line:
            time.sleep(0.3)
            job.send_signal(signal.SIGTERM)
            break
    seen += job.stderr.readlines()
    assert job.wait(timeout=300) == 143, "".join(seen)  # 128 + SIGTERM, as SLURM expects of a preempted job
    assert (saved / resume.RESUME_FILE).is_file() and not (out / "model.pt").exists()
    assert "preempted" in "".join(seen)

    rerun = subprocess.run(train_command(demo_data, fold_inputs, out, saved), capture_output=True, text=True,
                           timeout=300)
    assert rerun.returncode == 0, rerun.stderr
    resumed_at = [line for line in rerun.stderr.splitlines() if "resuming from" in line]
    assert resumed_at and "at epoch 2, step" in resumed_at[0], rerun.stderr
    step = int(resumed_at[0].rsplit("step", 1)[1])
    assert 0 < step < TRAIN["steps_per_epoch"]  # it was stopped mid-epoch
    history = pd.read_parquet(out / "history.parquet")
    assert history["epoch"].tolist() == [1, 2, 3]
    assert not (saved / resume.RESUME_FILE).exists()

    config = make_config(demo_raw, train=TRAIN)  # the same job, never interrupted
    straight = train.train_fold(config, "Unet", 0, demo_data, fold_inputs / "augmented",
                                fold_inputs / "splits.parquet", tmp_path / "straight", threads=1)
    assert history["train_loss"].tolist() == pytest.approx(straight["train_loss"].tolist(), rel=1e-5)
    resumed_model, _ = models.load_checkpoint(out / "model.pt")
    straight_model, _ = models.load_checkpoint(tmp_path / "straight" / "model.pt")
    for (name, a), b in zip(resumed_model.state_dict().items(), straight_model.state_dict().values(), strict=True):
        assert torch.allclose(a, b, atol=1e-5), name


def test_an_unreadable_or_foreign_state_is_named_and_ignored(tmp_path, caplog):
    path = tmp_path / resume.RESUME_FILE
    resume.save_state(tmp_path, {"identity": "a", "trainer": {}, "progress": {}})
    path.write_bytes(path.read_bytes()[:100])  # truncated by a kill or a full disk
    assert resume.load_state(tmp_path, "a") is None
    assert str(path) in caplog.text and "cannot be read" in caplog.text
    torch.save({"weights": torch.ones(1)}, path)  # someone else's file
    assert resume.load_state(tmp_path, "a") is None
    assert "not a cellbench training state" in caplog.text


def test_the_resume_identity_is_a_digest_of_the_real_inputs(demo_data, demo_raw, fold_inputs, tmp_path):
    """A state saved before a change of split, augmentation, data or model settings is not resumed; a
    change of threads or of how often states are saved does not matter."""
    from cellbench.settings import Settings
    from cellbench.training.variants import VariantStore

    splits = pd.read_parquet(fold_inputs / "splits.parquet")
    manifest = pd.read_parquet(demo_data / "manifest.parquet").set_index("sample_id")
    store = VariantStore(fold_inputs / "augmented")

    def identity(config=None, splits=splits, variants=store.manifest):
        settings = Settings.build(config or make_config(demo_raw, train=TRAIN))
        plan = train.plan_fold(splits, 0, "last", 0.2, 0)
        rows = variants[variants["sample_id"].isin(plan.train_ids)]
        return train.run_identity(settings, "Unet", plan, manifest, rows)

    base = identity()
    assert identity() == base
    assert identity(make_config(demo_raw, train={**TRAIN, "threads": 2, "resume_every_minutes": 1})) == base
    assert identity(make_config(demo_raw, train={**TRAIN, "learning_rate": 0.01})) != base
    moved = splits.copy()
    moved.loc[moved["fold"].eq(1).idxmax(), "fold"] = 0  # one training image now in the scored fold
    assert identity(splits=moved) != base
    rotated = store.manifest.assign(angle=store.manifest["angle"] + 1.0)  # other augmentation
    assert identity(variants=rotated) != base
    edited = manifest.copy()
    edited.iloc[0, edited.columns.get_loc("n_objects")] += 1  # other annotations of a training image
    assert train.run_identity(Settings.build(make_config(demo_raw, train=TRAIN)), "Unet",
                              train.plan_fold(splits, 0, "last", 0.2, 0), edited,
                              store.manifest[store.manifest["sample_id"].isin(
                                  train.plan_fold(splits, 0, "last", 0.2, 0).train_ids)]) != base
