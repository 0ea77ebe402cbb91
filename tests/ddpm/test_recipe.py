"""The DDPM recipe's options: learning-rate decay, timestep draws, min-SNR weights, per-voxel clip,
unit-std scaling, Fourier coordinate features, the cosine schedule, the loss probe."""

import math

import numpy as np
import pytest
import torch

from lungsynth.ddpm.intensity import diffusion_bounds, unit_std_scale
from lungsynth.ddpm.network import CoordinateFeatures, build_network, network_config
from lungsynth.ddpm.probe import LossProbe
from lungsynth.ddpm.sample import clip_prediction, sample_volume
from lungsynth.ddpm.schedule import (draw_timesteps, loss_weights, sampling_scheduler, signal_to_noise,
                                     training_scheduler)
from lungsynth.ddpm.settings import IntensitySettings, NetworkSettings, ScheduleSettings, TrainingSettings
from lungsynth.ddpm.train import effective_ema_decay, learning_rate_at, train_ddpm

from .toys import tiny_settings, toy_volumes


@pytest.mark.parametrize("schedule", ["cosine", "polynomial"])
def test_learning_rate_warms_up_then_decays_to_zero_at_the_last_step(schedule):
    t = TrainingSettings.from_config({"steps": 100, "warmup_steps": 10, "learning_rate": 1.0e-3,
                                      "lr_schedule": schedule, "lr_power": 2.0})
    rates = [learning_rate_at(s, t) for s in range(1, 101)]
    assert rates[4] == pytest.approx(0.5e-3) and rates[9] == pytest.approx(1e-3)
    assert rates[-1] == 0.0 and all(a >= b for a, b in zip(rates[9:], rates[10:]))
    middle = learning_rate_at(55, t)
    assert middle == pytest.approx(0.5e-3 if schedule == "cosine" else 0.25e-3)


def test_constant_learning_rate_stays_after_the_warm_up():
    t = TrainingSettings.from_config({"steps": 100, "warmup_steps": 10, "learning_rate": 1.0e-3})
    assert learning_rate_at(100, t) == learning_rate_at(11, t) == 1e-3


@pytest.mark.parametrize("prediction_type", ["epsilon", "v_prediction"])
def test_min_snr_weights_equal_their_formula(prediction_type):
    scheduler = training_scheduler(ScheduleSettings.from_config({"prediction_type": prediction_type}))
    t = torch.tensor([0, 10, 200, 500, 999])
    snr = (scheduler.alphas_cumprod[t] / (1 - scheduler.alphas_cumprod[t])).double()
    expected = torch.minimum(snr, torch.tensor(5.0)) / (snr + 1 if prediction_type == "v_prediction" else snr)
    torch.testing.assert_close(loss_weights(scheduler, t, "min_snr", 5.0).double(), expected, rtol=1e-5, atol=1e-7)
    torch.testing.assert_close(signal_to_noise(scheduler, t).double(), snr, rtol=1e-5, atol=0)
    assert torch.equal(loss_weights(scheduler, t, "none", 5.0), torch.ones(5))
    # high noise (low SNR) keeps its weight 1 (v) or SNR-limited; low noise is capped
    assert loss_weights(scheduler, t, "min_snr", 5.0)[0] < 0.01


def test_stratified_timesteps_put_one_in_each_stratum_and_logit_normal_favours_the_middle():
    g = torch.Generator().manual_seed(0)
    t = draw_timesteps(4, 1000, "stratified", g)
    assert [int(v) // 250 for v in t] == [0, 1, 2, 3]
    many = draw_timesteps(20000, 1000, "logit_normal", g)
    assert many.min() >= 0 and many.max() <= 999
    middle = ((many > 250) & (many < 750)).float().mean()
    assert middle > 0.6   # uniform would give 0.5
    uniform = draw_timesteps(20000, 1000, "uniform", g)
    assert abs(((uniform > 250) & (uniform < 750)).float().mean() - 0.5) < 0.02



def test_logit_normal_location_moves_training_steps_to_higher_noise():
    g = torch.Generator().manual_seed(0)
    centred = draw_timesteps(20000, 1000, "logit_normal", g).float()
    shifted = draw_timesteps(20000, 1000, "logit_normal", g, location=1.0).float()
    assert abs(centred.median() - 500) < 15
    assert abs(shifted.median() - 1000 * torch.sigmoid(torch.tensor(1.0))) < 15   # sigmoid(1) = 0.73
    assert ((shifted >= 500) & (shifted < 900)).float().mean() > ((centred >= 500) & (centred < 900)).float().mean()
    assert shifted.max() <= 999


def test_a_uniform_share_of_logit_normal_timesteps_gives_low_noise_back_its_steps():
    g = torch.Generator().manual_seed(0)
    shifted = draw_timesteps(20000, 1000, "logit_normal", g, location=1.0).float()
    mixed = draw_timesteps(20000, 1000, "logit_normal", g, location=1.0, uniform_share=0.3).float()
    low = lambda t: (t < 300).float().mean()
    # sigmoid(N(1, 1)) < 0.3 has probability 0.032; a 0.3 share of uniform draws adds 0.3 x 0.3
    assert abs(low(shifted) - 0.032) < 0.01
    assert abs(low(mixed) - (0.7 * 0.032 + 0.3 * 0.3)) < 0.015
    assert mixed.min() >= 0 and mixed.max() <= 999
    everything = draw_timesteps(20000, 1000, "logit_normal", g, location=1.0, uniform_share=1.0).float()
    assert abs(low(everything) - 0.3) < 0.015


@pytest.mark.parametrize("prediction_type", ["epsilon", "v_prediction"])
def test_clipped_prediction_implies_the_clipped_x0_per_voxel(prediction_type):
    g = torch.Generator().manual_seed(1)
    x_t, prediction = torch.randn(1, 1, 4, 4, 4, generator=g), 10 * torch.randn(1, 1, 4, 4, 4, generator=g)
    mean = torch.rand(4, 4, 4, generator=g) * 1.6 - 0.8
    low, high = diffusion_bounds(mean, 2.0, mean.shape)
    alpha_bar = torch.tensor(0.3)
    out = clip_prediction(prediction, x_t, alpha_bar, prediction_type, low, high)
    a, b = alpha_bar.sqrt(), (1 - alpha_bar).sqrt()
    x0 = a * x_t - b * out if prediction_type == "v_prediction" else (x_t - b * out) / a
    assert (x0 >= low - 1e-5).all() and (x0 <= high + 1e-5).all()
    image = x0 / 2.0 + mean
    assert image.min() >= -1 - 1e-5 and image.max() <= 1 + 1e-5 and (image.abs() > 0.999).any()  # it bound


class Wild(torch.nn.Module):
    """A 'denoiser' whose output is far out of range: only the clip keeps the image in its window."""

    def forward(self, x, t):
        return 50.0 * torch.sin(7.0 * x[:, :1])


def test_per_voxel_clip_keeps_a_mean_image_sample_inside_the_window_before_the_final_clamp(monkeypatch):
    import lungsynth.ddpm.sample as sample

    mask = np.zeros((8, 8, 8), np.uint8)
    mean = torch.linspace(-0.9, 0.9, 512).reshape(8, 8, 8)
    monkeypatch.setattr(torch.Tensor, "clamp", lambda self, lo, hi: self)  # see the values unclamped
    for clip in (True, False):
        schedule = ScheduleSettings.from_config({"num_train_timesteps": 50, "clip_sample": clip})
        x = sample_volume(Wild(), mask, schedule, steps=5, mean_image=mean, generator=torch.Generator().manual_seed(0))
        inside = bool((x >= -1 - 1e-4).all() and (x <= 1 + 1e-4).all())
        assert inside is clip


def test_unit_std_scale_gives_the_diffused_quantity_unit_std():
    images, _ = toy_volumes()
    hu = torch.from_numpy(np.stack(images))
    on = IntensitySettings.from_config({"unit_std": True})
    scale = unit_std_scale(hu, on, None)
    from lungsynth.ddpm.intensity import hu_to_model
    assert float(hu_to_model(hu, on).double().std(unbiased=False)) * scale == pytest.approx(1.0, rel=1e-6)
    assert unit_std_scale(hu, IntensitySettings.from_config(), None) == 1.0


def test_unit_std_model_records_its_scale_and_samples_in_range(tmp_path):
    from lungsynth.ddpm.checkpoint import load_model
    from lungsynth.ddpm.sample import sample_case
    from lungsynth.ddpm.settings import SamplingSettings

    images, masks = toy_volumes()
    base = tiny_settings(steps=3)
    settings = base.replace(intensity=base.intensity.replace(mean_image=True, unit_std=True))
    train_ddpm(images, masks, settings, tmp_path / "model.pt", progress=False)
    loaded = load_model(tmp_path / "model.pt")
    assert loaded.data_scale > 1.0   # toy residuals are small: scaled up
    hu = sample_case(loaded, masks[0], case_id="a", settings=SamplingSettings.from_config({"steps": 3, "bf16": False}))
    assert -1024 <= hu.min() and hu.max() <= 1024


def test_fourier_features_add_channels_and_commute_with_cropping():
    settings = NetworkSettings.from_config({"channels": [8, 16], "norm_num_groups": 8, "coordinate_frequencies": 2})
    config = network_config(settings)
    assert config["in_channels"] == 5 + 12
    net = build_network(config)
    assert isinstance(net, CoordinateFeatures)
    x = torch.randn(1, 5, 8, 8, 8)
    assert net(x, torch.tensor([3])).shape == (1, 1, 8, 8, 8)
    plain = build_network(network_config(settings.replace(coordinate_frequencies=0)))
    assert not isinstance(plain, CoordinateFeatures)


def test_cosine_schedule_takes_no_betas():
    schedule = ScheduleSettings.from_config({"schedule": "cosine"})
    scheduler = sampling_scheduler(schedule, "ddim", 10)
    linear = training_scheduler(ScheduleSettings.from_config())
    cosine = training_scheduler(schedule)
    assert not torch.allclose(cosine.alphas_cumprod, linear.alphas_cumprod)
    assert len(scheduler.timesteps) == 10


def test_ema_warm_up_reaches_its_nominal_decay_late():
    assert effective_ema_decay(0.999, 1500) == pytest.approx(0.99403, abs=1e-5)
    assert effective_ema_decay(0.999, 20000) == 0.999
    assert effective_ema_decay(0.995, 1) == pytest.approx(0.1)


def test_loss_probe_repeats_for_a_model_and_tells_models_apart():
    images, masks = toy_volumes()
    settings = tiny_settings()
    probe = LossProbe(images, masks, settings, bins=5, per_bin=2)
    torch.manual_seed(0)
    a = build_network(network_config(settings.network))
    b = build_network(network_config(settings.network))
    with torch.no_grad():   # MONAI zero-initialises the output layer: make b predict something
        for p in b.parameters():
            p.add_(0.05 * torch.randn_like(p))
    first, again, other = probe(a), probe(a), probe(b)
    assert list(first.index) == ["t0", "t200", "t400", "t600", "t800", "all"]
    assert first.equals(again) and not first.equals(other)
    assert math.isclose(first["all"], first.iloc[:5].mean(), rel_tol=1e-6)
