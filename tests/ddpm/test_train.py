import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from lungsynth.ddpm.checkpoint import load_model
from lungsynth.ddpm.train import Trainer, stack_training_data, train_ddpm
from lungsynth.errors import InputError

from .toys import tiny_settings, toy_volumes


def test_training_loss_falls_on_a_trivially_learnable_set(tmp_path):
    images, masks = toy_volumes()
    result = train_ddpm(images, masks, tiny_settings(steps=100, batch_size=4),
                        tmp_path / "model.pt", loss_csv=tmp_path / "loss.csv", loss_png=tmp_path / "loss.png",
                        progress=False, checkpoint_every=100)
    loss = result.losses["loss"].to_numpy()
    assert len(loss) == 100 and np.isfinite(loss).all()
    assert loss[-20:].mean() < 0.5 * loss[:10].mean()
    table = pd.read_csv(tmp_path / "loss.csv")
    assert list(table.columns) == ["step", "loss", "lr", "seconds", "cpu_seconds", "grad_norm"]
    assert (table.grad_norm > 0).all() and np.isfinite(table.grad_norm).all()
    assert table["step"].tolist() == list(range(1, 101)) and table["seconds"].is_monotonic_increasing
    assert (tmp_path / "loss.png").stat().st_size > 1000


def test_a_rectified_flow_trains_and_samples_volumes_in_the_hu_window(tmp_path):
    from lungsynth.ddpm.sample import sample_case
    from lungsynth.ddpm.settings import SamplingSettings

    images, masks = toy_volumes()
    settings = tiny_settings(schedule={"schedule": "rectified_flow"}, steps=100, batch_size=4)
    result = train_ddpm(images, masks, settings, tmp_path / "model.pt", progress=False, checkpoint_every=100)
    loss = result.losses["loss"].to_numpy()
    assert np.isfinite(loss).all() and loss[-20:].mean() < 0.5 * loss[:10].mean()
    hu = sample_case(tmp_path / "model.pt", masks[0], case_id="flow",
                     settings=SamplingSettings.from_config({"sampler": "euler", "steps": 8, "bf16": False}))
    assert hu.shape == masks[0].shape and hu.dtype == np.int16
    assert -1024 <= hu.min() and hu.max() <= 1024 and np.ptp(hu) > 100


def test_model_file_records_what_sampling_needs(tmp_path):
    images, masks = toy_volumes(2, (16, 16, 24))
    train_ddpm(images, masks, tiny_settings(steps=3), tmp_path / "model.pt", spacing=(2.5, 1.0, 1.0),
               progress=False)
    payload = torch.load(tmp_path / "model.pt", weights_only=True)
    for key in ("network", "schedule", "intensity", "volume_size", "patch_size", "spacing", "data_hash",
                "step", "ema_state_dict"):
        assert key in payload
    assert payload["volume_size"] == [16, 16, 24] and payload["patch_size"] == [8, 8, 8]
    assert payload["step"] == 3 and payload["spacing"] == [2.5, 1.0, 1.0]
    assert payload["intensity"] == {"hu_min": -1024.0, "hu_max": 1024.0, "mean_image": False, "unit_std": False}
    assert payload["data_scale"] == 1.0
    assert (tmp_path / "model.pt.state").exists()  # the resumable state is a separate file


def test_resumed_training_equals_uninterrupted_training(tmp_path):
    images, masks = toy_volumes()
    straight = train_ddpm(images, masks, tiny_settings(steps=12),
                          tmp_path / "a" / "model.pt", progress=False, checkpoint_every=4)
    train_ddpm(images, masks, tiny_settings(steps=6), tmp_path / "b" / "model.pt",
               progress=False, checkpoint_every=4)
    resumed = train_ddpm(images, masks, tiny_settings(steps=12),
                         tmp_path / "b" / "model.pt", progress=False, checkpoint_every=4)
    assert resumed.resumed_from == 6 and resumed.step == 12
    pd.testing.assert_series_equal(straight.losses["loss"], resumed.losses["loss"])
    a = load_model(tmp_path / "a" / "model.pt").model.state_dict()
    b = load_model(tmp_path / "b" / "model.pt").model.state_dict()
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_state_from_other_settings_is_not_resumed(tmp_path):
    images, masks = toy_volumes()
    train_ddpm(images, masks, tiny_settings(steps=4), tmp_path / "model.pt", progress=False)
    again = train_ddpm(images, masks, tiny_settings(steps=4, learning_rate=5e-4), tmp_path / "model.pt",
                       progress=False)
    assert again.resumed_from == 0


def test_training_volumes_of_different_shapes_are_an_input_error(tmp_path):
    images, masks = toy_volumes(2)
    images[1] = images[1][:, :, :8]
    with pytest.raises(InputError, match="differs from the first") as err:
        train_ddpm(images, masks, tiny_settings(), tmp_path / "model.pt", names=["a.nii.gz", "b.nii.gz"],
                   progress=False)
    assert err.value.where == "b.nii.gz"


def test_patch_larger_than_volume_is_an_input_error(tmp_path):
    images, masks = toy_volumes(2)
    with pytest.raises(InputError, match="does not fit"):
        train_ddpm(images, masks, tiny_settings(patch=(32, 8, 8)), tmp_path / "model.pt", progress=False)


TRAIN_SCRIPT = textwrap.dedent("""
    import sys, torch
    torch.set_num_threads(1)
    sys.path.insert(0, {tests!r})
    from ddpm.toys import tiny_settings, toy_volumes
    from lungsynth.ddpm.train import train_ddpm
    images, masks = toy_volumes()
    train_ddpm(images, masks, tiny_settings(steps={steps}), {model!r},
               loss_csv={csv!r}, progress=False, checkpoint_every=5)
""")


def test_training_killed_with_sigkill_resumes_from_its_last_checkpoint(tmp_path):
    model, state, csv = tmp_path / "model.pt", tmp_path / "model.pt.state", tmp_path / "loss.csv"
    tests = str(Path(__file__).resolve().parents[1])
    script = tmp_path / "train.py"
    script.write_text(TRAIN_SCRIPT.format(tests=tests, steps=100_000, model=str(model), csv=str(csv)))
    process = subprocess.Popen([sys.executable, str(script)], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and process.poll() is None:
            if csv.exists() and len(pd.read_csv(csv)) >= 10:  # at least two checkpoints written
                break
            time.sleep(0.1)
        assert process.poll() is None, process.stderr.read().decode()[-2000:]
        os.kill(process.pid, signal.SIGKILL)
        process.wait(timeout=30)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    assert process.returncode == -signal.SIGKILL
    assert not model.exists()  # the declared output is only written at the end

    saved = torch.load(state, weights_only=True)
    killed_at = saved["step"]
    assert killed_at >= 10 and killed_at % 5 == 0
    before = pd.read_csv(csv)

    images, masks = toy_volumes()
    result = train_ddpm(images, masks, tiny_settings(steps=killed_at + 7), model,
                        loss_csv=csv, progress=False, checkpoint_every=5)
    assert result.resumed_from == killed_at and result.step == killed_at + 7
    after = pd.read_csv(csv)
    assert after["step"].tolist() == list(range(1, killed_at + 8))  # continued, not duplicated
    n = min(len(before), killed_at)  # the CSV is written just after the state: it may lag one checkpoint
    pd.testing.assert_frame_equal(after.iloc[:n], before.iloc[:n])
    final = torch.load(state, weights_only=True)
    adam_steps = {int(s["step"]) for s in final["optimizer"]["state"].values()}
    assert adam_steps == {killed_at + 7} and int(final["ema"]["n_averaged"]) == killed_at + 7
    assert load_model(model).step == killed_at + 7


def test_mean_image_model_stores_the_mean_crop_and_learns_the_difference_to_it(tmp_path):
    from lungsynth.ddpm.intensity import hu_to_model
    from lungsynth.ddpm.sample import sample_case
    from lungsynth.ddpm.settings import DdpmSettings, SamplingSettings

    images, masks = toy_volumes()
    base = tiny_settings(steps=3)
    settings = base.replace(intensity=base.intensity.replace(mean_image=True))
    train_ddpm(images, masks, settings, tmp_path / "model.pt", progress=False)
    loaded = load_model(tmp_path / "model.pt")
    expected = np.mean([hu_to_model(i, settings.intensity) for i in images], axis=0)
    np.testing.assert_allclose(loaded.mean_image.numpy(), expected, atol=1e-6)
    hu = sample_case(loaded, masks[0], case_id="a", settings=SamplingSettings.from_config({"steps": 3, "bf16": False}))
    assert hu.shape == masks[0].shape and -1024 <= hu.min() and hu.max() <= 1024
    plain = load_model(train_ddpm(images, masks, base, tmp_path / "plain.pt", progress=False).model_path)
    assert plain.mean_image is None


def test_mean_image_model_without_its_mean_is_a_clear_error(tmp_path):
    from lungsynth.ddpm.settings import DdpmSettings

    images, masks = toy_volumes(2)
    base = tiny_settings(steps=2)
    settings = base.replace(intensity=base.intensity.replace(mean_image=True))
    train_ddpm(images, masks, settings, tmp_path / "model.pt", progress=False)
    payload = torch.load(tmp_path / "model.pt", weights_only=True)
    payload["mean_image"] = None
    torch.save(payload, tmp_path / "broken.pt")
    with pytest.raises(InputError, match="mean image is missing"):
        load_model(tmp_path / "broken.pt")


def test_a_cosine_run_is_not_resumed_with_another_step_count(tmp_path):
    images, masks = toy_volumes()
    train_ddpm(images, masks, tiny_settings(steps=4, lr_schedule="cosine"), tmp_path / "model.pt", progress=False)
    again = train_ddpm(images, masks, tiny_settings(steps=8, lr_schedule="cosine"), tmp_path / "model.pt",
                       progress=False)
    assert again.resumed_from == 0      # its learning-rate curve would be another one


def test_training_set_is_read_into_int16_and_uint8_arrays_without_float_copies(tmp_path):
    from lungsynth.io import Geometry, write_nifti
    from lungsynth.pipeline.ddpm import read_training_set

    images, masks = toy_volumes(3)
    geometry = Geometry((2.0, 2.0, 3.0), (0.0, 0.0, 0.0))
    paths = ([], [])
    for index, (image, mask) in enumerate(zip(images, masks)):
        for array, kind, out in ((image, "image", paths[0]), (mask * 7, "mask", paths[1])):
            out.append(tmp_path / f"{kind}{index}.nii.gz")
            write_nifti(out[-1], array, geometry)
    hu, nodules, spacing = read_training_set(*paths)
    assert hu.dtype == np.int16 and nodules.dtype == np.uint8 and hu.shape == (3, 16, 16, 16)
    assert np.array_equal(hu, np.stack(images)) and np.array_equal(nodules, np.stack(masks))
    assert spacing == (3.0, 2.0, 2.0)
    stacked_hu, stacked_nodules = stack_training_data(hu, nodules)
    assert np.shares_memory(stacked_hu.numpy(), hu) and np.shares_memory(stacked_nodules.numpy(), nodules)


def test_a_prepared_batch_carries_the_generator_state_a_checkpoint_must_save():
    images, masks = toy_volumes()
    hu, nodules = stack_training_data(images, masks)
    trainer = Trainer(tiny_settings(), hu, nodules, torch.device("cpu"))
    first = trainer.prepare()
    trainer.prepare()                                     # a prefetched batch draws on
    assert not torch.equal(first.generator_state, trainer.generator.get_state())
    assert torch.equal(trainer.state(first.generator_state)["generator"], first.generator_state)
    loss, _ = trainer.optimise(1, first)
    assert loss.ndim == 0 and torch.isfinite(loss) and trainer.last_grad_norm > 0
