"""A tiny train+predict cycle: seeded runs repeat bit for bit, other seeds differ, predictions sit on the image grid."""

import json
import os
import time

import numpy as np
import pytest
import torch

from lungsynth.errors import InputError
from lungsynth.io import read_nifti
from lungsynth.nnunet.environment import nnunet_environment, trainer_search_path
from lungsynth.nnunet.evaluate import dice
from lungsynth.nnunet.run import (load_predictor, predict_cases, predict_image, run_record, train_run,
                                  trained_model_folder)
from lungsynth.nnunet.trainer import TRAINER_NAME, nnUNetTrainer_lungsynth


@pytest.fixture(scope="module")
def runs(preprocessed, tmp_path_factory):
    """Three runs of the Real arm: seeds 7, 7 and 8."""
    root = tmp_path_factory.mktemp("runs")
    settings = preprocessed["settings"]
    out = {}
    for name, seed in (("a", 7), ("b", 7), ("c", 8)):
        started = time.time()
        checkpoint = train_run(preprocessed["dataset"], root / name / "model", settings.plan, settings.train,
                               seed=seed, threads=1, record={"arm": "Real", "run": 1})
        out[name] = {"model": root / name / "model", "checkpoint": checkpoint, "seconds": time.time() - started}
    return out


def weights(checkpoint):
    return torch.load(checkpoint, map_location="cpu", weights_only=False)["network_weights"]


def test_same_seed_same_threads_gives_identical_weights(runs):
    a, b = weights(runs["a"]["checkpoint"]), weights(runs["b"]["checkpoint"])
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def test_other_seed_gives_other_weights(runs):
    a, c = weights(runs["a"]["checkpoint"]), weights(runs["c"]["checkpoint"])
    assert not all(torch.equal(a[k], c[k]) for k in a)


def test_same_seed_gives_same_predictions_and_dice(runs, toy_cases, tmp_path, preprocessed):
    images = {"toy005": toy_cases["toy005"][0]}
    predictions = [predict_cases(runs[r]["model"], images, tmp_path / r, preprocessed["settings"].predict)["toy005"]
                   for r in ("a", "b")]
    first, second = (read_nifti(p)[0] for p in predictions)
    assert np.array_equal(first, second)
    truth = read_nifti(toy_cases["toy005"][1])[0]
    assert dice(truth, first) == dice(truth, second)


def test_run_folder_is_nnunets_model_folder_with_our_records(runs, preprocessed):
    model = runs["a"]["model"]
    settings = preprocessed["settings"]
    folder = trained_model_folder(model)
    assert runs["a"]["checkpoint"] == folder / "fold_0" / "checkpoint_final.pth"
    assert runs["a"]["checkpoint"].exists()
    assert folder.name == f"{TRAINER_NAME}__lungsynthTiny__3d_fullres"
    assert (folder / "plans.json").exists() and (folder / "dataset.json").exists()
    record = run_record(model)
    assert record["seed"] == 7 and record["threads"] == 1 and record["seconds"] > 0
    assert record["arm"] == "Real" and record["run"] == 1 and record["train"]["epochs"] == settings.train.epochs
    log = (model / "training_log.csv").read_text().splitlines()
    assert log[0].startswith("epoch,train_loss") and len(log) == 1 + settings.train.epochs
    assert not model.with_name("model.partial").exists()
    assert (folder / "fold_0" / "progress.png").exists()


def test_predictions_are_binary_masks_on_the_image_grid(runs, toy_cases, tmp_path, preprocessed):
    written = predict_cases(runs["a"]["model"], {c: toy_cases[c][0] for c in ("toy004", "toy005")}, tmp_path,
                            preprocessed["settings"].predict)
    assert sorted(written) == ["toy004", "toy005"]
    for case, path in written.items():
        prediction, geometry = read_nifti(path)
        image, image_geometry = read_nifti(toy_cases[case][0])
        assert prediction.shape == image.shape and geometry.matches(image_geometry)
        assert prediction.dtype == np.uint8 and set(np.unique(prediction)) <= {0, 1}


def test_batched_tiles_equal_nnunets_own_loop(runs, preprocessed):
    """Several tiles per network call give nnU-Net's logits (half-precision accumulation)."""
    predictor = load_predictor(runs["a"]["model"], preprocessed["settings"].predict)
    data = torch.randn(1, 40, 32, 48)  # 2 x 1 x 2 tiles of 32^3
    for mirroring in (False, True):
        predictor.use_mirroring = mirroring
        predictor.tile_batch = 1
        reference = predictor.predict_sliding_window_return_logits(data).float()
        predictor.tile_batch = 4
        batched = predictor.predict_sliding_window_return_logits(data).float()
        assert batched.shape == reference.shape
        assert torch.allclose(batched, reference, atol=2e-2, rtol=1e-2)
        assert (batched.argmax(0) == reference.argmax(0)).float().mean() > 0.999


def test_extTrainer_folder_yields_our_trainer_class():
    """The search nnU-Net 2.8 runs for each ``nnUNet_extTrainer`` folder finds the project's class itself."""
    from nnunetv2.utilities.find_class_by_name import recursive_find_python_class

    path = trainer_search_path()
    found = recursive_find_python_class(path, TRAINER_NAME, None, base_folder=path,
                                        cleanup_imports_from_base_folder=True)
    assert found is nnUNetTrainer_lungsynth
    assert recursive_find_python_class(path, "nnUNetTrainer_other", None, base_folder=path,
                                       cleanup_imports_from_base_folder=True) is None
    with nnunet_environment():
        assert path in os.environ["nnUNet_extTrainer"].split(os.pathsep)


def _torchvision_imports() -> bool:
    try:
        import torchvision  # noqa: F401  (nnU-Net's trainer scan imports timm -> torchvision)
    except Exception:
        return False
    return True


@pytest.mark.skipif(not _torchvision_imports(), reason="torchvision does not import (CUDA build beside CPU torch): "
                                                       "nnU-Net's scan of its own trainers fails before extTrainer")
def test_nnunets_own_loading_by_name_predicts_like_ours(runs, toy_cases):
    from nnunetv2.inference.predict_from_raw_data import nnUNetPredictor

    from lungsynth.nnunet.settings import PredictSettings

    with nnunet_environment():
        own = nnUNetPredictor(use_mirroring=False, device=torch.device("cpu"), allow_tqdm=False)
        own.initialize_from_trained_model_folder(str(trained_model_folder(runs["a"]["model"])), use_folds=(0,))
    ours = load_predictor(runs["a"]["model"], PredictSettings.from_config(), tile_batch=1)
    image = toy_cases["toy005"][0]
    assert np.array_equal(predict_image(own, image), predict_image(ours, image))


def test_killed_run_continues_from_its_latest_checkpoint(preprocessed, tmp_path, monkeypatch):
    settings = preprocessed["settings"]
    original = nnUNetTrainer_lungsynth.on_epoch_end

    def killed_after_first_epoch(self):
        original(self)
        raise KeyboardInterrupt("killed")

    monkeypatch.setattr(nnUNetTrainer_lungsynth, "on_epoch_end", killed_after_first_epoch)
    with pytest.raises(KeyboardInterrupt):
        train_run(preprocessed["dataset"], tmp_path / "model", settings.plan, settings.train, seed=7,
                  checkpoint_every=1)
    partial = tmp_path / "model.partial"
    assert not (tmp_path / "model").exists()
    assert list(partial.rglob("checkpoint_latest.pth"))
    monkeypatch.setattr(nnUNetTrainer_lungsynth, "on_epoch_end", original)

    resumed = time.time()
    checkpoint = train_run(preprocessed["dataset"], tmp_path / "model", settings.plan, settings.train, seed=7,
                           checkpoint_every=1)
    assert checkpoint.exists() and not partial.exists()
    ckpt = torch.load(checkpoint, map_location="cpu", weights_only=False)
    starts = ckpt["logging"]["epoch_start_timestamps"]
    assert len(starts) == 2 and starts[0] < resumed <= starts[1]  # epoch 0 was not trained again


def test_missing_preprocessed_dataset_is_an_input_error(tmp_path, preprocessed):
    with pytest.raises(InputError, match="plan_and_preprocess"):
        train_run(tmp_path / "Dataset501_Real", tmp_path / "model", preprocessed["settings"].plan,
                  preprocessed["settings"].train, seed=1)


def test_missing_or_damaged_checkpoint_is_an_input_error(runs, tmp_path, preprocessed):
    import shutil

    copy = tmp_path / "model"
    shutil.copytree(runs["a"]["model"], copy)
    checkpoint = next(copy.rglob("checkpoint_final.pth"))
    checkpoint.write_bytes(b"not a checkpoint")
    with pytest.raises(InputError, match="not a readable checkpoint"):
        load_predictor(copy, preprocessed["settings"].predict)
    checkpoint.unlink()
    with pytest.raises(InputError, match="file not found"):
        load_predictor(copy, preprocessed["settings"].predict)
    with pytest.raises(InputError, match="one trained nnU-Net model folder"):
        load_predictor(tmp_path / "nothing", preprocessed["settings"].predict)


def test_tiny_cycle_is_fast(runs):
    assert all(r["seconds"] < 30 for r in runs.values())


def test_without_the_trainers_seeding_runs_differ(preprocessed, tmp_path, monkeypatch):
    """nnU-Net alone is not reproducible: the seed in initialize() is what makes runs repeat."""
    import lungsynth.nnunet.trainer as trainer_module

    monkeypatch.setattr(trainer_module, "seed_everything", lambda seed: None)
    settings = preprocessed["settings"]
    first = weights(train_run(preprocessed["dataset"], tmp_path / "x", settings.plan, settings.train, seed=7))
    second = weights(train_run(preprocessed["dataset"], tmp_path / "y", settings.plan, settings.train, seed=7))
    assert not all(torch.equal(first[k], second[k]) for k in first)


def test_mask_fidelity_scores_each_volume_against_its_mask_and_relates_it_to_real_test_dice(
        runs, toy_cases, tmp_path, preprocessed):
    import pandas as pd

    from lungsynth.nnunet.evaluate import dice_table
    from lungsynth.pipeline.fidelity import mask_fidelity
    from lungsynth.stats import with_record

    run_dir = tmp_path / "Real" / "run1"
    run_dir.mkdir(parents=True)
    (run_dir / "model").symlink_to(runs["a"]["model"])
    real = predict_cases(run_dir / "model", {"toy005": toy_cases["toy005"][0]}, tmp_path / "real",
                         preprocessed["settings"].predict)
    with_record(dice_table({"toy005": (toy_cases["toy005"][1], real["toy005"])}), "Real", 1, "test").to_csv(
        run_dir / "test_dice.csv", index=False)
    # the "synthetic" volumes: toy004 with its own mask, and toy004's image against toy005's mask
    images = [toy_cases["toy004"][0], tmp_path / "shifted.nii.gz"]
    (tmp_path / "shifted.nii.gz").symlink_to(toy_cases["toy004"][0])
    masks = [toy_cases["toy004"][1], tmp_path / "masks" / "shifted.nii.gz"]
    masks[1].parent.mkdir()
    masks[1].symlink_to(toy_cases["toy005"][1])
    out = tmp_path / "fidelity.csv"
    mask_fidelity([run_dir / "model"], images, masks, [run_dir / "test_dice.csv"], out, {}, threads=1)
    table = pd.read_csv(out).set_index("case")
    assert list(table.index) == ["shifted", "toy004", "summary"]
    assert table.loc["toy004", "run"] == "1"
    assert table.loc["toy004", "dice"] > table.loc["shifted", "dice"]   # the nodule is where its own mask is
    summary = table.loc["summary"]
    assert summary["dice"] == pytest.approx(table.loc[["shifted", "toy004"], "dice"].mean())
    assert summary["real_test_dice"] == pytest.approx(pd.read_csv(run_dir / "test_dice.csv")["dice"].mean())
    assert summary["ratio"] == pytest.approx(summary["dice"] / summary["real_test_dice"])


def test_bf16_prediction_falls_back_where_slow_and_keeps_the_predictions_shape_and_dtype(
        runs, toy_cases, tmp_path, monkeypatch):
    from lungsynth import runtime
    from lungsynth.nnunet.settings import PredictSettings

    images = {"toy005": toy_cases["toy005"][0]}
    model = runs["a"]["model"]
    monkeypatch.setattr(runtime, "cpu_has_fast_bf16", lambda: False)       # an AVX2-only CPU
    slow = load_predictor(model, PredictSettings.from_config({"bf16": True}))
    assert not slow.network._forward_pre_hooks                           # fp32: no autocast around the net
    fp32 = read_nifti(predict_cases(model, images, tmp_path / "fp32", PredictSettings.from_config())["toy005"])[0]
    monkeypatch.setattr(runtime, "cpu_has_fast_bf16", lambda: True)
    fast = load_predictor(model, PredictSettings.from_config({"bf16": True}))
    assert fast.network._forward_pre_hooks
    with torch.no_grad():
        out = fast.network(torch.zeros(2, 1, 32, 32, 32))
    assert out.dtype == torch.float32
    bf16 = read_nifti(predict_cases(model, images, tmp_path / "bf16",
                                    PredictSettings.from_config({"bf16": True}))["toy005"])[0]
    assert bf16.shape == fp32.shape and bf16.dtype == fp32.dtype
    truth = read_nifti(toy_cases["toy005"][1])[0]
    assert abs(dice(truth, bf16) - dice(truth, fp32)) < 0.1


def test_bf16_training_runs_under_autocast_on_a_fast_cpu(preprocessed, tmp_path, monkeypatch):
    from lungsynth import runtime

    settings = preprocessed["settings"]
    monkeypatch.setattr(runtime, "cpu_has_fast_bf16", lambda: True)
    seen = []
    original = nnUNetTrainer_lungsynth.train_step

    def spy(self, batch):
        seen.append(self.cpu_bf16)
        return original(self, batch)

    monkeypatch.setattr(nnUNetTrainer_lungsynth, "train_step", spy)
    checkpoint = train_run(preprocessed["dataset"], tmp_path / "model", settings.plan,
                           settings.train.replace(bf16=True), seed=7)
    assert checkpoint.exists() and seen and all(seen)
    weights = torch.load(checkpoint, map_location="cpu", weights_only=False)["network_weights"]
    assert all(w.dtype == torch.float32 for w in weights.values() if w.is_floating_point())


@pytest.mark.parametrize("share, oversampling, forced, probabilistic", [
    (0.33, "per_batch", 1, False), (0.66, "per_batch", 1, False), (0.8, "per_batch", 2, False),
    (0.2, "per_batch", 0, False), (0.66, "probabilistic", None, True)])
def test_foreground_oversampling_is_what_nnunet_does_at_the_batch_size_and_is_logged(
        preprocessed, tmp_path, monkeypatch, share, oversampling, forced, probabilistic):
    from nnunetv2.training.dataloading.data_loader import nnUNetDataLoader

    from lungsynth.nnunet.trainer import foreground_oversampling

    settings = preprocessed["settings"]
    train = settings.train.replace(oversample_foreground=share, oversampling=oversampling)
    text = foreground_oversampling(train, 2)
    assert (f"{forced} of 2 patches" in text) if forced is not None else "probability 0.66" in text
    seen = {}
    original = nnUNetDataLoader.__init__

    def spy(self, *args, **kwargs):
        original(self, *args, **kwargs)
        seen["per_batch"] = [self.get_do_oversample(i) for i in range(self.batch_size)]
        seen["probabilistic"] = self.get_do_oversample == self._probabilistic_oversampling

    monkeypatch.setattr(nnUNetDataLoader, "__init__", spy)
    train_run(preprocessed["dataset"], tmp_path / "model", settings.plan, train, seed=3)
    assert seen["probabilistic"] is probabilistic
    if forced is not None:
        assert sum(seen["per_batch"]) == forced    # the log says what nnU-Net's loader does
    log = next((tmp_path / "model").rglob("training_log_*.txt")).read_text()
    assert text in log


def test_predict_cases_cuts_to_the_lung_only_when_the_margin_is_set(runs, toy_cases, tmp_path, preprocessed,
                                                                    monkeypatch):
    from lungsynth.nnunet.settings import PredictSettings

    calls = []

    def record(segmentation, hu, spacing, margin_mm, threshold_hu, name=""):
        calls.append((margin_mm, threshold_hu, hu.shape, tuple(spacing)))
        return np.zeros_like(segmentation)

    monkeypatch.setattr("lungsynth.nnunet.run.restrict_to_lung", record)
    images = {"toy005": toy_cases["toy005"][0]}
    off = preprocessed["settings"].predict
    assert off.lung_margin_mm is None and PredictSettings.from_config().lung_margin_mm is None  # the paper's default
    predict_cases(runs["a"]["model"], images, tmp_path / "off", off)
    assert calls == []

    on = off.replace(lung_margin_mm=2.5)
    written = predict_cases(runs["a"]["model"], images, tmp_path / "on", on, lung_threshold_hu=-500.0)
    image, geometry = read_nifti(images["toy005"])
    assert calls == [(2.5, -500.0, image.shape, tuple(geometry.spacing[::-1]))]
    assert not read_nifti(written["toy005"])[0].any()   # what the restriction returned is what was written


def test_without_deep_supervision_only_the_full_resolution_output_is_trained_and_the_run_predicts(
        preprocessed, toy_cases, tmp_path, monkeypatch):
    from nnunetv2.training.nnUNetTrainer.nnUNetTrainer import nnUNetTrainer

    settings = preprocessed["settings"]
    assert settings.train.deep_supervision is True          # nnU-Net's default
    shapes = {}
    original = nnUNetTrainer.train_step

    def spy(self, batch):
        shapes.setdefault(self.enable_deep_supervision, [tuple(t.shape) for t in
                                                          (batch["target"] if isinstance(batch["target"], list)
                                                           else [batch["target"]])])
        return original(self, batch)

    monkeypatch.setattr(nnUNetTrainer, "train_step", spy)
    for flag in (True, False):
        train_run(preprocessed["dataset"], tmp_path / f"ds-{flag}", settings.plan,
                  settings.train.replace(deep_supervision=flag, epochs=1), seed=3)
    assert len(shapes[True]) > 1 and shapes[False] == shapes[True][:1]   # one target, at full resolution
    log = next((tmp_path / "ds-False").rglob("training_log_*.txt")).read_text()
    assert "deep supervision: False" in log
    written = predict_cases(tmp_path / "ds-False", {"toy005": toy_cases["toy005"][0]}, tmp_path / "pred",
                            settings.predict)
    prediction = read_nifti(written["toy005"])[0]
    assert prediction.shape == read_nifti(toy_cases["toy005"][0])[0].shape
