import pytest

from lungsynth.ddpm.settings import DdpmSettings, QualitySettings, SamplingSettings
from lungsynth.errors import InputError


def test_nested_sections_build_typed_settings_with_the_schemas_defaults():
    s = DdpmSettings.from_config({"network": {"channels": [16, 32], "norm_num_groups": 16},
                                  "training": {"patch_size": [32, 32, 32], "learning_rate": 2.0e-4}})
    assert s.network.channels == (16, 32) and s.network.levels == 2
    assert s.training.patch_size == (32, 32, 32)
    assert s.training.learning_rate == pytest.approx(2e-4)
    assert s.schedule.num_train_timesteps == 1000 and s.schedule.prediction_type == "v_prediction"


def test_number_that_yaml_read_as_text_is_named_with_a_hint():
    with pytest.raises(InputError, match="write the number with a dot") as err:
        DdpmSettings.from_config({"training": {"learning_rate": "2e-4"}})
    assert err.value.where == "ddpm.training.learning_rate"


@pytest.mark.parametrize("values, key", [
    ({"netwrok": {}}, "ddpm"),
    ({"network": {"chanels": [8]}}, "ddpm.network"),
    ({"network": {"channels": [12], "norm_num_groups": 8}}, "ddpm.network.norm_num_groups"),
    ({"training": {"patch_size": [32, 32]}}, "ddpm.training.patch_size"),
    ({"training": {"bf16": "yes"}}, "ddpm.training.bf16"),
    ({"schedule": {"prediction_type": "x0"}}, "ddpm.schedule.prediction_type"),
    ({"schedule": {"beta_start": 0.03}}, "ddpm.schedule.beta_end"),
    ({"intensity": {"hu_min": 100, "hu_max": -100}}, "ddpm.intensity.hu_max"),
])
def test_bad_ddpm_config_names_the_key(values, key):
    with pytest.raises(InputError) as err:
        DdpmSettings.from_config(values)
    assert err.value.where == key


def test_sampling_and_quality_are_sections_of_their_own():
    s = SamplingSettings.from_config({"steps": 20, "mode": "windowed"})
    assert s.steps == 20 and s.mode == "windowed" and s.sampler == "ddim"
    assert QualitySettings.from_config({"shell_mm": 2}).shell_mm == 2.0
    with pytest.raises(InputError, match="'step' was unexpected"):
        SamplingSettings.from_config({"step": 20})
    with pytest.raises(InputError) as err:
        SamplingSettings.from_config({"sampler": "plms"})
    assert err.value.where == "sampling.sampler"
