import pytest

from lungsynth.arms import arm
from lungsynth.config import section_schema
from lungsynth.errors import InputError
from lungsynth.nnunet.settings import NnunetSettings

from .toys import tiny_settings


def test_settings_build_nested_sections_from_config():
    s = tiny_settings()
    assert s.plan.features == (8, 16, 32) and s.plan.patch_size == (32, 32, 32)
    assert s.train.epochs == 2 and s.train.iterations_per_epoch == 3
    assert s.predict.mirroring is False and s.predict.empty_dice == 1.0   # schema defaults


def test_dataset_name_keeps_letters_and_digits_of_the_arm():
    assert arm("Real+Synthetic").dataset_name(503) == "Dataset503_RealSynthetic"
    assert arm("Real").dataset_name(tiny_settings().datasets["Real"]) == "Dataset501_Real"


def test_run_seeds_differ_per_run_and_repeat_across_arms():
    s = tiny_settings(runs=3)
    assert [s.run_seed(k) for k in (1, 2, 3)] == [7, 8, 9]
    with pytest.raises(InputError, match="nnunet.runs"):
        s.run_seed(0)


@pytest.mark.parametrize("key, value, where", [
    ("unknown_key", 1, "nnunet"),
    ("plan", {"configuration": "4d"}, "nnunet.plan.configuration"),
    ("datasets", {"Real": 501, "Synthetic": 501}, "nnunet.datasets"),
    ("datasets", {"Fake": 501}, "nnunet.datasets"),
    ("train", {"epochs": 0}, "nnunet.train.epochs"),
    ("train", {"initial_lr": 0}, "nnunet.train.initial_lr"),
    ("train", {"val_iterations_per_epoch": 0}, "nnunet.train.val_iterations_per_epoch"),
    ("plan", {"patch_size": [32, 32]}, "nnunet.plan.patch_size"),
    ("plan", {"depth": 3}, "nnunet.plan"),
    ("predict", {"tile_step_size": 0}, "nnunet.predict.tile_step_size"),
])
def test_bad_settings_name_the_key(key, value, where):
    with pytest.raises(InputError) as err:
        tiny_settings(**{key: value})
    assert err.value.where == where


def test_missing_keys_take_the_schemas_defaults():
    s = NnunetSettings.from_config({"runs": 4})
    assert s.runs == 4 and s.datasets == {"Real": 501, "Synthetic": 502, "RealSynthetic": 503}
    epochs = section_schema("nnunet.train")["properties"]["epochs"]["default"]   # the demo's, chosen by its budget
    assert s.plan.configuration == "3d_fullres" and s.train.epochs == epochs and epochs >= 1


def test_null_plan_entries_mean_nnunets_own_plan():
    s = tiny_settings(plan={"features": None, "patch_size": None, "batch_size": None})
    assert s.plan.features is None and s.plan.patch_size is None and s.plan.batch_size is None
