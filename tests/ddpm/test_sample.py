import numpy as np
import pytest
import torch

from lungsynth.ddpm.checkpoint import load_model
from lungsynth.ddpm.sample import case_generator, sample_case, sample_volume
from lungsynth.ddpm.settings import SamplingSettings, ScheduleSettings
from lungsynth.errors import InputError

from .toys import toy_volumes

FAST = SamplingSettings.from_config({"steps": 4, "bf16": False})


@pytest.fixture(scope="module")
def mask():
    return toy_volumes(1)[1][0]


def test_ddim_output_has_the_mask_shape_and_a_plausible_hu_range(tiny_checkpoint, mask):
    hu = sample_case(tiny_checkpoint, mask, case_id="a", settings=FAST, device="cpu")
    assert hu.shape == mask.shape and hu.dtype == np.int16
    assert -1024 <= hu.min() and hu.max() <= 1024 and hu.std() > 0


def test_windowed_equals_whole_volume_when_one_window_covers_all(tiny_checkpoint, mask):
    model = load_model(tiny_checkpoint).model
    schedule = ScheduleSettings.from_config()
    runs = {}
    for mode in ("whole", "windowed"):
        runs[mode] = sample_volume(model, mask, schedule, steps=5, mode=mode, window=mask.shape,
                                   generator=torch.Generator().manual_seed(7))
    torch.testing.assert_close(runs["windowed"], runs["whole"], atol=1e-5, rtol=0)


def test_windowed_sampling_covers_a_volume_larger_than_the_window(tiny_checkpoint, mask):
    settings = FAST.replace(mode="windowed", window_overlap=0.25)
    hu = sample_case(tiny_checkpoint, mask, case_id="a", settings=settings, device="cpu")
    assert hu.shape == mask.shape and hu.std() > 0


def test_same_seed_and_case_repeat_and_other_cases_differ(tiny_checkpoint, mask):
    loaded = load_model(tiny_checkpoint)
    a = sample_case(loaded, mask, case_id="case-1", settings=FAST)
    b = sample_case(loaded, mask, case_id="case-1", settings=FAST)
    c = sample_case(loaded, mask, case_id="case-2", settings=FAST)
    d = sample_case(loaded, mask, case_id="case-1", settings=FAST.replace(seed=1))
    assert np.array_equal(a, b) and not np.array_equal(a, c) and not np.array_equal(a, d)


def test_ddpm_sampler_runs_all_steps_and_is_stochastic(tiny_checkpoint, mask):
    model = load_model(tiny_checkpoint).model
    schedule = ScheduleSettings.from_config({"num_train_timesteps": 20})  # a short chain keeps the test fast
    calls = []
    counting = lambda x, t: calls.append(int(t)) or model(x, t)  # noqa: E731
    a = sample_volume(counting, mask, schedule, sampler="ddpm", steps=None, generator=case_generator(0, "a"))
    b = sample_volume(model, mask, schedule, sampler="ddpm", steps=None, generator=case_generator(0, "b"))
    assert calls == list(range(19, -1, -1))
    assert a.shape == mask.shape and not torch.equal(a, b)


def test_sampling_with_bf16_autocast_stays_close_to_fp32(tiny_checkpoint, mask, monkeypatch):
    monkeypatch.setattr("lungsynth.runtime.cpu_has_fast_bf16", lambda: True)  # the bf16 path even on AVX2
    fp32 = sample_case(tiny_checkpoint, mask, case_id="a", settings=FAST)
    bf16 = sample_case(tiny_checkpoint, mask, case_id="a", settings=FAST.replace(bf16=True))
    assert bf16.shape == fp32.shape and np.abs(bf16.astype(float) - fp32).mean() < 50


def test_mask_of_another_size_is_an_input_error_naming_the_checkpoint(tiny_checkpoint):
    with pytest.raises(InputError, match="trained on volumes") as err:
        sample_case(tiny_checkpoint, np.zeros((16, 16, 32), np.uint8), case_id="x", settings=FAST,
                    mask_name="big.nii.gz")
    assert err.value.where == str(tiny_checkpoint) and "big.nii.gz" in err.value.problem


def test_mask_of_another_spacing_is_an_input_error(tiny_checkpoint, mask):
    with pytest.raises(InputError, match="spacing"):
        sample_case(tiny_checkpoint, mask, case_id="x", settings=FAST, spacing=(1.0, 1.0, 1.0))


class OracleDenoiser(torch.nn.Module):
    """Knows the clean volume x0 = f(z, y, x) and returns the exact noise of its input, so a correct
    sampler must end at x0 (whatever the window it is shown: it reads positions from the coordinates)."""

    def __init__(self, alphas_cumprod):
        super().__init__()
        self.alphas_cumprod = alphas_cumprod

    @staticmethod
    def x0(grid):
        z, y, x = grid[:, 0:1], grid[:, 1:2], grid[:, 2:3]
        return 0.5 * torch.sin(3 * z) * torch.cos(2 * y) + 0.3 * x

    def forward(self, inputs, timesteps):
        a = self.alphas_cumprod[timesteps].view(-1, 1, 1, 1, 1)
        return (inputs[:, :1] - a.sqrt() * self.x0(inputs[:, 2:])) / (1 - a).sqrt()


@pytest.mark.parametrize("sampler, steps, mode", [("ddim", 10, "whole"), ("ddim", 10, "windowed"),
                                                   ("ddpm", None, "whole")])
def test_sampler_with_an_oracle_denoiser_recovers_the_clean_volume(sampler, steps, mode):
    from lungsynth.ddpm.coordinates import coordinate_grid
    from lungsynth.ddpm.schedule import training_scheduler

    schedule = ScheduleSettings.from_config({"num_train_timesteps": 100 if sampler == "ddpm" else 1000})
    oracle = OracleDenoiser(training_scheduler(schedule).alphas_cumprod)
    mask = np.zeros((8, 12, 16), np.uint8)
    out = sample_volume(oracle, mask, schedule, sampler=sampler, steps=steps, mode=mode, window=(8, 8, 8),
                        overlap=0.5, generator=torch.Generator().manual_seed(0))
    expected = OracleDenoiser.x0(coordinate_grid(mask.shape)[None])[0, 0]
    torch.testing.assert_close(out, expected, atol=1e-3, rtol=0)


class FlowOracle(torch.nn.Module):
    """The exact velocity x0 - noise of a rectified flow at x_t = (1 - s) x0 + s noise, s = t / T."""

    def forward(self, inputs, timesteps):
        s = (timesteps.float() / 1000).view(-1, 1, 1, 1, 1)
        return (OracleDenoiser.x0(inputs[:, 2:]) - inputs[:, :1]) / s


@pytest.mark.parametrize("mode", ["whole", "windowed"])
def test_euler_sampler_with_the_exact_velocity_recovers_the_clean_volume(mode):
    from lungsynth.ddpm.coordinates import coordinate_grid

    schedule = ScheduleSettings.from_config({"schedule": "rectified_flow"})
    mask = np.zeros((8, 12, 16), np.uint8)
    out = sample_volume(FlowOracle(), mask, schedule, sampler="euler", steps=5, mode=mode, window=(8, 8, 8),
                        overlap=0.5, generator=torch.Generator().manual_seed(0))
    expected = OracleDenoiser.x0(coordinate_grid(mask.shape)[None])[0, 0]
    torch.testing.assert_close(out, expected, atol=1e-4, rtol=0)


class ResidualOracle(OracleDenoiser):
    """The oracle of a model trained relative to a mean image: its clean data are x0 - mean."""

    def __init__(self, alphas_cumprod, mean):
        super().__init__(alphas_cumprod)
        self.mean = mean

    def forward(self, inputs, timesteps):
        a = self.alphas_cumprod[timesteps].view(-1, 1, 1, 1, 1)
        residual = self.x0(inputs[:, 2:]) - self.mean
        return (inputs[:, :1] - a.sqrt() * residual) / (1 - a).sqrt()


def test_sampling_relative_to_a_mean_image_adds_it_back():
    from lungsynth.ddpm.coordinates import coordinate_grid
    from lungsynth.ddpm.schedule import training_scheduler

    schedule = ScheduleSettings.from_config()
    mask = np.zeros((8, 12, 16), np.uint8)
    expected = OracleDenoiser.x0(coordinate_grid(mask.shape)[None])[0, 0]
    mean = 0.3 - 0.5 * expected     # residuals x0 - mean = 1.5 x0 - 0.3 reach -1.5: outside [-1, 1]
    oracle = ResidualOracle(training_scheduler(schedule).alphas_cumprod, mean)
    out = sample_volume(oracle, mask, schedule, sampler="ddim", steps=10, generator=torch.Generator().manual_seed(0),
                        mean_image=mean)
    torch.testing.assert_close(out, expected, atol=1e-3, rtol=0)


def test_sampling_logs_its_progress_at_each_tenth(tiny_checkpoint, mask, caplog):
    model = load_model(tiny_checkpoint).model
    with caplog.at_level("INFO", logger="lungsynth.ddpm"):
        sample_volume(model, mask, ScheduleSettings.from_config(), steps=25, generator=torch.Generator().manual_seed(0))
    steps = [r.getMessage() for r in caplog.records if "step" in r.getMessage()]
    # every third step of 25 (ceil(25 / 10) = 3) and the last one
    assert len(steps) == 9 and steps[0].startswith("sample ddim: step 3/25") and "step 25/25" in steps[-1]


def test_sampling_with_a_progress_bar_writes_no_progress_records(tiny_checkpoint, mask, caplog):
    model = load_model(tiny_checkpoint).model
    with caplog.at_level("INFO", logger="lungsynth.ddpm"):
        sample_volume(model, mask, ScheduleSettings.from_config(), steps=5, progress=True,
                      generator=torch.Generator().manual_seed(0))
    assert not [r for r in caplog.records if "step" in r.getMessage()]


def _mask_files(folder, n=3):
    from lungsynth.io import Geometry, write_nifti

    _, masks = toy_volumes(n)
    paths = []
    for index, mask in enumerate(masks):
        paths.append(folder / f"case{index}.nii.gz")
        write_nifti(paths[-1], mask, Geometry((2.0, 2.0, 2.0), (0.0, 0.0, 0.0)))
    return paths


def test_a_batch_samples_every_mask_as_it_would_alone_and_keeps_what_a_killed_try_wrote(tiny_checkpoint, tmp_path):
    from lungsynth.io import read_nifti
    from lungsynth.pipeline.ddpm import link_sampled, sample, sample_into_folder

    masks = _mask_files(tmp_path)
    cases = [f"case{i}" for i in range(len(masks))]
    settings = {"steps": 2}
    sample_into_folder(tiny_checkpoint, masks, cases, tmp_path / "batch", settings, threads=1)
    assert sorted(p.name for p in (tmp_path / "batch").glob("*.nii.gz")) == [f"{c}.nii.gz" for c in cases]
    alone = tmp_path / "alone.nii.gz"
    sample(tiny_checkpoint, masks[1], alone, tmp_path / "alone-mask.nii.gz", "case1", settings, threads=1)
    assert np.array_equal(read_nifti(alone)[0], read_nifti(tmp_path / "batch" / "case1.nii.gz")[0])

    # a killed try left case0 in the scratch folder: the retry samples only the others
    partial = tmp_path / "again.partial"
    (partial / "masks").mkdir(parents=True)
    for name in ("case0.nii.gz", "masks/case0.nii.gz"):
        (partial / name).write_bytes((tmp_path / "batch" / name).read_bytes())
    from lungsynth.io import write_json
    from lungsynth.pipeline.ddpm import _file_stamp

    write_json(partial / "sampled_with.json", {"model": _file_stamp(tiny_checkpoint), "settings": settings})
    kept = (partial / "case0.nii.gz").stat().st_mtime_ns
    sample_into_folder(tiny_checkpoint, masks, cases, tmp_path / "again", settings, threads=1)
    assert (tmp_path / "again" / "case0.nii.gz").stat().st_mtime_ns == kept and not partial.exists()

    link_sampled(tmp_path / "batch", "case2", tmp_path / "out.nii.gz", tmp_path / "out-mask.nii.gz")
    assert (tmp_path / "out.nii.gz").stat().st_ino == (tmp_path / "batch" / "case2.nii.gz").stat().st_ino
    with pytest.raises(InputError, match="no volume of case9"):
        link_sampled(tmp_path / "batch", "case9", tmp_path / "x.nii.gz", tmp_path / "y.nii.gz")
