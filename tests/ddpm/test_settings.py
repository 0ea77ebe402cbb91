import pytest

from lungsynth.ddpm.settings import DdpmSettings, SamplingSettings
from lungsynth.errors import InputError


def test_nested_sections_build_typed_settings():
    s = DdpmSettings.from_config({"network": {"channels": [16, 32], "norm_num_groups": 16},
                                  "training": {"patch_size": [32, 32, 32], "learning_rate": "2e-4"}})
    assert s.network.channels == (16, 32) and s.network.levels == 2
    assert s.training.patch_size == (32, 32, 32)
    assert s.training.learning_rate == pytest.approx(2e-4)  # PyYAML reads 2e-4 as a string
    assert s.schedule.num_train_timesteps == 1000 and s.schedule.prediction_type == "epsilon"


@pytest.mark.parametrize("values, key", [
    ({"netwrok": {}}, "ddpm"),
    ({"network": {"chanels": [8]}}, "ddpm.network"),
    ({"network": {"channels": [12], "norm_num_groups": 8}}, "ddpm.network.norm_num_groups"),
    ({"training": {"patch_size": [32, 32]}}, "ddpm.training.patch_size"),
    ({"training": {"bf16": "yes"}}, "ddpm.training.bf16"),
    ({"schedule": {"prediction_type": "x0"}}, "ddpm.schedule.prediction_type"),
    ({"intensity": {"hu_min": 100, "hu_max": -100}}, "ddpm.intensity.hu_max"),
])
def test_bad_ddpm_config_names_the_key(values, key):
    with pytest.raises(InputError) as err:
        DdpmSettings.from_config(values)
    assert err.value.where == key


def test_sampling_settings_with_quality_subsection_and_unknown_key():
    s = SamplingSettings.from_config({"steps": 20, "mode": "windowed", "quality": {"shell_mm": 2}})
    assert s.steps == 20 and s.mode == "windowed" and s.quality.shell_mm == 2.0
    with pytest.raises(InputError, match="unknown key"):
        SamplingSettings.from_config({"step": 20})
    with pytest.raises(InputError) as err:
        SamplingSettings.from_config({"sampler": "euler"})
    assert err.value.where == "sampling.sampler"
