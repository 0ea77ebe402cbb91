import pytest
import torch

from lungsynth.ddpm.schedule import sampling_scheduler, training_scheduler, training_target
from lungsynth.ddpm.settings import ScheduleSettings
from lungsynth.errors import InputError


def test_schedule_is_linear_betas_from_1e4_to_002_over_1000_steps():
    scheduler = training_scheduler(ScheduleSettings.from_config())
    assert scheduler.num_train_timesteps == 1000
    assert scheduler.betas[0].item() == pytest.approx(1e-4)
    assert scheduler.betas[-1].item() == pytest.approx(0.02)
    assert torch.allclose(scheduler.betas.diff(), scheduler.betas.diff()[0].expand(999), atol=1e-8)


@pytest.mark.parametrize("steps", [1, 7, 50, 333, 1000])
def test_ddim_timesteps_match_the_jump_of_its_step(steps):
    scheduler = sampling_scheduler(ScheduleSettings.from_config(), "ddim", steps)
    timesteps = scheduler.timesteps.tolist()
    assert len(timesteps) == steps and timesteps[-1] == 0
    jump = scheduler.num_train_timesteps // scheduler.num_inference_steps
    assert all(a - b == jump for a, b in zip(timesteps, timesteps[1:]))


def test_ddpm_runs_all_steps_and_refuses_fewer():
    assert len(sampling_scheduler(ScheduleSettings.from_config(), "ddpm").timesteps) == 1000
    with pytest.raises(InputError, match="DDIM"):
        sampling_scheduler(ScheduleSettings.from_config(), "ddpm", 50)


def test_v_prediction_target_is_the_velocity():
    x0, noise, t = torch.randn(2, 1, 4, 4, 4), torch.randn(2, 1, 4, 4, 4), torch.tensor([10, 900])
    eps = training_scheduler(ScheduleSettings.from_config({"prediction_type": "epsilon"}))
    v = training_scheduler(ScheduleSettings.from_config({"prediction_type": "v_prediction"}))
    assert torch.equal(training_target(eps, x0, noise, t), noise)
    a = eps.alphas_cumprod[t].view(2, 1, 1, 1, 1)
    assert torch.allclose(training_target(v, x0, noise, t), a.sqrt() * noise - (1 - a).sqrt() * x0, atol=1e-6)


FLOW = {"schedule": "rectified_flow"}


def test_rectified_flow_noises_linearly_and_targets_the_velocity_x0_minus_noise():
    flow = training_scheduler(ScheduleSettings.from_config(FLOW))
    x0, noise, t = torch.randn(3, 1, 4, 4, 4), torch.randn(3, 1, 4, 4, 4), torch.tensor([0, 250, 999])
    x_t = flow.add_noise(x0, noise, t)
    s = (t / 1000).view(3, 1, 1, 1, 1)
    assert torch.allclose(x_t, (1 - s) * x0 + s * noise, atol=1e-6)
    assert torch.equal(x_t[0], x0[0])
    assert torch.equal(training_target(flow, x0, noise, t), x0 - noise)


def test_euler_steps_run_from_t_equals_T_down_in_equal_steps():
    timesteps = sampling_scheduler(ScheduleSettings.from_config(FLOW), "euler", 10).timesteps.tolist()
    assert timesteps == list(range(1000, 0, -100))


@pytest.mark.parametrize("schedule, sampler", [(FLOW, "ddim"), (FLOW, "ddpm"), ({}, "euler")])
def test_a_sampler_of_the_other_kind_of_model_is_an_input_error(schedule, sampler):
    with pytest.raises(InputError, match="sampling.sampler") as error:
        sampling_scheduler(ScheduleSettings.from_config(schedule), sampler, 10)
    assert "rectified_flow" in str(error.value)


def test_min_snr_weighting_with_a_rectified_flow_is_an_input_error():
    from lungsynth.ddpm.settings import DdpmSettings

    with pytest.raises(InputError, match="ddpm.training.loss_weighting"):
        DdpmSettings.from_config({"schedule": FLOW, "training": {"loss_weighting": "min_snr"}})
